"""Trails end to end: the trail API with the real AWS CLI and boto3, and the log files a
trail delivers to a bucket, read back with S3 clients, Python's gzip and DuckDB.

The servers here deliver every second (TRAILKEEPER_DELIVERY_INTERVAL_SECONDS=1).
"""

from __future__ import annotations

import gzip
import json
import re
import threading
from pathlib import Path

import botocore.exceptions
import duckdb
import pytest

from e2e_helpers import (
    ACCOUNT_ID,
    BOB,
    IMPORTER,
    READER,
    Creds,
    by_attr,
    eventually,
    make_record,
    run_id,
    utcnow,
)

FAST = {"TRAILKEEPER_DELIVERY_INTERVAL_SECONDS": "1"}
KEY_PATTERN = re.compile(
    r"^(?:(?P<prefix>.+)/)?AWSLogs/(?P<account>\d{12})/CloudTrail/(?P<region>[a-z0-9-]+)/"
    r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P=account)_CloudTrail_(?P=region)_"
    r"(?P=y)(?P=m)(?P=d)T\d{4}Z_[A-Za-z0-9]{16}\.json\.gz$"
)


@pytest.fixture
def server(server_factory):
    return server_factory(extra_env=FAST)


def s3_client(server, creds: Creds = IMPORTER, region: str = "us-east-1"):
    return server.client(region=region, creds=creds, service="s3", s3={"addressing_style": "path"})


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def error_message(excinfo) -> str:
    return excinfo.value.response["Error"]["Message"]


def log_files(s3, bucket: str, prefix: str = "") -> dict[str, bytes]:
    """Every log file in the bucket under `prefix`, decompressed."""
    files: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            files[item["Key"]] = gzip.decompress(body)
    return files


def delivered(s3, bucket: str, prefix: str = "") -> list[dict]:
    """Every record in the bucket's log files, each file checked for CloudTrail's layout."""
    records: list[dict] = []
    for key, body in log_files(s3, bucket, prefix).items():
        assert KEY_PATTERN.match(key), f"{key} is not laid out as CloudTrail lays out log files"
        document = json.loads(body)
        assert list(document) == ["Records"], key
        records.extend(document["Records"])
    return records


def delivered_ids(s3, bucket: str) -> list[str]:
    return [record["eventID"] for record in delivered(s3, bucket)]


def start_trail(server, name: str, bucket: str, *, region: str = "us-east-1", **settings) -> dict:
    s3_client(server, region=region).create_bucket(Bucket=bucket)
    client = server.client(region=region)
    trail = client.create_trail(Name=name, S3BucketName=bucket, **settings)
    client.start_logging(Name=name)
    return trail


def records(count: int, **kwargs) -> list[dict]:
    now = utcnow()
    return [make_record(event_time=now, **kwargs) for _ in range(count)]


# --- the scenario of the issue, with the AWS CLI ------------------------------------------


