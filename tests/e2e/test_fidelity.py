"""Fidelity: real CloudTrail records go in, and LookupEvents gives back exactly what went in.

The Stratus Red Team detonations (309 real records) are imported with `trailkeeper ingest`
and every one is looked up by EventId in its own Region; the 917-record public corpus, with
all its odd shapes, is posted to /v1/records and every per-record result is checked.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest

from e2e_helpers import (
    CORPUS_FILE,
    IMPORTER,
    ROOT,
    STRATUS_FILE,
    assert_event_matches,
    by_attr,
    first_difference,
    lookup_all,
    make_record,
    parse_event_time,
    read_ndjson,
    utcnow,
)

SUMMARY = re.compile(r"accepted (\d+), duplicates (\d+), rejected (\d+)")
SIGNING_REGION = "us-east-1"


def history_span() -> dict:
    """All of the imported history: the public records go back to 2014."""
    return {
        "StartTime": dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc),
        "EndTime": utcnow() + dt.timedelta(days=1),
    }


class Clients:
    """One boto3 client per Region, as a user looking at each Region would have."""

    def __init__(self, server, creds=IMPORTER):
        self.server, self.creds, self.cache = server, creds, {}

    def __call__(self, region: str):
        if region not in self.cache:
            self.cache[region] = self.server.client(region, self.creds)
        return self.cache[region]


def summary_of(stdout: str) -> tuple[int, int, int]:
    match = SUMMARY.search(stdout)
    assert match, f"no 'accepted N, duplicates N, rejected N' line in: {stdout!r}"
    return tuple(int(g) for g in match.groups())  # type: ignore[return-value]


# --- Stratus Red Team: every record, field by field -------------------------------------------


@pytest.fixture(scope="module")
def stratus(module_server) -> list[dict]:
    records = read_ndjson(STRATUS_FILE)
    assert len(records) == 309
    proc = module_server.trailkeeper_ingest(str(STRATUS_FILE))
    assert proc.returncode == 0, f"rc={proc.returncode}\nstdout={proc.stdout}\nstderr={proc.stderr}"
    assert summary_of(proc.stdout) == (309, 0, 0), proc.stdout + proc.stderr
    return records


def test_every_stratus_record_comes_back_exactly_as_sent(module_server, stratus):
    clients = Clients(module_server)
    problems: list[str] = []
    for index, rec in enumerate(stratus):
        events = lookup_all(
            clients(rec["awsRegion"]), LookupAttributes=by_attr("EventId", rec["eventID"]), **history_span()
        )
        where = f"line {index + 1} ({rec['eventName']}, {rec['awsRegion']}, {rec['eventID']})"
        if len(events) != 1:
            problems.append(f"{where}: LookupEvents returned {len(events)} events")
            continue
        diff = first_difference(rec, json.loads(events[0]["CloudTrailEvent"]))
        if diff:
            problems.append(f"{where}: {diff}")
    assert not problems, f"{len(problems)} of {len(stratus)} records differ; first ones:\n" + "\n".join(problems[:15])


def test_every_stratus_event_has_the_lookup_fields_of_its_record(module_server, stratus):
    clients = Clients(module_server)
    problems: list[str] = []
    for index, rec in enumerate(stratus):
        events = lookup_all(
            clients(rec["awsRegion"]), LookupAttributes=by_attr("EventId", rec["eventID"]), **history_span()
        )
        try:
            assert len(events) == 1, f"{len(events)} events"
            assert_event_matches(events[0], rec, where=f"line {index + 1}")
        except AssertionError as err:
            problems.append(str(err).splitlines()[0])
    assert not problems, f"{len(problems)} events differ; first ones:\n" + "\n".join(problems[:15])


def test_stratus_history_is_visible_without_time_bounds(module_server, stratus):
    # Retention is configured to 36500 days, so the whole import is in Event History.
    clients = Clients(module_server)
    for rec in stratus[:: len(stratus) // 10]:
        events = lookup_all(clients(rec["awsRegion"]), LookupAttributes=by_attr("EventId", rec["eventID"]))
        assert [e["EventId"] for e in events] == [rec["eventID"]], rec["eventTime"]


def test_stratus_lookups_by_other_attributes(module_server, stratus):
    clients = Clients(module_server)
    rec = next(r for r in stratus if r.get("resources") and r["userIdentity"].get("accessKeyId"))
    region_records = [r for r in stratus if r["awsRegion"] == rec["awsRegion"]]
    for key, value, match in [
        ("EventName", rec["eventName"], lambda r: r["eventName"] == rec["eventName"]),
        ("EventSource", rec["eventSource"], lambda r: r["eventSource"] == rec["eventSource"]),
        ("AccessKeyId", rec["userIdentity"]["accessKeyId"],
         lambda r: r["userIdentity"].get("accessKeyId") == rec["userIdentity"]["accessKeyId"]),
        ("ResourceName", rec["resources"][0]["ARN"],
         lambda r: any(x.get("ARN") == rec["resources"][0]["ARN"] for x in r.get("resources", []))),
    ]:
        events = lookup_all(clients(rec["awsRegion"]), LookupAttributes=by_attr(key, value), **history_span())
        expected = {r["eventID"] for r in region_records if match(r)}
        assert {e["EventId"] for e in events} == expected, f"{key}={value}"


def test_reimporting_the_same_file_stores_nothing_twice(module_server, stratus):
    proc = module_server.trailkeeper_ingest(str(STRATUS_FILE))
    assert proc.returncode == 0, proc.stderr
    assert summary_of(proc.stdout) == (0, 309, 0)
    rec = stratus[0]
    events = lookup_all(Clients(module_server)(rec["awsRegion"]),
                        LookupAttributes=by_attr("EventId", rec["eventID"]), **history_span())
    assert len(events) == 1


# --- the corpus: odd shapes, duplicates, rejections --------------------------------------------


def insight_api(rec: dict) -> tuple[str | None, str | None]:
    details = rec.get("insightDetails") or {}
    return details.get("eventSource"), details.get("eventName")


def is_insight(rec: dict) -> bool:
    return rec.get("eventCategory") == "Insight" or rec.get("eventType") == "AwsCloudTrailInsight"


def in_management_history(rec: dict) -> bool:
    if is_insight(rec):
        return False
    if rec.get("eventCategory") in ("Data", "NetworkActivity") or rec.get("eventType") == "AwsVpceEvent":
        return False
    if rec.get("eventCategory") is None and rec.get("managementEvent") is False:
        return False
    return True


def expected_rejection(rec: dict) -> str | None:
    """Why Trailkeeper must refuse a record, or None. The required fields are CloudTrail's:
    eventTime (a time), eventSource, eventName. An Insights record names its API in
    insightDetails, as CloudTrail writes it."""
    if "eventTime" not in rec:
        return "eventTime"
    if parse_event_time(rec["eventTime"]) is None:
        return "eventTime"
    source, name = rec.get("eventSource"), rec.get("eventName")
    if is_insight(rec):
        source, name = source or insight_api(rec)[0], name or insight_api(rec)[1]
    if not source:
        return "eventSource"
    if not name:
        return "eventName"
    return None


def expected_results(records: list[dict], account: str) -> list[tuple[str, str | None]]:
    """(status, reason-field) per record, in order; duplicates by (account, eventID)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for rec in records:
        missing = expected_rejection(rec)
        if missing:
            out.append(("rejected", missing))
            continue
        if "eventID" not in rec:
            out.append(("accepted", None))
            continue
        key = (rec.get("recipientAccountId", account), rec["eventID"])
        out.append(("duplicate", None) if key in seen else ("accepted", None))
        seen.add(key)
    return out


