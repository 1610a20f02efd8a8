"""Log file validation end to end: digest files that the real `aws cloudtrail validate-logs`
accepts, and the exact verdict it gives for each kind of tampering.

The servers here deliver every second and cut a digest every two seconds. The AWS CLI is
pointed at Trailkeeper for both CloudTrail and S3 through AWS_ENDPOINT_URL_CLOUDTRAIL and
AWS_ENDPOINT_URL_S3, since validate-logs passes --endpoint-url to its CloudTrail client only.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import re
import time

import pytest
import rsa

from bucket_files import copy_object, object_path, read_object
from e2e_helpers import (
    ACCOUNT_ID,
    IMPORTER,
    CliResult,
    aws_validate_logs,
    eventually,
    make_record,
    stop_logging_and_wait_for_the_closing_digest,
    utcnow,
)

FAST = {"TRAILKEEPER_DELIVERY_INTERVAL_SECONDS": "1", "TRAILKEEPER_DIGEST_INTERVAL_SECONDS": "2"}
BUCKET = "audit-logs"
TRAIL = "org-trail"
ARN = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT_ID}:trail/{TRAIL}"
DIGEST_PREFIX = f"AWSLogs/{ACCOUNT_ID}/CloudTrail-Digest/"
DIGEST_KEY = re.compile(
    rf"^AWSLogs/{ACCOUNT_ID}/CloudTrail-Digest/(?P<region>[a-z0-9-]+)/(?P<y>\d{{4}})/(?P<m>\d{{2}})/(?P<d>\d{{2}})/"
    rf"{ACCOUNT_ID}_CloudTrail-Digest_(?P=region)_{TRAIL}_us-east-1_(?P=y)(?P=m)(?P=d)T\d{{6}}Z\.json\.gz$"
)


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def validate_logs(server, start: str, *extra: str, region: str = "us-east-1") -> CliResult:
    """The real `aws cloudtrail validate-logs --verbose` over this trail, from `start`."""
    return aws_validate_logs(server.endpoint, "--trail-arn", ARN, "--start-time", start, "--verbose", *extra,
                             region=region)


def s3_client(server):
    return server.client(region="us-east-1", creds=IMPORTER, service="s3", s3={"addressing_style": "path"})


def keys_under(s3, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def digest_keys(s3, region: str = "us-east-1") -> list[str]:
    """The region's digest keys, oldest first (their names sort by end time)."""
    return sorted(keys_under(s3, f"{DIGEST_PREFIX}{region}/"))


def read_digest(s3, key: str) -> tuple[dict, dict, bytes]:
    response = s3.get_object(Bucket=BUCKET, Key=key)
    raw = gzip.decompress(response["Body"].read())
    return json.loads(raw), response["Metadata"], raw


def ingest_round(server, count: int = 3, region: str = "us-east-1") -> list[dict]:
    records = [
        make_record(event_time=utcnow(), read_only=False, event_name="RunInstances", region=region)
        for _ in range(count)
    ]
    server.ingest_ok(records)
    return records


def start_validating_trail(server) -> dt.datetime:
    """Creates the bucket and a logging trail with log file validation; returns a start time
    for validate-logs that is safely before the first digest."""
    assert server.aws("s3api", "create-bucket", "--bucket", BUCKET).returncode == 0
    server.aws(
        "cloudtrail", "create-trail", "--name", TRAIL, "--s3-bucket-name", BUCKET, "--enable-log-file-validation"
    ).json()
    start = utcnow() - dt.timedelta(seconds=2)
    assert server.aws("cloudtrail", "start-logging", "--name", TRAIL).returncode == 0
    return start


def stop_and_wait_for_the_final_digest(server) -> None:
    stop_logging_and_wait_for_the_closing_digest(server, TRAIL, BUCKET)


