"""The verifiable log end to end: `trailkeeper prove-event` against a running server, the
integrity API checked here with an independent RFC 9162 verifier and the `rsa` package
(which the AWS CLI brings), and `trailkeeper verify-store` naming the event edited in a
sealed Parquet segment with DuckDB.

The servers here sign a checkpoint every second (TRAILKEEPER_CHECKPOINT_INTERVAL_SECONDS=1)
unless a test needs to see an event that no checkpoint covers yet.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import subprocess
from pathlib import Path
from urllib.parse import urlencode

import duckdb
import pytest
import rsa

from e2e_helpers import (
    ACCOUNT_ID,
    BOB,
    IMPORTER,
    READER,
    Creds,
    HttpResult,
    clean_env,
    eventually,
    make_record,
    signed_request,
    trailkeeper_bin,
    utcnow,
)

EVERY_SECOND = {"TRAILKEEPER_CHECKPOINT_INTERVAL_SECONDS": "1"}
HOURLY = {"TRAILKEEPER_CHECKPOINT_INTERVAL_SECONDS": "3600"}


# --- RFC 9162 verification, written here independently of Trailkeeper's own ------------


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, path: list[bytes]) -> bool:
    """RFC 9162 §2.1.4.2 (0 < first < second)."""
    if not 0 < first < second or not path:
        return False
    if first & (first - 1) == 0:
        path = [first_root] + path
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


def signing_string(checkpoint: dict) -> bytes:
    """The documented text a checkpoint's signature covers."""
    return (
        "trailkeeper-checkpoint v1\n"
        f"account {checkpoint['accountId']}\n"
        f"region {checkpoint['region']}\n"
        f"tree-size {checkpoint['treeSize']}\n"
        f"root-hash {checkpoint['rootHash']}\n"
        f"time {checkpoint['time']}\n"
        f"key {checkpoint['keyFingerprint']}\n"
    ).encode()


# --- helpers ---------------------------------------------------------------------------


def integrity(server, method: str, path: str, creds: Creds = IMPORTER, region: str = "us-east-1", **params) -> HttpResult:
    query = f"?{urlencode(params)}" if params else ""
    return signed_request(method, f"{server.endpoint}/v1/integrity/{path}{query}", b"", {}, creds=creds, region=region)


def public_key_der(server, region: str, fingerprint: str) -> bytes:
    keys = server.client(region=region).list_public_keys()["PublicKeyList"]
    for key in keys:
        if key["Fingerprint"] == fingerprint:
            # boto3 decodes the blob: what is left is the DER key.
            return key["Value"]
    raise AssertionError(f"no public key {fingerprint} in {region}: {keys}")


def check_signature(server, checkpoint: dict) -> None:
    der = public_key_der(server, checkpoint["region"], checkpoint["keyFingerprint"])
    assert hashlib.md5(der).hexdigest() == checkpoint["keyFingerprint"]
    key = rsa.PublicKey.load_pkcs1(der, format="DER")
    assert rsa.verify(signing_string(checkpoint), base64.b64decode(checkpoint["signature"]), key) == "SHA-256"


def prove_event(server, event_id: str, *extra: str, creds: Creds = IMPORTER) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    env.update({"AWS_ACCESS_KEY_ID": creds.access_key_id, "AWS_SECRET_ACCESS_KEY": creds.secret_access_key})
    return subprocess.run(
        [trailkeeper_bin(), "prove-event", "--event-id", event_id, "--endpoint-url", server.endpoint,
         "--region", "us-east-1", *extra],
        env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )


def verify_store(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [trailkeeper_bin(), "verify-store", "--data-dir", str(data_dir)],
        env=clean_env(), capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )


def records(count: int, marker: str, region: str = "us-east-1", account: str = ACCOUNT_ID) -> list[dict]:
    now = utcnow() - dt.timedelta(minutes=2)
    return [
        make_record(event_time=now - dt.timedelta(seconds=i), event_name=marker, region=region, account=account,
                    requestParameters={"i": i})
        for i in range(count)
    ]