def stored_form(rec: dict, event_id: str, account: str) -> dict:
    stored = dict(rec)
    stored.setdefault("eventID", event_id)
    stored.setdefault("recipientAccountId", account)
    return stored


def post_corpus(server, records: list[dict], *, batch: int = 100) -> list[dict]:
    results = []
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        summary = server.ingest_ok(chunk, ndjson=True, gzip_body=True, region=SIGNING_REGION)
        for result in summary["results"]:
            assert result["index"] in range(len(chunk)), result
        counts = Counter(r["status"] for r in summary["results"])
        assert (summary["accepted"], summary["duplicates"], summary["rejected"]) == (
            counts["accepted"], counts["duplicate"], counts["rejected"]
        ), summary
        results += sorted(summary["results"], key=lambda r: r["index"])
    return results


@pytest.fixture(scope="module")
def corpus_server(module_server_factory):
    # Its own server: the corpus holds the Stratus records too, which would be duplicates
    # of the import above.
    return module_server_factory(name="corpus")


@pytest.fixture(scope="module")
def corpus(corpus_server):
    records = read_ndjson(CORPUS_FILE)
    assert len(records) == 917
    results = post_corpus(corpus_server, records)
    return records, results


def test_corpus_per_record_results(corpus):
    records, results = corpus
    expected = expected_results(records, IMPORTER.account_id)
    problems = []
    for index, (rec, result, (status, missing)) in enumerate(zip(records, results, expected)):
        where = f"corpus line {index + 1} ({rec.get('eventName')!r}, eventTime={rec.get('eventTime')!r})"
        if result["status"] != status:
            problems.append(f"{where}: expected {status}, got {result}")
        elif status == "rejected":
            if not result.get("reason") or "eventId" in result:
                problems.append(f"{where}: a rejection needs a reason and no eventId: {result}")
            elif missing not in result["reason"]:
                problems.append(f"{where}: reason should name {missing}: {result['reason']!r}")
        else:
            if not result.get("eventId"):
                problems.append(f"{where}: no eventId in {result}")
            elif "eventID" in rec and result["eventId"] != rec["eventID"]:
                problems.append(f"{where}: eventId {result['eventId']!r}, record says {rec['eventID']!r}")
    got = Counter(r["status"] for r in results)
    want = Counter(s for s, _ in expected)
    assert not problems, (
        f"{len(problems)} of {len(records)} results differ (expected {dict(want)}, got {dict(got)}):\n"
        + "\n".join(problems[:20])
    )