@pytest.fixture(scope="module")
def chain(module_server_factory):
    """The issue's scenario: validation turned on for a logging multi-Region trail, events
    over several digest periods, a restart in the middle of a period, and a stop and start
    of logging. Logging is stopped at the end, so the chain holds still for the tests."""
    server = module_server_factory(extra_env=FAST, name="digests")
    assert server.aws("s3api", "create-bucket", "--bucket", BUCKET).returncode == 0
    server.aws("cloudtrail", "create-trail", "--name", TRAIL, "--s3-bucket-name", BUCKET, "--is-multi-region-trail").json()
    assert server.aws("cloudtrail", "start-logging", "--name", TRAIL).returncode == 0
    start = utcnow() - dt.timedelta(seconds=2)
    updated = server.aws("cloudtrail", "update-trail", "--name", TRAIL, "--enable-log-file-validation").json()
    assert updated["LogFileValidationEnabled"] is True

    s3 = s3_client(server)
    ingested = ingest_round(server) + ingest_round(server, region="eu-west-1")
    time.sleep(2.5)
    ingested += ingest_round(server)
    time.sleep(1.2)
    server.restart()
    ingested += ingest_round(server)
    time.sleep(2.5)
    assert server.aws("cloudtrail", "stop-logging", "--name", TRAIL).returncode == 0
    time.sleep(1.5)
    assert server.aws("cloudtrail", "start-logging", "--name", TRAIL).returncode == 0
    ingested += ingest_round(server)
    time.sleep(2.5)
    ingested += ingest_round(server)
    time.sleep(1.5)
    stop_and_wait_for_the_final_digest(server)
    return {"server": server, "start": iso(start), "ingested": ingested}


