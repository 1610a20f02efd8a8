"""Open formats: after a graceful shutdown every event sits in Parquet segments that DuckDB
reads as they are, laid out as account=/region=/date= folders; and the server restarts on them."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import botocore.exceptions
import duckdb
import pytest

from e2e_helpers import (
    ACCOUNT_ID,
    OTHER_ACCOUNT_ID,
    by_attr,
    clean_env,
    config_toml,
    eventually,
    lookup_all,
    make_record,
    trailkeeper_bin,
    utcnow,
)

ACCOUNTS = (ACCOUNT_ID, OTHER_ACCOUNT_ID)
REGIONS = ("us-east-1", "eu-west-1")
DAYS_BACK = (0, 1, 40)
PER_PARTITION = 25
LAYOUT = re.compile(r"account=([^/]+)/region=([^/]+)/date=(\d{4}-\d{2}-\d{2})/[^/]+\.parquet")


def dataset(marker: str) -> list[dict]:
    now = utcnow() - dt.timedelta(minutes=5)
    records = []
    for account in ACCOUNTS:
        for region in REGIONS:
            for days in DAYS_BACK:
                for i in range(PER_PARTITION):
                    records.append(
                        make_record(
                            event_time=now - dt.timedelta(days=days, seconds=i),
                            event_name=marker,
                            region=region,
                            account=account,
                            username=f"storage-{i % 3}",
                            requestParameters={"i": i, "days": days},
                        )
                    )
    return records


def event_id_column(con, glob: str) -> str:
    columns = [row[0] for row in con.execute(
        f"DESCRIBE SELECT * FROM read_parquet('{glob}', hive_partitioning = true, hive_types_autocast = false)"
    ).fetchall()]
    for column in columns:
        if re.sub(r"[^a-z]", "", column.lower()) == "eventid":
            return column
    raise AssertionError(f"no event ID column among {columns}")


@pytest.fixture
def stored(server):
    marker = f"E2eStorage{uuid.uuid4().hex[:8]}"
    records = dataset(marker)
    summary = server.ingest_ok(records)
    assert summary["accepted"] == len(records), summary
    rc = server.stop()
    assert rc == 0, f"graceful shutdown exited with {rc}\n{server.log_tail()}"
    return server, marker, records


def test_duckdb_reads_every_event_from_the_segments(stored):
    server, marker, records = stored
    segments = Path(server.data_dir) / "segments"
    files = sorted(segments.rglob("*.parquet"))
    assert files, f"no Parquet files under {segments}"
    for path in files:
        assert LAYOUT.fullmatch(str(path.relative_to(segments))), f"unexpected layout: {path.relative_to(segments)}"

    glob = f"{segments}/**/*.parquet"
    con = duckdb.connect()
    id_col = event_id_column(con, glob)
    rows = con.execute(
        f'SELECT "{id_col}", account, region, "date" FROM read_parquet(?, hive_partitioning = true, '
        f"hive_types_autocast = false)",
        [glob],
    ).fetchall()
    by_id = Counter(row[0] for row in rows)
    ours = {r["eventID"]: r for r in records}
    found = {event_id: n for event_id, n in by_id.items() if event_id in ours}
    assert len(found) == len(ours), f"{len(ours) - len(found)} of {len(ours)} events are not in the segments"
    assert all(n == 1 for n in found.values()), {k: n for k, n in found.items() if n > 1}
    for event_id, account, region, date in rows:
        if event_id in ours:
            rec = ours[event_id]
            assert (account, region, date) == (rec["recipientAccountId"], rec["awsRegion"], rec["eventTime"][:10]), (
                f"{event_id} is in account={account}/region={region}/date={date}"
            )


# The record members whose values segments keep in columns of their own; `event_json` keeps
# the members, with the value "".
MOVED = {"eventID": "event_id", "requestID": "request_id"}


def test_the_segments_hold_each_record_as_sent(stored):
    """`event_json` with the moved members' values put back is the record as ingested."""
    server, marker, records = stored
    glob = f"{server.data_dir}/segments/**/*.parquet"
    selected = ", ".join(["event_json", *MOVED.values()])
    rows = duckdb.connect().execute(
        f"SELECT {selected} FROM read_parquet(?, hive_partitioning = true, hive_types_autocast = false)", [glob]
    ).fetchall()
    ours = {r["eventID"]: r for r in records}
    seen = 0
    for event_json, *values in rows:
        record = json.loads(event_json)
        for (member, column), value in zip(MOVED.items(), values):
            if record.get(member) == "":
                record[member] = value
            elif member in record:
                assert value == "" or column == "event_id", f"{column} holds {value!r}, yet {member} stayed"
        if record["eventID"] in ours:
            assert record == ours[record["eventID"]], f"{record['eventID']}: the segment's record differs"
            # These records have every moved member as plain text: all of them moved.
            assert all(json.loads(event_json)[member] == "" for member in MOVED), event_json
            seen += 1
    assert seen == len(ours), f"{seen} of {len(ours)} records found"