def test_the_aws_cli_scenario_delivers_cloudtrail_log_files(server, tmp_path: Path):
    assert server.aws("s3api", "create-bucket", "--bucket", "audit-logs").returncode == 0
    created = server.aws(
        "cloudtrail", "create-trail", "--name", "org-trail", "--s3-bucket-name", "audit-logs",
        "--is-multi-region-trail", "--include-global-service-events",
    ).json()
    assert created["TrailARN"] == f"arn:aws:cloudtrail:us-east-1:{ACCOUNT_ID}:trail/org-trail"
    assert created["IsMultiRegionTrail"] is True
    assert server.aws("cloudtrail", "start-logging", "--name", "org-trail").returncode == 0
    selectors = server.aws(
        "cloudtrail", "put-event-selectors", "--trail-name", "org-trail", "--advanced-event-selectors",
        '[{"Name":"writes","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},'
        '{"Field":"readOnly","Equals":["false"]}]}]',
    ).json()
    assert selectors["AdvancedEventSelectors"][0]["Name"] == "writes"

    writes = records(5, read_only=False, event_name="RunInstances") + records(
        3, read_only=False, event_name="CreateUser", event_source="iam.amazonaws.com", region="eu-west-1"
    )
    reads = records(5, read_only=True)
    server.ingest_ok(writes + reads)

    def listed() -> list[str]:
        out = server.aws("s3", "ls", "--recursive", "s3://audit-logs/AWSLogs/")
        assert out.returncode == 0, out.stderr
        return [line.split()[-1] for line in out.stdout.splitlines() if line.strip()]

    def all_writes_listed():
        keys = listed()
        ids = {r["eventID"] for r in delivered(s3_client(server), "audit-logs")}
        return keys if {w["eventID"] for w in writes} <= ids else None

    keys = eventually(all_writes_listed, timeout=20, interval=0.5, what="the writes in delivered log files")
    assert {KEY_PATTERN.match(key).group("region") for key in keys} >= {"us-east-1", "eu-west-1"}

    key = next(k for k in keys if "/eu-west-1/" in k)
    local = tmp_path / "x.json.gz"
    assert server.aws("s3", "cp", f"s3://audit-logs/{key}", str(local)).returncode == 0
    with gzip.open(local, "rb") as fh:
        body = fh.read()
    document = json.loads(body)
    # Records are delivered byte for byte as stored (the ingested JSON, minified).
    for record in writes[5:]:
        assert json.dumps(record, separators=(",", ":")).encode() in body
    assert {r["eventID"] for r in document["Records"]} == {w["eventID"] for w in writes[5:]}

    everything = delivered(s3_client(server), "audit-logs")
    assert not {r["eventID"] for r in reads} & {r["eventID"] for r in everything}, "read-only events are not selected"
    assert all(r.get("readOnly") is False for r in everything)
    # The trail's own calls after StartLogging are write events too: PutEventSelectors is there.
    assert any(r["eventName"] == "PutEventSelectors" for r in everything)
    ids = [r["eventID"] for r in everything]
    assert len(ids) == len(set(ids)), "no event is delivered twice"

    # An independent reader: DuckDB reads the delivered files as they are.
    count = duckdb.sql(
        f"SELECT count(*) FROM (SELECT unnest(Records) FROM read_json('{local}', format='auto'))"
    ).fetchall()[0][0]
    assert count == 3

    status = server.aws("cloudtrail", "get-trail-status", "--name", "org-trail").json()
    assert status["IsLogging"] is True
    assert "LatestDeliveryTime" in status and "LatestDeliveryError" not in status


# --- the trail API with boto3 --------------------------------------------------------------


def test_trail_lifecycle(server):
    s3_client(server).create_bucket(Bucket="lifecycle-logs")
    client = server.client()
    name = f"trail-{run_id()}"
    created = client.create_trail(Name=name, S3BucketName="lifecycle-logs", S3KeyPrefix="team/a")
    arn = created["TrailARN"]
    assert created["S3KeyPrefix"] == "team/a"
    assert created["IncludeGlobalServiceEvents"] is True and created["IsMultiRegionTrail"] is False

    trail = client.get_trail(Name=name)["Trail"]
    assert trail["HomeRegion"] == "us-east-1" and trail["HasCustomEventSelectors"] is False
    assert client.get_trail(Name=arn)["Trail"]["Name"] == name
    assert [t["TrailARN"] for t in client.describe_trails()["trailList"]] == [arn]
    assert client.list_trails()["Trails"] == [{"TrailARN": arn, "Name": name, "HomeRegion": "us-east-1"}]

    status = client.get_trail_status(Name=name)
    assert status["IsLogging"] is False, "CreateTrail does not start logging"
    client.start_logging(Name=name)
    status = client.get_trail_status(Name=name)
    assert status["IsLogging"] is True and "StartLoggingTime" in status
    client.stop_logging(Name=arn)
    status = client.get_trail_status(Name=name)
    assert status["IsLogging"] is False and status["StopLoggingTime"] >= status["StartLoggingTime"]

    updated = client.update_trail(Name=name, IsMultiRegionTrail=True, EnableLogFileValidation=True)
    assert updated["IsMultiRegionTrail"] is True and updated["LogFileValidationEnabled"] is True

    # A multi-Region trail shows in other Regions as a shadow trail, changeable only at home.
    west = server.client(region="eu-west-1")
    assert [t["HomeRegion"] for t in west.describe_trails()["trailList"]] == ["us-east-1"]
    assert west.describe_trails(includeShadowTrails=False)["trailList"] == []
    assert west.get_trail(Name=arn)["Trail"]["TrailARN"] == arn
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        west.stop_logging(Name=arn)
    assert error_code(excinfo) == "InvalidHomeRegionException"
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        west.get_trail_status(Name=name)
    assert error_code(excinfo) == "TrailNotFoundException"

    client.delete_trail(Name=name)
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.get_trail_status(Name=name)
    assert error_code(excinfo) == "TrailNotFoundException"
    assert error_message(excinfo) == f"Unknown trail: {arn} for the user: {ACCOUNT_ID}"
    assert client.describe_trails()["trailList"] == []