def test_the_aws_cli_validates_an_untouched_chain(chain):
    server = chain["server"]
    s3 = s3_client(server)
    result = validate_logs(server, chain["start"])
    assert result.returncode == 0, result.stdout + result.stderr

    digests = digest_keys(s3)
    logs = keys_under(s3, f"AWSLogs/{ACCOUNT_ID}/CloudTrail/us-east-1/")
    assert len(digests) >= 5 and logs
    for key in digests:
        assert f"Digest file\ts3://{BUCKET}/{key}\tvalid" in result.stdout
    for key in logs:
        assert f"Log file\ts3://{BUCKET}/{key}\tvalid" in result.stdout, f"{key} is in no valid digest"
    assert f"{len(digests)}/{len(digests)} digest files valid" in result.stdout
    assert f"{len(logs)}/{len(logs)} log files valid" in result.stdout
    # The stop and start of logging broke the chain once, which the CLI reports as a gap.
    assert "No log files were delivered by CloudTrail between" in result.stderr
    assert "INVALID" not in result.stdout + result.stderr

    # Every delivered event is in a log file some digest vouches for.
    vouched = set()
    for key in digests:
        digest, _, _ = read_digest(s3, key)
        vouched |= {entry["s3Object"] for entry in digest["logFiles"]}
    delivered_ids = set()
    for key in vouched:
        body = gzip.decompress(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        delivered_ids |= {record["eventID"] for record in json.loads(body)["Records"]}
    assert {record["eventID"] for record in chain["ingested"] if record["awsRegion"] == "us-east-1"} <= delivered_ids


def test_digests_are_laid_out_signed_and_chained_as_cloudtrail_does(chain):
    server = chain["server"]
    s3 = s3_client(server)
    keys = digest_keys(s3)
    public_keys = {
        key["Fingerprint"]: key["Value"]
        for key in server.client(region="us-east-1", creds=IMPORTER).list_public_keys(
            StartTime=dt.datetime(2020, 1, 1), EndTime=utcnow() + dt.timedelta(hours=1)
        )["PublicKeyList"]
    }
    starting = 0
    previous = None
    for key in keys:
        assert DIGEST_KEY.match(key), key
        digest, metadata, raw = read_digest(s3, key)
        assert list(digest) == [
            "awsAccountId", "digestStartTime", "digestEndTime", "digestS3Bucket", "digestS3Object",
            "digestPublicKeyFingerprint", "digestSignatureAlgorithm", "newestEventTime", "oldestEventTime",
            "previousDigestS3Bucket", "previousDigestS3Object", "previousDigestHashValue",
            "previousDigestHashAlgorithm", "previousDigestSignature", "logFiles",
        ]
        assert (digest["digestS3Bucket"], digest["digestS3Object"]) == (BUCKET, key)
        assert key[-24:-8] == digest["digestEndTime"].replace("-", "").replace(":", "")
        assert metadata["signature-algorithm"] == digest["digestSignatureAlgorithm"] == "SHA256withRSA"
        assert re.fullmatch(r"[0-9a-f]{512}", metadata["signature"]), "a hex RSA-2048 signature"
        # Verify independently of the AWS CLI, with python-rsa and the listed public key.
        signed = "\n".join(
            [
                digest["digestEndTime"],
                f"{BUCKET}/{key}",
                hashlib.sha256(raw).hexdigest(),
                digest["previousDigestSignature"] or "null",
            ]
        )
        der = public_keys[digest["digestPublicKeyFingerprint"]]  # boto3 decodes the blob
        assert hashlib.md5(der).hexdigest() == digest["digestPublicKeyFingerprint"]
        rsa.verify(signed.encode(), bytes.fromhex(metadata["signature"]), rsa.PublicKey.load_pkcs1(der, "DER"))
        if digest["previousDigestSignature"] is None:
            starting += 1
            assert digest["previousDigestS3Object"] is None and digest["previousDigestHashValue"] is None
        else:
            # Chained: the previous digest's key, the hash of its bytes and its signature.
            assert previous is not None
            assert digest["previousDigestS3Object"] == previous[0]
            assert digest["previousDigestHashValue"] == hashlib.sha256(previous[1]).hexdigest()
            assert digest["previousDigestHashAlgorithm"] == "SHA-256"
            assert digest["previousDigestSignature"] == previous[2]
            assert digest["digestStartTime"] == previous[3]
        for entry in digest["logFiles"]:
            body = gzip.decompress(s3.get_object(Bucket=BUCKET, Key=entry["s3Object"])["Body"].read())
            assert entry["hashValue"] == hashlib.sha256(body).hexdigest()
            times = [record["eventTime"] for record in json.loads(body)["Records"]]
            assert (entry["oldestEventTime"], entry["newestEventTime"]) == (min(times), max(times))
        if not digest["logFiles"]:
            assert digest["newestEventTime"] is None and digest["oldestEventTime"] is None
        previous = (key, raw, metadata["signature"], digest["digestEndTime"])
    # One chain from enabling validation, one from starting logging again; the restart
    # in between continued the first.
    assert starting == 2

    status = server.aws("cloudtrail", "get-trail-status", "--name", TRAIL).json()
    assert "LatestDigestDeliveryTime" in status and "LatestDigestDeliveryError" not in status


def test_the_aws_cli_validates_another_regions_chain(chain):
    server = chain["server"]
    s3 = s3_client(server)
    assert digest_keys(s3, "eu-west-1"), "a multi-Region trail digests every Region it delivered to"
    result = validate_logs(server, chain["start"], region="eu-west-1")
    assert result.returncode == 0, result.stdout + result.stderr
    logs = keys_under(s3, f"AWSLogs/{ACCOUNT_ID}/CloudTrail/eu-west-1/")
    assert logs and all(f"Log file\ts3://{BUCKET}/{key}\tvalid" in result.stdout for key in logs)


# --- tampering: each case changes the stored files while the server is stopped, runs the
# --- CLI, and puts everything back.


def tampered(chain, change) -> CliResult:
    server = chain["server"]
    server.stop()
    undo = change(server.data_dir)
    server.start()
    try:
        return validate_logs(server, chain["start"])
    finally:
        server.stop()
        undo()
        server.start()


def keep(path):
    original = path.read_bytes()
    return lambda: path.write_bytes(original)


def deleting(key: str):
    """A change that deletes the object `key` from disk."""

    def change(data_dir):
        path = object_path(data_dir, BUCKET, key)
        undo = keep(path)
        path.unlink()
        return undo

    return change


def chain_files(chain) -> tuple[list[str], dict[str, list[str]]]:
    """The us-east-1 digest keys, oldest first, and the log files each lists."""
    s3 = s3_client(chain["server"])
    keys = digest_keys(s3)
    return keys, {key: [entry["s3Object"] for entry in read_digest(s3, key)[0]["logFiles"]] for key in keys}


def assert_invalid(result: CliResult, kind: str, key: str, verdict: str) -> None:
    """The CLI failed, naming `key` with this verdict, as it prints it on stderr."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{kind}\ts3://{BUCKET}/{key}\tINVALID: {verdict}" in result.stderr, result.stderr


def test_a_modified_log_file_is_named(chain):
    keys, logs = chain_files(chain)
    s3 = s3_client(chain["server"])

    def has_run_instances(key: str) -> bool:
        return b'"RunInstances"' in gzip.decompress(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())

    # A log file may hold only the trail's own calls; the edit needs one with an ingested event.
    target = next(log for key in keys for log in logs[key] if has_run_instances(log))

    def change(data_dir):
        stored = read_object(data_dir, BUCKET, target)
        undo = keep(stored.path)
        body = gzip.decompress(stored.body).replace(b'"RunInstances"', b'"RunInstance5"', 1)
        stored.body = gzip.compress(body)
        stored.save()
        return undo

    result = tampered(chain, change)
    assert_invalid(result, "Log file", target, "hash value doesn't match")
    assert re.search(r"log files valid, 1/\d+ log files INVALID", result.stdout), result.stdout


@pytest.mark.parametrize("kind", ["Log file", "Digest file"])
def test_a_deleted_file_is_named(chain, kind):
    keys, logs = chain_files(chain)
    # A log file of the newest digest that lists any; a digest in the middle of the chain.
    target = [log for key in keys for log in logs[key]][-1] if kind == "Log file" else keys[-3]
    assert_invalid(tampered(chain, deleting(target)), kind, target, "not found")


def test_a_modified_digest_is_named(chain):
    keys, _ = chain_files(chain)
    target = keys[-2]

    def change(data_dir):
        stored = read_object(data_dir, BUCKET, target)
        undo = keep(stored.path)
        digest = json.loads(gzip.decompress(stored.body))
        # Vouch for a log file the trail never delivered.
        digest["logFiles"].append(
            {
                "s3Bucket": BUCKET, "s3Object": "AWSLogs/forged.json.gz", "hashValue": "00" * 32,
                "hashAlgorithm": "SHA-256", "newestEventTime": digest["digestEndTime"],
                "oldestEventTime": digest["digestEndTime"],
            }
        )
        stored.body = gzip.compress(json.dumps(digest, separators=(",", ":")).encode())
        stored.save()
        return undo

    assert_invalid(tampered(chain, change), "Digest file", target, "signature verification failed")


def test_a_digest_copied_to_another_key_is_named(chain):
    keys, _ = chain_files(chain)
    newest = keys[-1]
    # The same name one second later: the newest digest in the listing, where the CLI starts.
    stamp = dt.datetime.strptime(newest[-24:-8], "%Y%m%dT%H%M%SZ") + dt.timedelta(seconds=1)
    moved = newest[:-24] + stamp.strftime("%Y%m%dT%H%M%SZ") + ".json.gz"

    def change(data_dir):
        copy = copy_object(data_dir, BUCKET, newest, moved)
        return copy.path.unlink

    assert_invalid(tampered(chain, change), "Digest file", moved, "has been moved from its original location")


def test_a_digest_signed_by_an_unknown_key_is_named(chain):
    keys, _ = chain_files(chain)
    target = keys[-2]
    public, private = rsa.newkeys(2048)
    fingerprint = hashlib.md5(public.save_pkcs1("DER")).hexdigest()

    def change(data_dir):
        stored = read_object(data_dir, BUCKET, target)
        undo = keep(stored.path)
        digest = json.loads(gzip.decompress(stored.body))
        digest["digestPublicKeyFingerprint"] = fingerprint
        raw = json.dumps(digest, separators=(",", ":")).encode()
        signed = "\n".join(
            [
                digest["digestEndTime"],
                f"{BUCKET}/{target}",
                hashlib.sha256(raw).hexdigest(),
                digest["previousDigestSignature"] or "null",
            ]
        )
        stored.header["metadata"]["user_metadata"]["signature"] = rsa.sign(signed.encode(), private, "SHA-256").hex()
        stored.body = gzip.compress(raw)
        stored.save()
        return undo

    verdict = f"public key not found in region us-east-1 for fingerprint {fingerprint}"
    assert_invalid(tampered(chain, change), "Digest file", target, verdict)


def test_the_chain_is_valid_again_once_every_file_is_back(chain):
    result = validate_logs(chain["server"], chain["start"])
    assert result.returncode == 0, result.stdout + result.stderr


# --- keys ------------------------------------------------------------------------------


def test_digests_signed_before_a_key_rotation_still_validate(server_factory):
    server = server_factory(
        extra_env={
            "TRAILKEEPER_DELIVERY_INTERVAL_SECONDS": "1",
            "TRAILKEEPER_DIGEST_INTERVAL_SECONDS": "1",
            "TRAILKEEPER_SIGNING_KEY_ROTATION_SECONDS": "3",
        }
    )
    start = start_validating_trail(server)
    for _ in range(4):
        ingest_round(server, count=2)
        time.sleep(2)
    stop_and_wait_for_the_final_digest(server)
    s3 = s3_client(server)

    fingerprints = {read_digest(s3, key)[0]["digestPublicKeyFingerprint"] for key in digest_keys(s3)}
    assert len(fingerprints) >= 2, "the chain spans a rotation"
    listed = server.client(region="us-east-1", creds=IMPORTER).list_public_keys(
        StartTime=start, EndTime=utcnow()
    )["PublicKeyList"]
    assert fingerprints <= {key["Fingerprint"] for key in listed}
    for older, newer in zip(listed, listed[1:]):
        assert older["ValidityEndTime"] == newer["ValidityStartTime"], "validity windows follow each other"

    result = validate_logs(server, iso(start))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "INVALID" not in result.stdout + result.stderr


def test_list_public_keys_answers_as_cloudtrail(server_factory):
    server = server_factory()
    client = server.client(region="eu-central-1", creds=IMPORTER)
    current = client.list_public_keys()["PublicKeyList"]
    assert len(current) == 1, "with no range, the current key"
    key = current[0]
    assert key["Value"][:4] == b"\x30\x82\x01\x0a", "DER PKCS#1 RSAPublicKey (boto3 decodes the blob)"
    assert key["Fingerprint"] == hashlib.md5(key["Value"]).hexdigest()
    assert key["ValidityStartTime"] <= dt.datetime.now(dt.timezone.utc) < key["ValidityEndTime"]
    other = server.client(region="us-west-2", creds=IMPORTER).list_public_keys()["PublicKeyList"]
    assert other[0]["Fingerprint"] != key["Fingerprint"], "keys are per Region"
    assert client.list_public_keys()["PublicKeyList"] == current, "the same key until it rotates"

    with pytest.raises(client.exceptions.InvalidTimeRangeException):
        client.list_public_keys(StartTime=utcnow(), EndTime=utcnow() - dt.timedelta(hours=1))
    with pytest.raises(client.exceptions.InvalidTokenException):
        client.list_public_keys(NextToken="anything")
    cli = server.aws("cloudtrail", "list-public-keys", region="eu-central-1").json()
    assert cli["PublicKeyList"][0]["Value"].startswith("MIIBCgKCAQEA"), "the CLI shows the DER key's base64"


def test_turning_validation_off_or_deleting_the_trail_closes_the_chain(server_factory):
    server = server_factory(extra_env={**FAST, "TRAILKEEPER_DIGEST_INTERVAL_SECONDS": "3600"})
    start_validating_trail(server)
    s3 = s3_client(server)
    ingest_round(server)
    time.sleep(2.5)
    # An hour-long period: only closing the chain writes a digest now.
    assert digest_keys(s3) == []
    server.aws("cloudtrail", "update-trail", "--name", TRAIL, "--no-enable-log-file-validation").json()
    first = eventually(lambda: digest_keys(s3), timeout=10, interval=0.3, what="the digest closing the chain")
    digest, _, _ = read_digest(s3, first[0])
    assert digest["previousDigestSignature"] is None and digest["logFiles"], "the period's log files"

    logs_before = set(keys_under(s3, f"AWSLogs/{ACCOUNT_ID}/CloudTrail/"))
    server.aws("cloudtrail", "update-trail", "--name", TRAIL, "--enable-log-file-validation").json()
    new_ids = [record["eventID"].encode() for record in ingest_round(server)]

    def delivered_in_new_chain():
        # A file the closing batch was still writing may land after the snapshot; wait for
        # the one that holds this round's events.
        for key in set(keys_under(s3, f"AWSLogs/{ACCOUNT_ID}/CloudTrail/")) - logs_before:
            body = gzip.decompress(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
            if any(event_id in body for event_id in new_ids):
                return key
        return None

    eventually(delivered_in_new_chain, timeout=10, interval=0.3, what="a log file delivered in the new chain")
    assert len(digest_keys(s3)) == 1
    assert server.aws("cloudtrail", "delete-trail", "--name", TRAIL).returncode == 0
    keys = eventually(
        lambda: (found if len(found := digest_keys(s3)) == 2 else None), timeout=10, interval=0.3,
        what="the final digest of the deleted trail",
    )
    final, _, _ = read_digest(s3, keys[-1])
    assert final["previousDigestSignature"] is None, "validation turned on again started a new chain"
    assert final["logFiles"], "the log files delivered before the trail was deleted"


def test_a_deleted_trails_final_digest_is_retried_until_its_bucket_is_back(server_factory, s3_compatible_server):
    from e2e_helpers import config_toml

    s3_compatible_server.create_bucket("remote-logs")
    config = config_toml(extra=s3_compatible_server.external_bucket_toml("remote-logs"))
    server = server_factory(config=config, extra_env={**FAST, "TRAILKEEPER_DIGEST_INTERVAL_SECONDS": "3600"})
    client = server.client()
    client.create_trail(Name=TRAIL, S3BucketName="remote-logs", EnableLogFileValidation=True)
    client.start_logging(Name=TRAIL)
    ingest_round(server)
    remote = s3_compatible_server.client()

    def remote_keys(prefix: str) -> list[str]:
        listed = remote.list_objects_v2(Bucket="remote-logs", Prefix=prefix).get("Contents", [])
        return sorted(item["Key"] for item in listed)

    eventually(lambda: remote_keys(f"AWSLogs/{ACCOUNT_ID}/CloudTrail/"), timeout=15, interval=0.3, what="a log file")
    # The bucket's server goes down, then the trail is deleted.
    s3_compatible_server.close()
    client.delete_trail(Name=TRAIL)
    time.sleep(2.5)  # the first attempts fail
    s3_compatible_server.restart()
    keys = eventually(
        lambda: remote_keys(DIGEST_PREFIX), timeout=20, interval=0.3, what="the deleted trail's final digest"
    )
    assert len(keys) == 1 and DIGEST_KEY.search(keys[0]), keys
    digest = json.loads(gzip.decompress(remote.get_object(Bucket="remote-logs", Key=keys[0])["Body"].read()))
    assert digest["logFiles"], "the log files delivered before the trail was deleted"


def test_kill_9_during_delivery_and_digests_leaves_a_valid_chain(server_factory):
    server = server_factory(extra_env=FAST)
    start = start_validating_trail(server)
    for cycle in range(3):
        for _ in range(4):
            ingest_round(server, count=20)
            time.sleep(0.4 + 0.25 * cycle)
        server.kill()
        server.start()
    ingest_round(server)
    time.sleep(2)
    stop_and_wait_for_the_final_digest(server)
    s3 = s3_client(server)

    result = validate_logs(server, iso(start))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "INVALID" not in result.stdout + result.stderr
    logs = keys_under(s3, f"AWSLogs/{ACCOUNT_ID}/CloudTrail/us-east-1/")
    missing = [key for key in logs if f"Log file\ts3://{BUCKET}/{key}\tvalid" not in result.stdout]
    assert not missing, f"delivered log files that no digest covers: {missing}"
    # Killed chains go on where they were: one starting digest in all.
    previous = [read_digest(s3, key)[0]["previousDigestSignature"] for key in digest_keys(s3)]
    assert previous.count(None) == 1