def test_duckdb_can_query_the_segments_like_a_table(stored):
    server, marker, records = stored
    glob = f"{server.data_dir}/segments/**/*.parquet"
    con = duckdb.connect()
    counts = dict(con.execute(
        "SELECT account || '/' || region, count(*) FROM read_parquet(?, hive_partitioning = true, "
        "hive_types_autocast = false) WHERE account IN (?, ?) GROUP BY 1",
        [glob, *ACCOUNTS],
    ).fetchall())
    id_col = event_id_column(con, glob)
    ids = {row[0] for row in con.execute(
        f'SELECT "{id_col}" FROM read_parquet(?, hive_partitioning = true, hive_types_autocast = false)', [glob]
    ).fetchall()}
    expected = Counter(f"{r['recipientAccountId']}/{r['awsRegion']}" for r in records)
    for key, n in expected.items():
        assert counts.get(key, 0) >= n, f"{key}: {counts.get(key)} rows, {n} ingested"
    assert {r["eventID"] for r in records} <= ids


def test_server_restarts_on_its_sealed_segments(stored):
    server, marker, records = stored
    server.start()
    for region in REGIONS:
        client = server.client(region)
        events = lookup_all(client, LookupAttributes=by_attr("EventName", marker))
        want = {r["eventID"] for r in records if r["awsRegion"] == region}
        got = [e["EventId"] for e in events]
        assert len(got) == len(set(got)), "an event came back twice"
        assert set(got) == want, f"{region}: {len(want - set(got))} missing, {len(set(got) - want)} extra"
    # The event ids are still known after the restart: a re-sent record is a duplicate.
    again = server.ingest_ok(records[:60])
    assert [r["status"] for r in again["results"]] == ["duplicate"] * 60, again


def test_a_second_graceful_restart_changes_nothing(stored):
    server, marker, records = stored
    server.start()
    assert server.stop() == 0
    server.start()
    client = server.client("us-east-1")
    events = lookup_all(client, LookupAttributes=by_attr("EventName", marker))
    assert sorted(e["EventId"] for e in events) == sorted(r["eventID"] for r in records if r["awsRegion"] == "us-east-1")


def test_a_record_that_is_not_utf8_is_refused_and_its_neighbours_are_sealed(server):
    """JSON is UTF-8 text: bytes that are not, even in a member no field is read from, refuse
    the record alone, and the records around it reach the segments on shutdown."""
    marker = f"E2eUtf8{uuid.uuid4().hex[:8]}"
    good = [make_record(event_time=utcnow() - dt.timedelta(seconds=i), event_name=marker) for i in range(2)]
    bad = json.dumps(make_record(event_time=utcnow(), event_name=marker)).encode()
    bad = bad[:-1] + b', "extra": {"k\xff": 1}}'
    body = b"".join([json.dumps(good[0]).encode(), b"\n", bad, b"\n", json.dumps(good[1]).encode(), b"\n"])
    result = server.ingest(body=body, ndjson=True)
    assert result.status == 200, result.text
    results = sorted(result.json()["results"], key=lambda r: r["index"])
    assert [r["status"] for r in results] == ["accepted", "rejected", "accepted"], results
    assert "UTF-8" in results[1]["reason"], results[1]
    assert server.stop() == 0, server.log_tail()
    glob = f"{server.data_dir}/segments/**/*.parquet"
    stored = duckdb.connect().execute(
        "SELECT event_id FROM read_parquet(?, hive_partitioning = true, hive_types_autocast = false) "
        "WHERE event_name = ?",
        [glob, marker],
    ).fetchall()
    assert sorted(row[0] for row in stored) == sorted(r["eventID"] for r in good)