def test_corpus_accepted_records_are_found_and_stored_once(corpus_server, corpus):
    records, results = corpus
    clients = Clients(corpus_server)
    stored: dict[tuple[str, str], dict] = {}
    problems = []
    for index, (rec, result) in enumerate(zip(records, results)):
        if result["status"] != "accepted":
            continue
        account = rec.get("recipientAccountId", IMPORTER.account_id)
        stored[(account, result["eventId"])] = stored_form(rec, result["eventId"], account)
    for (account, event_id), want in stored.items():
        region = want.get("awsRegion", SIGNING_REGION)
        extra = {"EventCategory": "insight"} if is_insight(want) else {}
        events = lookup_all(clients(region), LookupAttributes=by_attr("EventId", event_id), **history_span(), **extra)
        bodies = [json.loads(e["CloudTrailEvent"]) for e in events]
        copies = sum(1 for body in bodies if body == want)
        where = f"{want.get('eventName') or insight_api(want)[1]!r} {event_id!r} acct {account} in {region}"
        if in_management_history(want) or is_insight(want):
            if copies != 1:
                near = [first_difference(want, b) for b in bodies]
                problems.append(f"{where}: {copies} copies among {len(events)} events; differences: {near[:3]}")
        elif copies:
            problems.append(f"{where}: a {want.get('eventCategory') or 'data'} event is in Event History")
    assert not problems, f"{len(problems)} of {len(stored)} stored records:\n" + "\n".join(problems[:20])


def test_corpus_duplicates_point_at_the_stored_event(corpus):
    records, results = corpus
    first_id: dict[tuple[str, str], str] = {}
    for rec, result in zip(records, results):
        if "eventID" not in rec or result["status"] == "rejected":
            continue
        key = (rec.get("recipientAccountId", IMPORTER.account_id), rec["eventID"])
        if result["status"] == "accepted":
            first_id.setdefault(key, result["eventId"])
        elif result["status"] == "duplicate":
            assert result.get("eventId") == first_id.get(key), result


# --- the importer command: files, trees, stdin -----------------------------------------------


def test_ingest_command_reports_the_corpus(server):
    proc = server.trailkeeper_ingest(str(CORPUS_FILE))
    assert proc.returncode == 0, proc.stderr
    records = read_ndjson(CORPUS_FILE)
    want = Counter(s for s, _ in expected_results(records, IMPORTER.account_id))
    assert summary_of(proc.stdout) == (want["accepted"], want["duplicate"], want["rejected"]), (
        proc.stdout + proc.stderr[-3000:]
    )
    # Each rejected record's reason is printed on stderr.
    assert proc.stderr.count("eventTime") >= sum(
        1 for r in records if expected_rejection(r) == "eventTime"
    ), proc.stderr[-3000:]