@pytest.mark.parametrize(
    "name, words",
    [
        ("ab", "too short"),
        ("a" * 129, "too long"),
        ("-trail", "starts with"),
        ("trail-", "ends with"),
        ("my trail", "can only contain"),
        ("my--trail", "adjacent"),
        ("192.168.5.4", "IP address"),
    ],
)
def test_trail_names_follow_cloudtrails_rules(server, name, words):
    s3_client(server).create_bucket(Bucket="names-logs")
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        server.client().create_trail(Name=name, S3BucketName="names-logs")
    assert error_code(excinfo) == "InvalidTrailNameException"
    assert words in error_message(excinfo)


def test_create_trail_errors(server):
    s3 = s3_client(server)
    s3.create_bucket(Bucket="errors-logs")
    s3_client(server, creds=BOB).create_bucket(Bucket="bobs-logs")
    client = server.client()

    def refused(**params) -> tuple[str, str]:
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            client.create_trail(**params)
        return error_code(excinfo), error_message(excinfo)

    assert refused(Name="tr1", S3BucketName="no-such-bucket") == (
        "S3BucketDoesNotExistException", "S3 bucket no-such-bucket does not exist!"
    )
    assert refused(Name="tr1", S3BucketName="bobs-logs") == (
        "InsufficientS3BucketPolicyException", "Incorrect S3 bucket policy is detected for bucket: bobs-logs"
    )
    assert refused(Name="tr1", S3BucketName="errors-logs", IsMultiRegionTrail=True, IncludeGlobalServiceEvents=False) == (
        "InvalidParameterCombinationException", "Multi-Region trail must include global service events."
    )
    assert refused(Name="tr1", S3BucketName="errors-logs", SnsTopicName="missing")[0] == (
        "InsufficientSnsTopicPolicyException"
    )
    assert refused(Name="tr1", S3BucketName="errors-logs", TagsList=[{"Key": "aws:x", "Value": "y"}])[0] == (
        "InvalidTagParameterException"
    )
    assert refused(Name="tr1", S3BucketName="errors-logs", KmsKeyId="alias/none")[0] == "KmsKeyNotFoundException"

    for i in range(5):
        client.create_trail(Name=f"tr{i}", S3BucketName="errors-logs")
    assert refused(Name="tr0", S3BucketName="errors-logs") == (
        "TrailAlreadyExistsException", f"Trail tr0 already exists for customer: {ACCOUNT_ID}"
    )
    assert refused(Name="tr5", S3BucketName="errors-logs") == (
        "MaximumNumberOfTrailsExceededException", f"User: {ACCOUNT_ID} already has 5 trails in us-east-1."
    )
    # The quota is per Region.
    s3.create_bucket(Bucket="west-logs")
    server.client(region="eu-west-1").create_trail(Name="tr5", S3BucketName="west-logs")

    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.get_trail(Name="arn:aws:cloudtrail:us-east-1:123:trail/x")
    assert error_code(excinfo) == "CloudTrailARNInvalidException"
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        server.client(creds=READER).create_trail(Name="tr9", S3BucketName="errors-logs")
    assert error_code(excinfo) == "AccessDeniedException"