def proof_when_ready(server, event_id: str, **params) -> dict:
    """The inclusion proof, once the event is in the tree and a checkpoint covers it."""
    def ready():
        result = integrity(server, "GET", "inclusion-proof", eventId=event_id, **params)
        if result.status == 200:
            return result.json()
        assert result.error_code() in ("EventNotYetInTreeException", "EventNotYetCheckpointedException"), result.describe()
        return None
    return eventually(ready, timeout=20, what=f"an inclusion proof of {event_id}")


# --- tests -----------------------------------------------------------------------------


def test_prove_event_verifies_events_of_every_region_for_readers_too(server_factory):
    server = server_factory(extra_env=EVERY_SECOND)
    east, west = records(40, "IntegrityEast"), records(25, "IntegrityWest", region="eu-west-1")
    assert server.ingest_ok(east + west)["accepted"] == 65

    for record, creds in ((east[17], IMPORTER), (west[3], IMPORTER), (east[0], READER)):
        proof_when_ready(server, record["eventID"])
        run = prove_event(server, record["eventID"], creds=creds)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "VERIFIED" in run.stdout.splitlines()[-1]
        assert f"/{record['awsRegion']}, leaf" in run.stdout, run.stdout

    missing = prove_event(server, "no-such-event")
    assert missing.returncode == 1
    assert "EventNotFoundException" in missing.stderr


def test_prove_event_refuses_a_checkpoint_signed_by_another_key(server_factory, tmp_path):
    server = server_factory(extra_env=EVERY_SECOND)
    record = records(3, "IntegrityKeys")[1]
    server.ingest_ok([record])
    answer = proof_when_ready(server, record["eventID"])

    # A key of another Region: the checkpoint names a key with another fingerprint.
    other = server.client(region="eu-west-1").list_public_keys()["PublicKeyList"][0]
    wrong = tmp_path / "other.der"
    wrong.write_bytes(other["Value"])
    run = prove_event(server, record["eventID"], "--public-key", str(wrong))
    assert run.returncode == 1, run.stdout
    assert "NOT VERIFIED" in run.stdout and "fingerprint" in run.stdout, run.stdout

    right = tmp_path / "right.b64"
    right.write_bytes(base64.b64encode(public_key_der(server, "us-east-1", answer["checkpoint"]["keyFingerprint"])))
    run = prove_event(server, record["eventID"], "--public-key", str(right))
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"key file {right}" in run.stdout


def test_the_api_answers_proofs_an_independent_verifier_accepts(server_factory):
    server = server_factory(extra_env=EVERY_SECOND)
    first_batch = records(30, "IntegrityApiOne")
    server.ingest_ok(first_batch)
    answer = proof_when_ready(server, first_batch[5]["eventID"])
    first = answer["checkpoint"]

    event = answer["event"].encode()
    assert json.loads(event)["eventID"] == first_batch[5]["eventID"]
    assert leaf_hash(event).hex() == answer["leafHash"]
    path = [bytes.fromhex(h) for h in answer["inclusionPath"]]
    root = bytes.fromhex(first["rootHash"])
    assert answer["treeSize"] == first["treeSize"]
    assert verify_inclusion(leaf_hash(event), answer["leafIndex"], answer["treeSize"], path, root)
    assert not verify_inclusion(leaf_hash(event + b" "), answer["leafIndex"], answer["treeSize"], path, root)
    check_signature(server, first)

    # More events, a later checkpoint, and the proof that it extends the first.
    second_batch = records(50, "IntegrityApiTwo")
    server.ingest_ok(second_batch)
    later = proof_when_ready(server, second_batch[-1]["eventID"])["checkpoint"]
    assert later["treeSize"] > first["treeSize"]
    result = integrity(server, "GET", "consistency-proof", firstTreeSize=first["treeSize"], secondTreeSize=later["treeSize"])
    assert result.status == 200, result.describe()
    consistency = result.json()
    assert consistency["firstCheckpoint"] == first and consistency["secondCheckpoint"] == later
    assert verify_consistency(
        first["treeSize"], later["treeSize"], bytes.fromhex(first["rootHash"]), bytes.fromhex(later["rootHash"]),
        [bytes.fromhex(h) for h in consistency["consistencyPath"]],
    )
    check_signature(server, later)

    latest = integrity(server, "GET", "checkpoint")
    assert latest.status == 200 and latest.json()["checkpoint"]["treeSize"] >= later["treeSize"]
    exact = integrity(server, "GET", "checkpoint", treeSize=first["treeSize"])
    assert exact.json()["checkpoint"] == first
    trees = integrity(server, "GET", "trees").json()["trees"]
    assert [(t["accountId"], t["region"]) for t in trees] == [(ACCOUNT_ID, "us-east-1")]

    # Errors speak AWS's JSON shape.
    for params, creds, code in (
        ({"eventId": "nope"}, IMPORTER, "EventNotFoundException"),
        ({}, IMPORTER, "InvalidParameterException"),
        ({"eventId": "x", "colour": "red"}, IMPORTER, "InvalidParameterException"),
        ({"eventId": first_batch[0]["eventID"], "treeSize": "7"}, IMPORTER, "CheckpointNotFoundException"),
        # The reader reaches its own account only; the importer reaches every account.
        ({"eventId": first_batch[0]["eventID"], "accountId": BOB.account_id}, READER, "AccessDeniedException"),
        ({"eventId": first_batch[0]["eventID"], "accountId": BOB.account_id}, IMPORTER, "EventNotFoundException"),
    ):
        result = integrity(server, "GET", "inclusion-proof", creds=creds, **params)
        assert result.status == 400 and result.error_code() == code, (params, result.describe())
        assert result.json()["message"]
    result = integrity(server, "GET", "consistency-proof", firstTreeSize=later["treeSize"], secondTreeSize=first["treeSize"])
    assert result.error_code() == "InvalidParameterException", result.describe()