def write_log_tree(root: Path, records: list[dict]) -> int:
    """Lays records out as CloudTrail delivers them: gzip JSON log files under AWSLogs/."""
    files = 0
    by_key: dict[tuple[str, str, str], list[dict]] = {}
    for rec in records:
        day = rec["eventTime"][:10].replace("-", "/")
        by_key.setdefault((rec["recipientAccountId"], rec["awsRegion"], day), []).append(rec)
    for (account, region, day), recs in by_key.items():
        folder = root / "AWSLogs" / account / "CloudTrail" / region / day
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(0, len(recs), 20):
            stamp = day.replace("/", "") + f"T{n // 20:04d}Z"
            name = f"{account}_CloudTrail_{region}_{stamp}_E2E{n:013d}.json.gz"
            (folder / name).write_bytes(gzip.compress(json.dumps({"Records": recs[n : n + 20]}).encode()))
            files += 1
    return files


def test_ingest_command_reads_a_cloudtrail_log_tree(server, tmp_path):
    records = read_ndjson(STRATUS_FILE)
    files = write_log_tree(tmp_path / "bucket", records)
    assert files > 30
    proc = server.trailkeeper_ingest(str(tmp_path / "bucket"))
    assert proc.returncode == 0, proc.stderr
    assert summary_of(proc.stdout) == (309, 0, 0)
    rec = records[-1]
    (event,) = lookup_all(server.client(rec["awsRegion"]), LookupAttributes=by_attr("EventId", rec["eventID"]),
                          **history_span())
    assert json.loads(event["CloudTrailEvent"]) == rec