def test_event_and_insight_selectors(server):
    start_trail(server, "sel-trail", "sel-logs")
    client = server.client()
    default = client.get_event_selectors(TrailName="sel-trail")
    assert default["EventSelectors"] == [
        {"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": [], "ExcludeManagementEventSources": []}
    ]
    basic = [{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True,
              "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::data-bucket/"]}]}]
    put = client.put_event_selectors(TrailName="sel-trail", EventSelectors=basic)
    assert put["EventSelectors"][0]["DataResources"] == basic[0]["DataResources"]
    assert client.get_trail(Name="sel-trail")["Trail"]["HasCustomEventSelectors"] is True

    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.put_event_selectors(
            TrailName="sel-trail",
            EventSelectors=[{"DataResources": [{"Type": "AWS::S3::Bucket", "Values": ["arn:aws:s3"]}]}],
        )
    assert error_code(excinfo) == "InvalidEventSelectorsException"
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.put_event_selectors(
            TrailName="sel-trail",
            EventSelectors=basic,
            AdvancedEventSelectors=[{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}],
        )
    assert error_code(excinfo) in ("InvalidParameterCombinationException", "InvalidEventSelectorsException")

    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.get_insight_selectors(TrailName="sel-trail")
    assert error_code(excinfo) == "InsightNotEnabledException"
    insights = client.put_insight_selectors(
        TrailName="sel-trail", InsightSelectors=[{"InsightType": "ApiCallRateInsight"}]
    )
    assert insights["InsightSelectors"] == [{"InsightType": "ApiCallRateInsight"}]
    assert client.get_insight_selectors(TrailName="sel-trail")["InsightSelectors"][0]["InsightType"] == (
        "ApiCallRateInsight"
    )
    assert client.get_trail(Name="sel-trail")["Trail"]["HasInsightSelectors"] is True
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.put_insight_selectors(TrailName="sel-trail", InsightSelectors=[{"InsightType": "Nope"}])
    assert error_code(excinfo) == "InvalidInsightSelectorsException"
    client.put_insight_selectors(TrailName="sel-trail", InsightSelectors=[])
    assert client.get_trail(Name="sel-trail")["Trail"]["HasInsightSelectors"] is False