def test_compaction_merges_small_segments_and_keeps_every_record(server_factory):
    """Seals of 1 MB make a segment per batch; the compactor merges them, and every record
    reads back as sent through LookupEvents and DuckDB, once, with verify-store content."""
    extra = "[storage]\nseal_after_megabytes = 1\ncompact_settle_seconds = 0\n"
    server = server_factory(config=config_toml(extra=extra))
    marker = f"E2eCompact{uuid.uuid4().hex[:8]}"
    # Noon two days ago: every record falls on one date, apart from today's audit records.
    noon = (utcnow() - dt.timedelta(days=2)).replace(hour=12, minute=0, second=0, microsecond=0)
    padding = "x" * 700
    batches = [
        [
            make_record(event_time=noon - dt.timedelta(seconds=b * 2_000 + i), event_name=marker,
                        username=f"compact-{i % 5}", requestParameters={"batch": b, "i": i, "pad": padding})
            for i in range(1_000)
        ]
        for b in range(8)
    ]
    for batch in batches:
        assert server.ingest_ok(batch)["accepted"] == len(batch)
    records = [record for batch in batches for record in batch]

    def merged() -> int | None:
        text = server.log_path.read_text(errors="replace")
        return text.count("merged segments") or None
    eventually(merged, timeout=60, what="a merge of the sealed segments")
    client = server.client("us-east-1")
    events = lookup_all(client, LookupAttributes=by_attr("EventName", marker))
    assert sorted(e["EventId"] for e in events) == sorted(r["eventID"] for r in records)
    by_id = {r["eventID"]: r for r in records}
    for event in events[::97]:
        assert json.loads(event["CloudTrailEvent"]) == by_id[event["EventId"]]
    assert server.stop() == 0, server.log_tail()

    partition = (
        Path(server.data_dir) / "segments" / f"account={ACCOUNT_ID}" / "region=us-east-1" / f"date={noon:%Y-%m-%d}"
    )
    files = sorted(partition.glob("*.parquet"))
    assert 1 <= len(files) < len(batches), f"{len(files)} segments for {len(batches)} seals"
    rows = duckdb.connect().execute(
        "SELECT event_json, event_id, request_id FROM read_parquet(?, hive_partitioning = true, "
        "hive_types_autocast = false) WHERE event_name = ?",
        [f"{partition}/*.parquet", marker],
    ).fetchall()
    assert len(rows) == len(records), f"{len(rows)} rows for {len(records)} records"
    for event_json, event_id, request_id in rows:
        record = json.loads(event_json)
        record["eventID"], record["requestID"] = event_id, request_id
        assert record == by_id[event_id], f"{event_id}: the merged segment's record differs"

    verified = subprocess.run(
        [trailkeeper_bin(), "verify-store", "--data-dir", str(server.data_dir)],
        env=clean_env(), capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr


def merge_in_progress(partition: Path, batch: int) -> list[Path]:
    """The Parquet files being written under `partition` that span more than `batch` log
    positions: merges, where a seal of one batch spans at most `batch`. A name is
    `<first>-<last>`, with `-<n>` after it for a rewrite of a segment of that span."""
    spans = []
    for path in partition.rglob("*.parquet.tmp"):
        first, last = path.name.removesuffix(".parquet.tmp").split("-")[:2]
        if int(last) - int(first) >= batch:
            spans.append(path)
    return spans


def test_kill_9_while_segments_merge_keeps_every_record_once(server_factory):
    """Killed while the compactor merges (as soon as a merged file is being written, which
    a merge of a few thousand events takes about 0.1 s to do), the server comes back with
    every record exactly once and no segment file that the manifest does not list."""
    extra = "[storage]\nseal_after_megabytes = 1\ncompact_settle_seconds = 0\n"
    server = server_factory(config=config_toml(extra=extra))
    marker = f"E2eCompactKill{uuid.uuid4().hex[:8]}"
    noon = (utcnow() - dt.timedelta(days=3)).replace(hour=12, minute=0, second=0, microsecond=0)
    padding = "y" * 700
    records = []
    for cycle in range(3):
        for b in range(6):
            batch = [
                make_record(event_time=noon - dt.timedelta(seconds=(cycle * 6 + b) * 1_000 + i), event_name=marker,
                            username=f"kill-{i % 4}", requestParameters={"b": b, "i": i, "pad": padding})
                for i in range(800)
            ]
            assert server.ingest_ok(batch)["accepted"] == len(batch)
            records.extend(batch)
        # Merges start two seconds after the server opens its log: kill it while one writes,
        # which its file's name tells from a seal (it spans more than one batch).
        partition = Path(server.data_dir) / "segments" / f"account={ACCOUNT_ID}" / "region=us-east-1"
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and not any(merge_in_progress(partition, 800)):
            time.sleep(0.002)
        server.kill()
        server.start()

    client = server.client("us-east-1")
    events = lookup_all(client, LookupAttributes=by_attr("EventName", marker))
    got = Counter(e["EventId"] for e in events)
    assert all(n == 1 for n in got.values()), {k: n for k, n in got.items() if n > 1}
    assert set(got) == {r["eventID"] for r in records}
    assert server.stop() == 0, server.log_tail()

    segments = Path(server.data_dir) / "segments"
    listed = set(json.loads((Path(server.data_dir) / "manifest.json").read_text())["segments"])
    on_disk = {str(path.relative_to(segments)) for path in segments.rglob("*.parquet")}
    assert on_disk == listed, f"unlisted: {on_disk - listed}, missing: {listed - on_disk}"
    assert not [path for path in segments.rglob("*") if path.name.endswith(".tmp")]
    rows = duckdb.connect().execute(
        "SELECT event_id, count(*) FROM read_parquet(?, hive_partitioning = true, hive_types_autocast = false) "
        "WHERE event_name = ? GROUP BY 1",
        [f"{segments}/**/*.parquet", marker],
    ).fetchall()
    assert sorted(event_id for event_id, n in rows if n == 1) == sorted(r["eventID"] for r in records)
    assert server.log_path.read_text(errors="replace").count("merged segments") > 0, "no merge ran"


def test_reads_fail_while_the_journal_cannot_be_written_and_are_recorded_once_it_can(server_factory):
    """A journal that cannot grow (a file size limit here, as a full disk) refuses ingest;
    LookupEvents then fails too, rather than be answered with its audit record lost. Once
    the journal can grow again, both work, and the lookup is recorded. The server's log file
    is past the limit as well: a log line that cannot be written stops nothing."""
    server = server_factory(file_size_limit=1 << 30)
    client = server.client("us-east-1")
    marker = f"E2eJournalFull{uuid.uuid4().hex[:8]}"
    now = utcnow()
    assert server.ingest_ok([make_record(event_time=now, event_name=marker) for _ in range(10)])["accepted"] == 10
    journal = max((server.data_dir / "journal").glob("*.wal"))
    # Where its frames end: a direct write pads the file's last block with zeros, and a
    # disk that is full has no room after the last frame.
    server.limit_file_size(len(journal.read_bytes().rstrip(b"\0")))

    refused = server.ingest([make_record(event_time=now, event_name=marker)])
    assert refused.error_code() == "ServiceUnavailableException", refused.describe()
    with pytest.raises(botocore.exceptions.ClientError) as failed:
        client.lookup_events(MaxResults=1)
    assert failed.value.response["Error"]["Code"] == "ServiceUnavailableException"

    server.limit_file_size(None)
    client.lookup_events(LookupAttributes=by_attr("EventName", marker), MaxResults=1)
    assert server.ingest_ok([make_record(event_time=now, event_name=marker)])["accepted"] == 1
    assert len(lookup_all(client, LookupAttributes=by_attr("EventName", marker))) == 11

    def recorded() -> list[dict] | None:
        events = lookup_all(client, LookupAttributes=by_attr("EventName", "LookupEvents"))
        return [e for e in events if marker in e["CloudTrailEvent"]] or None
    eventually(recorded, what="the audit record of the lookup answered once the journal could grow")