def test_ingest_command_reads_plain_json_and_stdin(server, tmp_path):
    records = read_ndjson(STRATUS_FILE)
    log_file = tmp_path / "log.json"
    log_file.write_text(json.dumps({"Records": records[:100]}))
    proc = server.trailkeeper_ingest(str(log_file), "--batch-size", "7")
    assert proc.returncode == 0, proc.stderr
    assert summary_of(proc.stdout) == (100, 0, 0)
    stdin = "".join(json.dumps(r) + "\n" for r in records[90:150]).encode()
    proc = server.trailkeeper_ingest("-", stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    assert summary_of(proc.stdout) == (50, 10, 0)


def padded_log_file(path: Path, records: list[dict]) -> Path:
    """A gzip CloudTrail log file whose records carry random padding, so that it stays
    large once compressed."""
    for rec in records:
        rec["requestParameters"] = {"padding": os.urandom(3000).hex()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(json.dumps({"Records": records}).encode()))
    return path


def test_ingest_command_sends_log_files_as_they_are_splits_refused_ones_and_reports_bad_files(
    server_factory, tmp_path
):
    # Requests over 1 MB are refused, so a body holding the larger file has to be split here.
    server = server_factory(extra_env={"TRAILKEEPER_LIMITS_MAX_REQUEST_MEGABYTES": "1"})
    now = utcnow()
    tree = tmp_path / "bucket" / "AWSLogs" / IMPORTER.account_id / "CloudTrail" / "us-east-1"
    whole = [make_record(event_time=now, event_name="E2eWhole", account=IMPORTER.account_id) for _ in range(120)]
    # A record without eventTime, 50th in its file: its rejection names the file and number.
    del whole[49]["eventTime"]
    refused = [make_record(event_time=now, event_name="E2eRefused", account=IMPORTER.account_id) for _ in range(400)]
    small = [make_record(event_time=now, event_name="E2eSmall", account=IMPORTER.account_id) for _ in range(30)]
    whole_file = padded_log_file(tree / "2026/12/01/whole.json.gz", whole)
    refused_file = padded_log_file(tree / "2026/12/02/refused.json.gz", refused)
    assert len(whole_file.read_bytes()) < 1 << 20 < len(refused_file.read_bytes()) < 4 << 20
    for n in range(3):
        (tree / "2026/12/03").mkdir(parents=True, exist_ok=True)
        (tree / f"2026/12/03/small-{n}.json.gz").write_bytes(
            gzip.compress(json.dumps({"Records": small[n * 10 : n * 10 + 10]}).encode())
        )
    (tree / "2026/12/04").mkdir(parents=True)
    (tree / "2026/12/04/broken.json.gz").write_bytes(gzip.compress(b'{"Records": [')[:-9])

    proc = server.trailkeeper_ingest(str(tmp_path / "bucket"), "--batch-size", "100")
    assert summary_of(proc.stdout) == (549, 0, 1), proc.stdout + proc.stderr[-3000:]
    assert f"{whole_file} record 50: rejected:" in proc.stderr, proc.stderr[-3000:]
    assert "broken.json.gz" in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode != 0, "a file that could not be read fails the command"
    client = server.client()
    for rec in (whole[0], whole[-1], refused[0], refused[-1], small[0], small[-1]):
        (event,) = lookup_all(client, LookupAttributes=by_attr("EventId", rec["eventID"]), **history_span())
        assert json.loads(event["CloudTrailEvent"]) == rec


def test_a_request_carries_at_most_100000_records_but_a_file_may_hold_more(server, tmp_path):
    # Records without eventTime are refused one by one; the request as a whole is refused
    # before any of them is judged.
    body = b'{"eventName":"E2eMissingTime"}\n' * 100_001
    result = server.ingest(body=body, ndjson=True)
    assert result.status == 400, result.text
    assert result.json()["__type"] == "ValidationException", result.text
    assert "at most 100000 records" in result.json()["message"], result.text
    # The command splits the same file into requests of --batch-size records.
    big = tmp_path / "big.ndjson"
    big.write_bytes(body)
    proc = server.trailkeeper_ingest(str(big), "--batch-size", "20000", "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert summary_of(proc.stdout) == (0, 0, 100_001), proc.stdout
    assert f"{big} record 100001: rejected:" in proc.stderr, proc.stderr[-500:]


def test_ingest_command_fails_when_the_server_is_unreachable(tmp_path, server):
    server.stop()
    proc = server.trailkeeper_ingest(str(STRATUS_FILE), timeout=120)
    assert proc.returncode != 0, proc.stdout


def test_ingest_command_prints_reasons_for_records_of_other_accounts(server):
    proc = server.trailkeeper_ingest(str(STRATUS_FILE), creds=ROOT)
    # Root of 123456789012 may not write the Stratus accounts: every record is refused
    # with a reason, and the command still exits 0 because the transport worked.
    assert proc.returncode == 0, proc.stderr
    assert summary_of(proc.stdout) == (0, 0, 309)
    assert proc.stderr.strip(), "the reasons of rejected records go to stderr"


# --- per-record rules ----------------------------------------------------------------------


def test_an_oversized_record_is_rejected_without_failing_its_neighbours(server):
    small = make_record(event_time=utcnow(), event_name="E2eSmall")
    huge = make_record(event_time=utcnow(), event_name="E2eHuge", requestParameters={"blob": "x" * 300_000})
    also_small = make_record(event_time=utcnow(), event_name="E2eAlsoSmall")
    summary = server.ingest_ok([small, huge, also_small])
    assert [r["status"] for r in summary["results"]] == ["accepted", "rejected", "accepted"], summary
    assert summary["results"][1].get("reason"), summary
    client = server.client()
    assert lookup_all(client, LookupAttributes=by_attr("EventId", huge["eventID"])) == []
    assert len(lookup_all(client, LookupAttributes=by_attr("EventId", also_small["eventID"]))) == 1


def test_a_record_without_a_region_lands_in_the_signing_region(server):
    rec = make_record(event_time=utcnow(), event_name="E2eNoRegion")
    del rec["awsRegion"]
    summary = server.ingest_ok([rec], region="ap-southeast-2")
    assert summary["accepted"] == 1
    events = lookup_all(server.client("ap-southeast-2"), LookupAttributes=by_attr("EventId", rec["eventID"]))
    assert len(events) == 1
    assert json.loads(events[0]["CloudTrailEvent"]) == rec, "the record is kept as sent (no awsRegion added)"
    assert lookup_all(server.client("us-east-1"), LookupAttributes=by_attr("EventId", rec["eventID"])) == []
