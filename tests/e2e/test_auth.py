"""Authentication, authorisation and self-audit, with the codes AWS clients expect."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import botocore
import pytest
from botocore.exceptions import ClientError

from e2e_helpers import (
    ACCOUNT_ID,
    BOB,
    IMPORTER,
    OTHER_ACCOUNT_ID,
    READER,
    ROOT,
    WRITER,
    Creds,
    by_attr,
    eventually,
    lookup_all,
    lookup_target,
    make_record,
    signed_request,
    utcnow,
)

AUTH_STATUSES = (400, 403)  # AWS documents both for its authentication errors


def client_error(call) -> ClientError:
    with pytest.raises(ClientError) as info:
        call()
    return info.value


def code_and_status(err: ClientError) -> tuple[str, int]:
    return err.response["Error"]["Code"], err.response["ResponseMetadata"]["HTTPStatusCode"]


# --- who may call at all -----------------------------------------------------------------


def test_unsigned_request_is_refused(module_server):
    client = module_server.client(signature_version=botocore.UNSIGNED)
    code, status = code_and_status(client_error(lambda: client.lookup_events()))
    assert code == "MissingAuthenticationTokenException"
    assert status in AUTH_STATUSES


def test_unsigned_ingest_is_refused(module_server):
    result = module_server.ingest([make_record(event_time=utcnow())], creds=None)
    assert result.status in AUTH_STATUSES, result.describe()
    assert result.error_code() == "MissingAuthenticationTokenException", result.describe()


def test_wrong_secret_is_refused(module_server):
    wrong = Creds("reader", READER.access_key_id, "not-the-secret", ACCOUNT_ID, "reader")
    code, status = code_and_status(client_error(lambda: module_server.client(creds=wrong).lookup_events()))
    assert code == "InvalidSignatureException"
    assert status in AUTH_STATUSES


def test_wrong_secret_on_ingest_is_refused(module_server):
    wrong = Creds("importer", IMPORTER.access_key_id, "not-the-secret", ACCOUNT_ID, "admin")
    result = module_server.ingest([make_record(event_time=utcnow())], creds=wrong)
    assert result.status in AUTH_STATUSES, result.describe()
    assert result.error_code() == "InvalidSignatureException", result.describe()


def test_unknown_access_key_is_refused(module_server):
    stranger = Creds("x", "AKIAE2ENOBODY0000001", "whatever", ACCOUNT_ID, "admin")
    code, status = code_and_status(client_error(lambda: module_server.client(creds=stranger).lookup_events()))
    assert code == "UnrecognizedClientException"
    assert status in AUTH_STATUSES


def test_tampered_body_is_refused(module_server):
    # Signed for one body, sent with another: the payload hash no longer matches.
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="POST", url=f"{module_server.endpoint}/", data=b'{"MaxResults": 5}',
                         headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": lookup_target()})
    SigV4Auth(Credentials(READER.access_key_id, READER.secret_access_key), "cloudtrail", "us-east-1").add_auth(request)
    headers = dict(request.prepare().headers)
    result = signed_request("POST", f"{module_server.endpoint}/", b'{"MaxResults": 6}', headers,
                            creds=None, region="us-east-1")
    assert result.status in AUTH_STATUSES, result.describe()
    assert result.error_code() == "InvalidSignatureException", result.describe()


@pytest.mark.parametrize("minutes", [20, -20])
def test_clock_skew_over_15_minutes_is_refused(module_server, minutes):
    skewed = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(minutes=minutes)
    result = module_server.raw_api(lookup_target(), b"{}", creds=READER, now=skewed)
    assert result.status in AUTH_STATUSES, result.describe()
    assert result.error_code() == "InvalidSignatureException", result.describe()
    message = result.json().get("message") or result.json().get("Message") or ""
    assert message.startswith("Signature expired") if minutes < 0 else "Signature" in message, message
    assert skewed.strftime("%Y%m%dT%H%M%SZ") in message, message


def test_clock_skew_through_boto3_is_refused(module_server, monkeypatch):
    skewed = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=20)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: skewed)
    err = client_error(lambda: module_server.client(creds=READER).lookup_events())
    code, status = code_and_status(err)
    assert code == "InvalidSignatureException"
    assert err.response["Error"]["Message"].startswith("Signature expired")


def test_clock_skew_within_15_minutes_is_accepted(module_server):
    skewed = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=10)
    result = module_server.raw_api(lookup_target(), b"{}", creds=READER, now=skewed)
    assert result.status == 200, result.describe()


def test_signature_for_another_service_is_refused(module_server):
    result = signed_request(
        "POST", f"{module_server.endpoint}/", b"{}",
        {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": lookup_target()},
        creds=READER, region="us-east-1", service="dynamodb",
    )
    assert result.status in AUTH_STATUSES, result.describe()
    assert result.error_code() in ("InvalidSignatureException", "UnrecognizedClientException"), result.describe()


def test_malformed_authorization_header_is_refused(module_server):
    result = signed_request(
        "POST", f"{module_server.endpoint}/", b"{}",
        {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": lookup_target(),
         "Authorization": "AWS4-HMAC-SHA256 Credential=garbage", "X-Amz-Date": utcnow().strftime("%Y%m%dT%H%M%SZ")},
        creds=None, region="us-east-1",
    )
    assert result.status in AUTH_STATUSES, result.describe()
    assert result.error_code() in ("IncompleteSignatureException", "InvalidSignatureException"), result.describe()


# --- what each role may do ---------------------------------------------------------------


def test_reader_may_look_up(module_server):
    module_server.client(creds=READER).lookup_events(MaxResults=1)


def test_reader_may_not_ingest(module_server):
    result = module_server.ingest([make_record(event_time=utcnow())], creds=READER)
    assert result.status in AUTH_STATUSES, result.describe()
    assert result.error_code() == "AccessDeniedException", result.describe()


def test_writer_may_ingest(module_server):
    summary = module_server.ingest_ok([make_record(event_time=utcnow())], creds=WRITER)
    assert summary["accepted"] == 1


def test_writer_may_not_look_up(module_server):
    code, status = code_and_status(client_error(lambda: module_server.client(creds=WRITER).lookup_events()))
    assert code == "AccessDeniedException"
    assert status in AUTH_STATUSES


def test_writer_may_not_look_up_with_the_cli(module_server):
    result = module_server.aws("cloudtrail", "lookup-events", "--max-results", "1", creds=WRITER)
    assert result.returncode != 0
    assert result.error_code() == "AccessDeniedException", result.stderr


def test_records_for_another_account_are_rejected_one_by_one(module_server):
    own = make_record(event_time=utcnow(), account=ACCOUNT_ID, event_name="E2eOwnAccount")
    foreign = make_record(event_time=utcnow(), account=OTHER_ACCOUNT_ID, event_name="E2eForeignAccount")
    also_own = make_record(event_time=utcnow(), account=None, event_name="E2eDefaultAccount")
    summary = module_server.ingest_ok([own, foreign, also_own], creds=ROOT)
    statuses = [r["status"] for r in summary["results"]]
    assert statuses == ["accepted", "rejected", "accepted"], summary
    refused = summary["results"][1]
    assert refused.get("reason"), refused
    assert "eventId" not in refused, refused
    assert (summary["accepted"], summary["duplicates"], summary["rejected"]) == (2, 0, 1)
    # The refused record is nowhere, not even for a user who may read every account.
    events = lookup_all(module_server.client(creds=IMPORTER), LookupAttributes=by_attr("EventId", foreign["eventID"]))
    assert events == []


def test_user_of_account_b_may_not_write_account_a(module_server):
    rec = make_record(event_time=utcnow(), account=ACCOUNT_ID)
    summary = module_server.ingest_ok([rec], creds=BOB)
    assert summary["results"][0]["status"] == "rejected", summary
    assert summary["results"][0].get("reason")


def test_accounts_are_walled_off_in_event_history(module_server):
    marker = f"E2eTenant{uuid.uuid4().hex[:8]}"
    in_a = make_record(event_time=utcnow(), account=ACCOUNT_ID, event_name=marker)
    in_b = make_record(event_time=utcnow(), account=OTHER_ACCOUNT_ID, event_name=marker)
    assert module_server.ingest_ok([in_a], creds=ROOT)["accepted"] == 1
    assert module_server.ingest_ok([in_b], creds=BOB)["accepted"] == 1
    query = {"LookupAttributes": by_attr("EventName", marker)}
    importer = module_server.client(creds=IMPORTER)

    def both_visible():
        events = lookup_all(importer, **query)
        return events if len(events) == 2 else None

    everyone = eventually(both_visible, what="both tenants' events for the all-accounts importer")
    assert {e["EventId"] for e in everyone} == {in_a["eventID"], in_b["eventID"]}
    assert [e["EventId"] for e in lookup_all(module_server.client(creds=ROOT), **query)] == [in_a["eventID"]]
    assert [e["EventId"] for e in lookup_all(module_server.client(creds=READER), **query)] == [in_a["eventID"]]
    assert [e["EventId"] for e in lookup_all(module_server.client(creds=BOB), **query)] == [in_b["eventID"]]


# --- self-audit ----------------------------------------------------------------------------


def call_with_marker(client, **params):
    """Calls LookupEvents with a unique User-Agent; returns (marker, the User-Agent sent, error)."""
    sent = {}

    def capture(request, **_):
        sent["ua"] = request.headers["User-Agent"]
        sent["ua"] = sent["ua"].decode() if isinstance(sent["ua"], bytes) else sent["ua"]

    client.meta.events.register("before-send.cloudtrail.LookupEvents", capture)
    error = None
    try:
        client.lookup_events(**params)
    except ClientError as err:
        error = err
    return sent["ua"], error


def find_audit_event(server, user_agent: str, creds: Creds = IMPORTER, region: str = "us-east-1") -> dict:
    client = server.client(region, creds=creds)

    def look():
        for event in lookup_all(client, LookupAttributes=by_attr("EventName", "LookupEvents")):
            record = json.loads(event["CloudTrailEvent"])
            if record.get("userAgent") == user_agent:
                return event, record
        return None

    return eventually(look, timeout=10, what=f"the self-audit event with userAgent {user_agent!r}")


@pytest.mark.parametrize("creds", [READER, ROOT], ids=["IAMUser", "Root"])
def test_lookup_events_is_recorded_in_event_history(module_server, creds):
    marker = uuid.uuid4().hex
    client = module_server.client(creds=creds, user_agent_extra=f"e2e-audit/{marker}")
    user_agent, error = call_with_marker(client, LookupAttributes=by_attr("Username", f"nobody-{marker}"))
    assert error is None
    event, record = find_audit_event(module_server, user_agent)

    assert record["eventSource"] == "cloudtrail.amazonaws.com"
    assert record["eventName"] == "LookupEvents"
    assert record["readOnly"] is True
    assert record["eventCategory"] == "Management"
    assert record["eventType"] == "AwsApiCall"
    assert record["awsRegion"] == "us-east-1"
    assert record["recipientAccountId"] == creds.account_id
    assert record["sourceIPAddress"] == "127.0.0.1"
    assert record["userAgent"] == user_agent
    assert "errorCode" not in record
    identity = record["userIdentity"]
    assert identity["type"] == creds.identity_type
    assert identity["arn"] == creds.arn
    assert identity["accountId"] == creds.account_id
    assert identity["accessKeyId"] == creds.access_key_id
    if creds.identity_type == "IAMUser":
        assert identity["userName"] == creds.name
        assert event["Username"] == creds.name
    # The request parameters are recorded (CloudTrail spells their names in camelCase).
    params = json.dumps(record.get("requestParameters"))
    assert f"nobody-{marker}" in params and "Username" in params, record.get("requestParameters")
    assert event["ReadOnly"] == "true"
    assert event["EventSource"] == "cloudtrail.amazonaws.com"
    assert event["AccessKeyId"] == creds.access_key_id
    # Secrets never appear in a recorded event.
    assert creds.secret_access_key not in event["CloudTrailEvent"]


def test_lookup_events_through_the_cli_is_recorded(module_server):
    marker = uuid.uuid4().hex
    result = module_server.aws("cloudtrail", "lookup-events", "--max-results", "1",
                               "--lookup-attributes", f"AttributeKey=EventName,AttributeValue=cli-{marker}",
                               creds=READER)
    assert result.returncode == 0, result.stderr
    client = module_server.client(creds=IMPORTER)

    def look():
        for event in lookup_all(client, LookupAttributes=by_attr("EventName", "LookupEvents")):
            record = json.loads(event["CloudTrailEvent"])
            params = json.dumps(record.get("requestParameters"))
            if f"cli-{marker}" in params:
                return record
        return None

    record = eventually(look, what="the CLI's LookupEvents call in Event History")
    assert record["userAgent"].startswith("aws-cli/1.46.2"), record["userAgent"]
    assert record["userIdentity"]["userName"] == "reader"


def test_a_failed_call_is_recorded_with_its_error(module_server):
    marker = uuid.uuid4().hex
    client = module_server.client(creds=READER, user_agent_extra=f"e2e-audit/{marker}")
    now = utcnow()
    user_agent, error = call_with_marker(client, StartTime=now, EndTime=now - dt.timedelta(hours=1))
    assert error is not None and error.response["Error"]["Code"] == "InvalidTimeRangeException"
    _, record = find_audit_event(module_server, user_agent)
    assert record["errorCode"] == "InvalidTimeRangeException"
    assert record.get("errorMessage"), record
    assert record["userIdentity"]["userName"] == "reader"
    assert record["readOnly"] is True


def test_an_access_denied_call_is_recorded(module_server):
    marker = uuid.uuid4().hex
    client = module_server.client(creds=WRITER, user_agent_extra=f"e2e-audit/{marker}")
    user_agent, error = call_with_marker(client)
    assert error is not None and error.response["Error"]["Code"] == "AccessDeniedException"
    _, record = find_audit_event(module_server, user_agent)
    assert record["errorCode"] == "AccessDeniedException"
    assert record["userIdentity"]["userName"] == "writer"
    assert record["userIdentity"]["arn"] == WRITER.arn


def test_self_audit_lands_in_the_region_that_was_called(module_server):
    marker = uuid.uuid4().hex
    client = module_server.client("eu-west-1", creds=READER, user_agent_extra=f"e2e-audit/{marker}")
    user_agent, error = call_with_marker(client)
    assert error is None
    _, record = find_audit_event(module_server, user_agent, region="eu-west-1")
    assert record["awsRegion"] == "eu-west-1"
    east = lookup_all(module_server.client("us-east-1"), LookupAttributes=by_attr("EventName", "LookupEvents"))
    assert all(json.loads(e["CloudTrailEvent"]).get("userAgent") != user_agent for e in east)