def test_an_event_past_the_latest_checkpoint_gets_a_retryable_error_until_one_is_signed(server_factory):
    server = server_factory(extra_env=HOURLY)
    record = records(1, "IntegrityPending")[0]
    server.ingest_ok([record])

    def refused():
        result = integrity(server, "GET", "inclusion-proof", eventId=record["eventID"])
        if result.error_code() == "EventNotYetInTreeException":
            assert result.status == 503 and result.header("Retry-After") == "1", result.describe()
            return None
        return result
    result = eventually(refused, timeout=20, what="the event in its tree")
    assert result.status == 409 and result.error_code() == "EventNotYetCheckpointedException", result.describe()
    assert "POST /v1/integrity/checkpoint" in result.json()["message"]

    denied = integrity(server, "POST", "checkpoint", creds=READER)
    assert denied.status == 400 and denied.error_code() == "AccessDeniedException", denied.describe()
    signed = integrity(server, "POST", "checkpoint")
    assert signed.status == 200, signed.describe()
    assert signed.json()["created"] is True
    again = integrity(server, "POST", "checkpoint")
    assert again.json()["checkpoint"]["treeSize"] >= signed.json()["checkpoint"]["treeSize"]
    run = prove_event(server, record["eventID"])
    assert run.returncode == 0, run.stdout + run.stderr

    # The calls are audited like CloudTrail's own.
    events = server.client().lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "SignCheckpoint"}]
    )["Events"]
    assert len(events) == 3, events


def rewrite_segment(parquet: Path, *, alter: str, drop: str, copy: str, forged_id: str, marker: str) -> None:
    """Rewrites one sealed segment as an intruder would, with DuckDB's defaults: one event's
    JSON changed, another event gone, and a copy of a third under a new ID and position."""
    con = duckdb.connect()
    edited = parquet.with_suffix(".edited")
    source = f"read_parquet('{parquet}', hive_partitioning = false)"
    con.execute(
        f"""COPY (
              SELECT * REPLACE (
                CASE WHEN event_id = ? THEN replace(event_json, ?, 'TamperedName') ELSE event_json END AS event_json)
              FROM {source} WHERE event_id <> ?
              UNION ALL
              SELECT * REPLACE (? AS event_id, 1000000 AS seq) FROM {source} WHERE event_id = ?
            ) TO '{edited}' (FORMAT PARQUET)""",
        [alter, marker, drop, forged_id, copy],
    )
    edited.replace(parquet)