def test_tags(server):
    arn = start_trail(server, "tag-trail", "tag-logs")["TrailARN"]
    client = server.client()
    assert client.list_tags(ResourceIdList=[arn])["ResourceTagList"] == [{"ResourceId": arn, "TagsList": []}]
    client.add_tags(ResourceId=arn, TagsList=[{"Key": "team", "Value": "sec"}, {"Key": "env", "Value": "prod"}])
    client.add_tags(ResourceId=arn, TagsList=[{"Key": "env", "Value": "dev"}])
    tags = client.list_tags(ResourceIdList=[arn])["ResourceTagList"][0]["TagsList"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("env", "dev"), ("team", "sec")]
    client.remove_tags(ResourceId=arn, TagsList=[{"Key": "team"}])
    assert [t["Key"] for t in client.list_tags(ResourceIdList=[arn])["ResourceTagList"][0]["TagsList"]] == ["env"]
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.add_tags(ResourceId=arn, TagsList=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    assert error_code(excinfo) == "TagsLimitExceededException"
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        server.client(region="eu-west-1").list_tags(ResourceIdList=[arn])
    assert error_code(excinfo) == "CloudTrailARNInvalidException"
    assert "Region in ARN is wrong" in error_message(excinfo)


# --- what a trail delivers -------------------------------------------------------------------


def test_events_recorded_while_stopped_are_not_delivered(server):
    start_trail(server, "stop-trail", "stop-logs")
    client = server.client()
    before = records(4, read_only=False)
    server.ingest_ok(before)
    client.stop_logging(Name="stop-trail")
    during = records(4, read_only=False)
    server.ingest_ok(during)
    client.start_logging(Name="stop-trail")
    after = records(4, read_only=False)
    server.ingest_ok(after)

    # Who stopped the trail is answerable from Event History, and from the trail itself:
    # the stop's own record is the last one it delivers before the gap, as in CloudTrail.
    stops = client.lookup_events(LookupAttributes=by_attr("EventName", "StopLogging"))["Events"]
    assert stops and stops[0]["Username"] == IMPORTER.name
    s3 = s3_client(server)
    wanted = {r["eventID"] for r in before + after} | {stops[0]["EventId"]}
    eventually(
        lambda: set(delivered_ids(s3, "stop-logs")) >= wanted,
        timeout=20, interval=0.5, what="events before and after the stop, and the stop itself",
    )
    ids = delivered_ids(s3, "stop-logs")
    assert not set(ids) & {r["eventID"] for r in during}
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    names = [r["eventName"] for r in delivered(s3, "stop-logs")]
    assert names.count("StopLogging") == 1 and names.count("StartLogging") == 2


def test_single_region_trails_and_global_service_events(server):
    start_trail(server, "home-only", "home-logs", IncludeGlobalServiceEvents=False)
    east = records(3, read_only=False)
    west = records(3, read_only=False, region="eu-west-1")
    iam = records(3, read_only=False, event_source="iam.amazonaws.com", event_name="CreateUser")
    other_account = records(3, read_only=False, account=BOB.account_id)
    server.ingest_ok(east + west + iam + other_account)
    s3 = s3_client(server)
    ids = eventually(
        lambda: (ids := set(delivered_ids(s3, "home-logs"))) >= {r["eventID"] for r in east} and ids,
        timeout=20, interval=0.5, what="home Region events",
    )
    for excluded in (west, iam, other_account):
        assert not ids & {r["eventID"] for r in excluded}


def test_basic_selectors_pick_s3_data_events_by_arn_prefix(server):
    start_trail(server, "data-trail", "data-logs")
    server.client().put_event_selectors(
        TrailName="data-trail",
        EventSelectors=[{
            "ReadWriteType": "All",
            "IncludeManagementEvents": False,
            "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::reports/2026/"]}],
        }],
    )

    def data_event(key: str) -> dict:
        return make_record(
            event_time=utcnow(), event_source="s3.amazonaws.com", event_name="GetObject", category="Data",
            read_only=True, resources=[
                {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{key}"},
                {"type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{key.split('/')[0]}"},
            ],
        )

    wanted = [data_event("reports/2026/q1.csv"), data_event("reports/2026/q2.csv")]
    unwanted = [data_event("reports/2025/q4.csv"), data_event("other/2026/x"), *records(2, read_only=False)]
    server.ingest_ok(wanted + unwanted)
    s3 = s3_client(server)
    ids = eventually(
        lambda: (ids := set(delivered_ids(s3, "data-logs"))) >= {r["eventID"] for r in wanted} and ids,
        timeout=20, interval=0.5, what="selected data events",
    )
    assert not ids & {r["eventID"] for r in unwanted}


def test_a_missing_bucket_is_retried_and_reported(server):
    start_trail(server, "retry-trail", "retry-logs")
    s3 = s3_client(server)
    s3.delete_bucket(Bucket="retry-logs")
    batch = records(5, read_only=False)
    server.ingest_ok(batch)
    client = server.client()
    status = eventually(
        lambda: (s := client.get_trail_status(Name="retry-trail")).get("LatestDeliveryError") and s,
        timeout=20, interval=0.5, what="LatestDeliveryError",
    )
    assert status["LatestDeliveryError"] == "NoSuchBucket"
    s3.create_bucket(Bucket="retry-logs")
    ids = eventually(
        lambda: (ids := delivered_ids(s3, "retry-logs")) and {r["eventID"] for r in batch} <= set(ids) and ids,
        timeout=90, interval=1, what="delivery after the bucket came back",
    )
    assert len(ids) == len(set(ids))
    assert "LatestDeliveryError" not in client.get_trail_status(Name="retry-trail")


def test_kill_9_during_delivery_loses_and_repeats_nothing(server):
    start_trail(server, "crash-trail", "crash-logs")
    acked: list[str] = []
    stop = threading.Event()

    def ingest_forever() -> None:
        while not stop.is_set():
            batch = records(50, read_only=False)
            try:
                result = server.ingest(batch, timeout=5)
            except Exception:
                continue
            if result.status == 200:
                acked.extend(r["eventID"] for r in batch)

    for _cycle in range(3):
        worker = threading.Thread(target=ingest_forever)
        worker.start()
        # Let a few deliveries happen, then kill the server in the middle of whatever it does.
        eventually(lambda: len(acked) > 400, timeout=30, what="ingest under way")
        threading.Event().wait(1.3)
        server.kill()
        stop.set()
        worker.join()
        stop.clear()
        server.start()

    s3 = s3_client(server)
    wanted = set(acked)

    def all_delivered():
        ids = delivered_ids(s3, "crash-logs")
        return ids if wanted <= set(ids) else None

    ids = eventually(all_delivered, timeout=90, interval=1, what="every acknowledged event delivered")
    duplicates = len(ids) - len(set(ids))
    assert duplicates == 0, f"{duplicates} events delivered twice"


# --- notifications and external buckets ----------------------------------------------------


def test_each_delivery_is_announced_on_the_trails_topic(server):
    from test_sns import Subscriber, subscribe_and_confirm

    sns = server.client(service="sns")
    topic = sns.create_topic(Name="trail-files")["TopicArn"]
    subscriber = Subscriber()
    try:
        subscribe_and_confirm(sns, topic, subscriber)
        created = start_trail(server, "notified", "notified-logs", SnsTopicName="trail-files")
        assert created["SnsTopicARN"] == topic
        batch = records(3, read_only=False)
        server.ingest_ok(batch)
        _, notice = subscriber.next(timeout=20)
        assert notice["Type"] == "Notification"
        message = json.loads(notice["Message"])
        assert message["s3Bucket"] == "notified-logs"
        assert all(KEY_PATTERN.match(key) for key in message["s3ObjectKey"])
        s3 = s3_client(server)
        for key in message["s3ObjectKey"]:
            s3.head_object(Bucket="notified-logs", Key=key)
        status = server.client().get_trail_status(Name="notified")
        assert "LatestNotificationTime" in status and "LatestNotificationError" not in status
    finally:
        subscriber.close()


def test_delivery_to_an_external_s3_compatible_bucket(server_factory, s3_compatible_server):
    from e2e_helpers import config_toml

    s3_compatible_server.create_bucket("remote-logs")
    server = server_factory(config=config_toml(extra=s3_compatible_server.external_bucket_toml("remote-logs")),
                            extra_env=FAST)
    client = server.client()
    client.create_trail(Name="remote-trail", S3BucketName="remote-logs")
    client.start_logging(Name="remote-trail")
    batch = records(6, read_only=False)
    server.ingest_ok(batch)
    remote = s3_compatible_server.client()
    ids = eventually(
        lambda: (ids := delivered_ids(remote, "remote-logs")) and {r["eventID"] for r in batch} <= set(ids) and ids,
        timeout=30, interval=0.5, what="log files in the external bucket",
    )
    assert len(ids) == len(set(ids))
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.create_trail(Name="remote-missing", S3BucketName="not-mapped-or-built-in")
    assert error_code(excinfo) == "S3BucketDoesNotExistException"
