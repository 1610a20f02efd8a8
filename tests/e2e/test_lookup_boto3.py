"""LookupEvents through boto3, as a Python user of CloudTrail would call it."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid

import pytest
from botocore.exceptions import ClientError

from e2e_helpers import (
    ACCOUNT_ID,
    AMZ_JSON,
    IMPORTER,
    assert_event_matches,
    by_attr,
    eventually,
    lookup_all,
    lookup_target,
    run_id,
)
from lookup_catalog import LookupCatalog, build_catalog, realistic_insight_pair


@pytest.fixture(scope="module")
def cat(module_server) -> LookupCatalog:
    cat = build_catalog(run_id())
    records = cat.all_records
    summary = module_server.ingest_ok(records)
    statuses = [r["status"] for r in summary["results"]]
    assert statuses == ["accepted"] * len(records), summary
    assert summary["accepted"] == len(records)
    # Trailkeeper filled the missing eventID; remember it and what the stored record must be.
    no_id_result = summary["results"][records.index(cat.no_id)]
    cat.no_id = {
        "eventID": no_id_result["eventId"],
        "recipientAccountId": ACCOUNT_ID,
        **cat.no_id,
    }
    client = module_server.client()
    eventually(
        lambda: len(lookup_all(client, LookupAttributes=by_attr("Username", cat.values["pager_user"]))) == 250,
        what="the 250 pager events to become visible",
    )
    return cat


@pytest.fixture(scope="module")
def ct(module_server):
    return module_server.client("us-east-1")


def window(cat: LookupCatalog) -> dict:
    """StartTime/EndTime spanning exactly the ten catalog events."""
    return {"StartTime": cat.t(9), "EndTime": cat.t(0)}


def ids(events: list[dict]) -> list[str]:
    return [e["EventId"] for e in events]


def rec_ids(records: list[dict]) -> list[str]:
    return [r["eventID"] for r in records]


def error_of(call) -> ClientError:
    with pytest.raises(ClientError) as info:
        call()
    return info.value


# --- every attribute key ------------------------------------------------------------------


ATTRIBUTE_CASES = [
    ("EventId", lambda c: c.catalog[2]["eventID"]),
    ("EventName", lambda c: c.values["name_a"]),
    ("EventName", lambda c: c.values["name_b"]),
    ("Username", lambda c: c.values["alice"]),
    ("Username", lambda c: c.values["bob"]),
    ("Username", lambda c: c.values["session"]),
    ("ResourceType", lambda c: c.values["res_type"]),
    ("ResourceType", lambda c: "AWS::S3::Bucket"),
    ("ResourceName", lambda c: c.values["widget1"]),
    ("ResourceName", lambda c: c.values["bucket"]),
    ("EventSource", lambda c: c.values["source"]),
    ("EventSource", lambda c: c.values["source2"]),
    ("AccessKeyId", lambda c: c.values["key_a"]),
    ("AccessKeyId", lambda c: c.values["key_b"]),
    ("AccessKeyId", lambda c: c.values["key_s"]),
]


@pytest.mark.parametrize(
    "key,value_of", ATTRIBUTE_CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(ATTRIBUTE_CASES)]
)
def test_lookup_by_attribute_returns_exactly_the_matching_events(ct, cat, key, value_of):
    value = value_of(cat)
    # ResourceType AWS::S3::Bucket could match other data on a shared server; bound it by time.
    events = lookup_all(ct, LookupAttributes=by_attr(key, value), **window(cat))
    expected = cat.expected(key, value)
    assert expected, "the catalog must hold at least one match"
    assert ids(events) == rec_ids(expected), f"{key}={value}"
    for event, rec in zip(events, expected):
        assert_event_matches(event, rec, where=f"{key}={value}")


@pytest.mark.parametrize("flag", ["true", "false"])
def test_lookup_by_read_only(ct, cat, flag):
    events = lookup_all(ct, LookupAttributes=by_attr("ReadOnly", flag), **window(cat))
    expected = cat.expected("ReadOnly", flag)
    assert ids(events) == rec_ids(expected)
    assert {e["ReadOnly"] for e in events} == {flag}


def test_lookup_without_time_bounds_covers_the_history(ct, cat):
    events = lookup_all(ct, LookupAttributes=by_attr("EventName", cat.values["name_c"]))
    assert ids(events) == [cat.catalog[4]["eventID"]]


def test_unknown_value_returns_nothing(ct, cat):
    page = ct.lookup_events(LookupAttributes=by_attr("Username", f"nobody-{cat.run}"))
    assert page["Events"] == []
    assert "NextToken" not in page


# --- time windows, order, page size -------------------------------------------------------


def test_start_and_end_time_are_inclusive(ct, cat):
    events = lookup_all(ct, StartTime=cat.t(7), EndTime=cat.t(2))
    assert ids(events) == rec_ids(cat.catalog[2:8])


def test_a_window_of_one_instant_returns_the_event_at_that_instant(ct, cat):
    events = lookup_all(ct, StartTime=cat.t(4), EndTime=cat.t(4))
    assert ids(events) == [cat.catalog[4]["eventID"]]


def test_a_window_just_inside_the_neighbours_excludes_them(ct, cat):
    second = dt.timedelta(seconds=1)
    events = lookup_all(ct, StartTime=cat.t(7) + second, EndTime=cat.t(2) - second)
    assert ids(events) == rec_ids(cat.catalog[3:7])


def test_only_start_time_given(ct, cat):
    events = lookup_all(ct, StartTime=cat.t(1), LookupAttributes=by_attr("Username", cat.values["alice"]))
    assert ids(events) == rec_ids([cat.catalog[0], cat.catalog[1]])


def test_only_end_time_given(ct, cat):
    events = lookup_all(ct, EndTime=cat.t(8), LookupAttributes=by_attr("Username", cat.values["alice"]))
    # Everything of alice's at or before t(8): two catalog events, then older ones.
    assert ids(events) == rec_ids([cat.catalog[8], cat.catalog[9], cat.insight_twin, cat.no_id])


def test_results_are_newest_first(ct, cat):
    events = lookup_all(ct, **window(cat))
    times = [e["EventTime"] for e in events]
    assert times == sorted(times, reverse=True)
    assert ids(events) == rec_ids(cat.catalog)


def test_max_results_limits_each_page_and_next_token_continues(ct, cat):
    query = {"LookupAttributes": by_attr("EventName", cat.values["name_b"]), "MaxResults": 3}
    expected = rec_ids(cat.expected("EventName", cat.values["name_b"]))
    assert len(expected) == 7
    pages = []
    page = ct.lookup_events(**query)
    pages.append(page)
    while "NextToken" in page:
        page = ct.lookup_events(**query, NextToken=page["NextToken"])
        pages.append(page)
        assert len(pages) < 10, "paging does not end"
    assert [len(p["Events"]) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in ids(p["Events"])] == expected


def test_default_page_size_is_50(ct, cat):
    page = ct.lookup_events(LookupAttributes=by_attr("Username", cat.values["pager_user"]))
    assert len(page["Events"]) == 50
    assert page.get("NextToken")


def test_max_results_50_is_allowed(ct, cat):
    page = ct.lookup_events(LookupAttributes=by_attr("Username", cat.values["pager_user"]), MaxResults=50)
    assert len(page["Events"]) == 50


# --- paging over more than 200 events ------------------------------------------------------


def expected_pager_ids(cat: LookupCatalog) -> set[str]:
    return set(rec_ids(cat.pager))


@pytest.mark.parametrize("page_size", [None, 50, 7, 1])
def test_paginator_returns_every_event_once(ct, cat, page_size):
    config = {"PageSize": page_size} if page_size else {}
    paginator = ct.get_paginator("lookup_events")
    events, pages = [], 0
    for page in paginator.paginate(
        LookupAttributes=by_attr("Username", cat.values["pager_user"]), PaginationConfig=config
    ):
        pages += 1
        if page_size:
            assert len(page["Events"]) <= page_size
        events.extend(page["Events"])
    got = ids(events)
    assert len(got) == len(set(got)), "an event came back twice"
    assert set(got) == expected_pager_ids(cat), (
        f"missing {len(expected_pager_ids(cat) - set(got))}, extra {len(set(got) - expected_pager_ids(cat))}"
    )
    times = [e["EventTime"] for e in events]
    assert times == sorted(times, reverse=True)
    if page_size:
        assert pages == -(-len(cat.pager) // page_size)
    by_id = {r["eventID"]: r for r in cat.pager}
    for event in events[:20]:
        assert_event_matches(event, by_id[event["EventId"]])


def test_paging_is_stable_while_new_events_arrive(module_server, ct, cat):
    user = cat.values["pager_user"]
    first = ct.lookup_events(LookupAttributes=by_attr("Username", user), MaxResults=40)
    # Newer events matching the same query arrive between two pages.
    newer = [
        {**cat.pager[0], "eventID": str(uuid.uuid4()), "eventTime": (cat.t0 - dt.timedelta(minutes=59)).strftime("%Y-%m-%dT%H:%M:%SZ")}
        for _ in range(5)
    ]
    try:
        module_server.ingest_ok(newer)
        seen = ids(first["Events"])
        token = first["NextToken"]
        while token:
            page = ct.lookup_events(LookupAttributes=by_attr("Username", user), MaxResults=40, NextToken=token)
            seen += ids(page["Events"])
            token = page.get("NextToken")
        assert len(seen) == len(set(seen)), "an event came back twice"
        assert expected_pager_ids(cat) <= set(seen), "an event was skipped"
    finally:
        # The module's other tests count exactly 250 pager events.
        cat.pager.extend(newer)


def test_next_token_with_other_attribute_is_refused(ct, cat):
    page = ct.lookup_events(LookupAttributes=by_attr("EventName", cat.values["name_b"]), MaxResults=2)
    err = error_of(lambda: ct.lookup_events(
        LookupAttributes=by_attr("EventName", cat.values["name_a"]), MaxResults=2, NextToken=page["NextToken"]))
    assert err.response["Error"]["Code"] == "InvalidNextTokenException"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_next_token_with_other_time_range_is_refused(ct, cat):
    page = ct.lookup_events(MaxResults=2, **window(cat))
    err = error_of(lambda: ct.lookup_events(
        MaxResults=2, StartTime=cat.t(8), EndTime=cat.t(0), NextToken=page["NextToken"]))
    assert err.response["Error"]["Code"] == "InvalidNextTokenException"


def test_next_token_with_other_attribute_key_is_refused(ct, cat):
    page = ct.lookup_events(LookupAttributes=by_attr("Username", cat.values["alice"]), MaxResults=2)
    err = error_of(lambda: ct.lookup_events(
        LookupAttributes=by_attr("EventName", cat.values["alice"]), MaxResults=2, NextToken=page["NextToken"]))
    assert err.response["Error"]["Code"] == "InvalidNextTokenException"


# --- what Event History holds --------------------------------------------------------------


def test_events_of_another_region_are_not_returned(module_server, ct, cat):
    east = lookup_all(ct, LookupAttributes=by_attr("EventName", cat.values["name_a"]))
    assert cat.west["eventID"] not in ids(east)
    assert ids(east) == rec_ids(cat.expected("EventName", cat.values["name_a"]))
    none = lookup_all(ct, LookupAttributes=by_attr("EventId", cat.west["eventID"]))
    assert none == []


def test_events_of_their_own_region_are_returned(module_server, cat):
    west = module_server.client("us-west-2")
    events = lookup_all(west, LookupAttributes=by_attr("EventName", cat.values["name_a"]))
    assert ids(events) == [cat.west["eventID"]]
    assert_event_matches(events[0], cat.west)
    # And none of us-east-1's catalog leaks into us-west-2.
    assert lookup_all(west, **window(cat)) == [events[0]]


@pytest.mark.parametrize("index", [0, 1, 2], ids=["category-Data", "managementEvent-false", "NetworkActivity"])
def test_data_and_network_events_are_never_returned(ct, cat, index):
    rec = cat.excluded[index]
    assert lookup_all(ct, LookupAttributes=by_attr("EventId", rec["eventID"])) == []
    assert lookup_all(ct, LookupAttributes=by_attr("EventName", rec["eventName"])) == []
    assert lookup_all(ct, LookupAttributes=by_attr("Username", rec["userIdentity"]["userName"])) == []
    assert lookup_all(ct, LookupAttributes=by_attr("EventId", rec["eventID"]), EventCategory="insight") == []


def test_event_category_insight_returns_only_insights_events(ct, cat):
    source = cat.values["insight_source"]
    insights = lookup_all(ct, EventCategory="insight", LookupAttributes=by_attr("EventSource", source))
    assert ids(insights) == [cat.insight_top["eventID"]]
    assert json.loads(insights[0]["CloudTrailEvent"]) == cat.insight_top
    management = lookup_all(ct, LookupAttributes=by_attr("EventSource", source))
    assert ids(management) == [cat.insight_twin["eventID"]]
    # No catalog (management) event comes back under EventCategory=insight.
    assert lookup_all(ct, EventCategory="insight", **window(cat)) == []


def test_insights_records_as_cloudtrail_writes_them_are_found(module_server, ct, cat):
    pair = realistic_insight_pair(cat.run, cat.t0 - dt.timedelta(minutes=45))
    summary = module_server.ingest_ok(pair)
    assert [r["status"] for r in summary["results"]] == ["accepted", "accepted"], summary
    name = pair[0]["insightDetails"]["eventName"]
    events = eventually(
        lambda: lookup_all(ct, EventCategory="insight", LookupAttributes=by_attr("EventName", name)),
        what="the Insights pair",
    )
    assert ids(events) == [pair[1]["eventID"], pair[0]["eventID"]]
    for event, rec in zip(events, [pair[1], pair[0]]):
        assert event["EventName"] == name
        assert event["EventSource"] == "ssm.amazonaws.com"
        assert json.loads(event["CloudTrailEvent"]) == rec
    by_source = lookup_all(ct, EventCategory="insight", LookupAttributes=by_attr("EventSource", "ssm.amazonaws.com"),
                           StartTime=cat.t0 - dt.timedelta(minutes=50), EndTime=cat.t0 - dt.timedelta(minutes=35))
    assert ids(by_source) == ids(events)
    # Without EventCategory=insight, Insights events stay out of management history.
    assert lookup_all(ct, LookupAttributes=by_attr("EventName", name)) == []


def test_trailkeeper_fills_event_id_and_recipient_account(ct, cat):
    event_id = cat.no_id["eventID"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", event_id)
    events = lookup_all(ct, LookupAttributes=by_attr("EventId", event_id))
    assert len(events) == 1
    assert_event_matches(events[0], cat.no_id)


def test_every_field_of_a_full_event(ct, cat):
    rec = cat.catalog[0]
    (event,) = lookup_all(ct, LookupAttributes=by_attr("EventId", rec["eventID"]))
    assert set(event) >= {"EventId", "EventName", "ReadOnly", "AccessKeyId", "EventTime", "EventSource",
                          "Username", "Resources", "CloudTrailEvent"}
    assert event["Resources"] == [
        {"ResourceType": cat.values["res_type"], "ResourceName": cat.values["widget1"]},
        {"ResourceType": "AWS::S3::Bucket", "ResourceName": cat.values["bucket"]},
    ]
    assert event["EventTime"] == cat.t(0)
    assert_event_matches(event, rec)


# --- every error a user can hit ------------------------------------------------------------


def test_two_lookup_attributes_are_refused(ct, cat):
    err = error_of(lambda: ct.lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": cat.values["name_a"]},
        {"AttributeKey": "Username", "AttributeValue": cat.values["alice"]},
    ]))
    assert err.response["Error"]["Code"] == "InvalidLookupAttributesException"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unknown_attribute_key_is_refused(module_server):
    client = module_server.client(parameter_validation=False)
    err = error_of(lambda: client.lookup_events(LookupAttributes=[{"AttributeKey": "Bogus", "AttributeValue": "x"}]))
    assert err.response["Error"]["Code"] == "InvalidLookupAttributesException"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_start_after_end_is_refused(ct, cat):
    err = error_of(lambda: ct.lookup_events(StartTime=cat.t(0), EndTime=cat.t(5)))
    assert err.response["Error"]["Code"] == "InvalidTimeRangeException"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize("max_results", [0, 51, -1, 1000])
def test_max_results_out_of_range_is_refused(module_server, max_results):
    client = module_server.client(parameter_validation=False)
    err = error_of(lambda: client.lookup_events(MaxResults=max_results))
    assert err.response["Error"]["Code"] == "InvalidMaxResultsException"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize("token", ["garbage", "AAAA", "eyJub3QiOiAidG9rZW4ifQ==", "x" * 5000])
def test_garbage_next_token_is_refused(ct, token):
    err = error_of(lambda: ct.lookup_events(NextToken=token))
    assert err.response["Error"]["Code"] == "InvalidNextTokenException"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize("category", ["bogus", "data", "management"])
def test_bad_event_category_is_refused(module_server, category):
    client = module_server.client(parameter_validation=False)
    err = error_of(lambda: client.lookup_events(EventCategory=category))
    assert err.response["Error"]["Code"] == "InvalidEventCategoryException"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def assert_aws_json_error(result, code: str) -> None:
    assert result.status == 400, result.describe()
    body = result.json()
    assert isinstance(body, dict), result.describe()
    assert body.get("__type", "").split("#")[-1] == code, result.describe()
    message = body.get("message", body.get("Message"))
    assert isinstance(message, str) and message, f"no message: {result.describe()}"
    content_type = result.header("Content-Type") or ""
    assert content_type.startswith(AMZ_JSON), f"Content-Type {content_type!r}"


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2", b'{"MaxResults": "five"}', b'{"LookupAttributes": {}}', b"\xff\xfe"])
def test_malformed_json_body_gets_serialization_exception(module_server, body):
    result = module_server.raw_api(lookup_target(), body)
    assert_aws_json_error(result, "SerializationException")


def test_unknown_operation_gets_unknown_operation_exception(module_server):
    result = module_server.raw_api(lookup_target("FlyToTheMoon"), b"{}")
    assert_aws_json_error(result, "UnknownOperationException")


def test_target_of_another_service_gets_unknown_operation_exception(module_server):
    result = module_server.raw_api("DynamoDB_20120810.ListTables", b"{}")
    assert_aws_json_error(result, "UnknownOperationException")


def test_an_empty_object_is_a_valid_request(module_server):
    result = module_server.raw_api(lookup_target(), b"{}")
    assert result.status == 200, result.describe()
    assert "Events" in result.json()


def test_response_is_aws_json(module_server, cat):
    body = json.dumps({"LookupAttributes": by_attr("EventId", cat.catalog[0]["eventID"])}).encode()
    result = module_server.raw_api(lookup_target(), body, creds=IMPORTER)
    assert result.status == 200, result.describe()
    assert (result.header("Content-Type") or "").startswith(AMZ_JSON)
    assert result.header("x-amzn-RequestId"), "AWS sends x-amzn-RequestId on every response"
    (event,) = result.json()["Events"]
    # Timestamps are epoch seconds on the wire.
    assert isinstance(event["EventTime"], (int, float))
    assert event["EventTime"] == cat.t(0).timestamp()