def test_verify_store_names_the_event_edited_in_a_sealed_segment(server_factory):
    server = server_factory(extra_env=EVERY_SECOND)
    batch = records(60, "IntegritySealed")
    server.ingest_ok(batch + records(10, "IntegrityOther", region="eu-west-1"))
    altered, dropped = batch[7], batch[30]
    proof = proof_when_ready(server, altered["eventID"])
    dropped_seq = proof_when_ready(server, dropped["eventID"])["seq"]
    run = prove_event(server, altered["eventID"])
    assert run.returncode == 0, run.stdout + run.stderr
    assert server.stop() == 0, server.log_tail()

    data_dir = Path(server.data_dir)
    clean = verify_store(data_dir)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.rstrip().endswith("every checkpoint is signed and matches"), clean.stdout

    def holds(segment: Path, event_id: str) -> bool:
        query = f"SELECT count(*) FROM read_parquet('{segment}', hive_partitioning = false) WHERE event_id = ?"
        return duckdb.connect().execute(query, [event_id]).fetchone()[0] == 1

    segments = list((data_dir / "segments" / f"account={ACCOUNT_ID}" / "region=us-east-1").rglob("*.parquet"))
    holder = [segment for segment in segments if holds(segment, altered["eventID"])]
    assert len(holder) == 1, segments
    assert holds(holder[0], dropped["eventID"]), "both victims are in one segment"
    forged_id = f"forged-{batch[40]['eventID']}"
    rewrite_segment(
        holder[0], alter=altered["eventID"], drop=dropped["eventID"], copy=batch[40]["eventID"], forged_id=forged_id,
        marker="IntegritySealed",
    )

    tampered = verify_store(data_dir)
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    lines = tampered.stdout.splitlines()
    altered_lines = [line for line in lines if line.strip().startswith("ALTERED:")]
    assert len(altered_lines) == 1, tampered.stdout
    assert altered["eventID"] in altered_lines[0] and f"seq {proof['seq']}," in altered_lines[0], altered_lines
    dropped_lines = [line for line in lines if line.strip().startswith("DROPPED:")]
    assert len(dropped_lines) == 1 and f"seq {dropped_seq} " in dropped_lines[0], tampered.stdout
    inserted_lines = [line for line in lines if line.strip().startswith("INSERTED:")]
    assert len(inserted_lines) == 1 and forged_id in inserted_lines[0] and "seq 1000000)" in inserted_lines[0], tampered.stdout
    checkpoint_lines = [line for line in lines if line.strip().startswith("CHECKPOINT")]
    assert checkpoint_lines and all("rebuilt" in line for line in checkpoint_lines), tampered.stdout
    assert "findings" in tampered.stderr
    # The other Region's tree is untouched and says so.
    assert any("/eu-west-1: 10 leaves; 10 match" in line for line in lines), tampered.stdout


def test_after_kill_9_every_acknowledged_event_is_provable_and_the_store_verifies(server_factory):
    server = server_factory(extra_env=EVERY_SECOND)
    acknowledged: list[dict] = []
    for round_number in range(5):
        batch = records(400, f"IntegrityCrash{round_number}")
        server.ingest_ok(batch)
        acknowledged += batch
    server.kill()  # no seal, no last checkpoint: the trees and the journal as a crash leaves them

    server.start()
    for record in (acknowledged[0], acknowledged[777], acknowledged[-1]):
        proof_when_ready(server, record["eventID"])
        run = prove_event(server, record["eventID"])
        assert run.returncode == 0, run.stdout + run.stderr
    assert server.stop() == 0, server.log_tail()

    verified = verify_store(Path(server.data_dir))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    us_east = [line for line in verified.stdout.splitlines() if line.startswith(f"tree {ACCOUNT_ID}/us-east-1:")]
    assert len(us_east) == 1, verified.stdout
    leaves = int(us_east[0].split(": ")[1].split(" leaves")[0])
    assert leaves >= len(acknowledged), us_east[0]
    assert f"{leaves} leaves; {leaves} match their events" in us_east[0]
