"""`aws cloudtrail lookup-events` (AWS CLI v1) against Trailkeeper, as a user types it."""

from __future__ import annotations

import pytest

from e2e_helpers import (
    assert_event_matches,
    by_attr,
    eventually,
    iso,
    lookup_all,
    run_id,
    to_datetime,
)
from lookup_catalog import LookupCatalog, build_catalog


@pytest.fixture(scope="module")
def cat(module_server) -> LookupCatalog:
    cat = build_catalog(run_id())
    records = [r for r in cat.all_records if r is not cat.no_id]
    summary = module_server.ingest_ok(records, ndjson=True)
    assert [r["status"] for r in summary["results"]] == ["accepted"] * len(records), summary
    client = module_server.client()
    eventually(
        lambda: len(lookup_all(client, LookupAttributes=by_attr("Username", cat.values["pager_user"]))) == 250,
        what="the 250 pager events to become visible",
    )
    return cat


def lookup(server, *args: str, region: str = "us-east-1"):
    return server.aws("cloudtrail", "lookup-events", *args, region=region)


def attr(key: str, value: str) -> list[str]:
    return ["--lookup-attributes", f"AttributeKey={key},AttributeValue={value}"]


def span(cat: LookupCatalog, newest: int = 0, oldest: int = 9) -> list[str]:
    return ["--start-time", iso(cat.t(oldest)), "--end-time", iso(cat.t(newest))]


def event_ids(output: dict) -> list[str]:
    return [e["EventId"] for e in output["Events"]]


def rec_ids(records: list[dict]) -> list[str]:
    return [r["eventID"] for r in records]


KEYS = [
    ("EventId", lambda c: c.catalog[3]["eventID"]),
    ("EventName", lambda c: c.values["name_a"]),
    ("ReadOnly", lambda c: "false"),
    ("ReadOnly", lambda c: "true"),
    ("Username", lambda c: c.values["alice"]),
    ("Username", lambda c: c.values["session"]),
    ("ResourceType", lambda c: c.values["res_type"]),
    ("ResourceName", lambda c: c.values["widget1"]),
    ("EventSource", lambda c: c.values["source2"]),
    ("AccessKeyId", lambda c: c.values["key_b"]),
]


@pytest.mark.parametrize("key,value_of", KEYS, ids=[f"{k}-{i}" for i, (k, _) in enumerate(KEYS)])
def test_lookup_events_by_attribute(module_server, cat, key, value_of):
    value = value_of(cat)
    out = lookup(module_server, *attr(key, value), *span(cat)).json()
    expected = cat.expected(key, value)
    assert expected
    assert event_ids(out) == rec_ids(expected)
    for event, rec in zip(out["Events"], expected):
        assert_event_matches(event, rec, where=f"aws lookup-events {key}={value}")


def test_lookup_events_prints_epoch_event_times(module_server, cat):
    out = lookup(module_server, *attr("EventId", cat.catalog[0]["eventID"])).json()
    (event,) = out["Events"]
    # AWS CLI v1 prints JSON-protocol timestamps as they came over the wire: epoch seconds.
    assert isinstance(event["EventTime"], (int, float)), event["EventTime"]
    assert to_datetime(event["EventTime"]) == cat.t(0)


def test_time_window_is_inclusive(module_server, cat):
    out = lookup(module_server, *span(cat, newest=2, oldest=7)).json()
    assert event_ids(out) == rec_ids(cat.catalog[2:8])


def test_time_window_in_other_notations(module_server, cat):
    # The CLI accepts several timestamp notations; each reaches the server as epoch seconds.
    start = cat.t(7).strftime("%Y-%m-%d %H:%M:%S")
    end = str(int(cat.t(2).timestamp()))
    out = lookup(module_server, "--start-time", start, "--end-time", end).json()
    assert event_ids(out) == rec_ids(cat.catalog[2:8])


def test_newest_first(module_server, cat):
    out = lookup(module_server, *span(cat)).json()
    assert event_ids(out) == rec_ids(cat.catalog)
    times = [e["EventTime"] for e in out["Events"]]
    assert times == sorted(times, reverse=True)


def test_max_results_returns_one_page_and_a_next_token(module_server, cat):
    name_b = cat.values["name_b"]
    expected = rec_ids(cat.expected("EventName", name_b))
    first = lookup(module_server, *attr("EventName", name_b), "--max-results", "3").json()
    assert event_ids(first) == expected[:3]
    assert first.get("NextToken")
    second = lookup(module_server, *attr("EventName", name_b), "--max-results", "3",
                    "--next-token", first["NextToken"]).json()
    assert event_ids(second) == expected[3:6]
    third = lookup(module_server, *attr("EventName", name_b), "--max-results", "3",
                   "--next-token", second["NextToken"]).json()
    assert event_ids(third) == expected[6:]
    assert "NextToken" not in third


def test_cli_pages_through_every_event_by_itself(module_server, cat):
    out = lookup(module_server, *attr("Username", cat.values["pager_user"])).json()
    got = event_ids(out)
    assert len(got) == 250
    assert set(got) == set(rec_ids(cat.pager))


def test_cli_max_items_and_starting_token(module_server, cat):
    user = cat.values["pager_user"]
    seen: list[str] = []
    token = None
    for _ in range(10):
        args = [*attr("Username", user), "--max-items", "60", "--page-size", "25"]
        if token:
            args += ["--starting-token", token]
        out = lookup(module_server, *args).json()
        seen += event_ids(out)
        token = out.get("NextToken")
        if not token:
            break
    assert len(seen) == len(set(seen)) == 250
    assert set(seen) == set(rec_ids(cat.pager))


def test_region_flag_selects_the_event_history(module_server, cat):
    west = lookup(module_server, *attr("EventName", cat.values["name_a"]), region="us-west-2").json()
    assert event_ids(west) == [cat.west["eventID"]]
    assert_event_matches(west["Events"][0], cat.west)
    east = lookup(module_server, *attr("EventName", cat.values["name_a"])).json()
    assert cat.west["eventID"] not in event_ids(east)


def test_data_events_are_not_in_event_history(module_server, cat):
    for rec in cat.excluded:
        out = lookup(module_server, *attr("EventId", rec["eventID"])).json()
        assert out["Events"] == [], rec["eventName"]


def test_event_category_insight(module_server, cat):
    source = cat.values["insight_source"]
    out = lookup(module_server, "--event-category", "insight", *attr("EventSource", source)).json()
    assert event_ids(out) == [cat.insight_top["eventID"]]
    plain = lookup(module_server, *attr("EventSource", source)).json()
    assert event_ids(plain) == [cat.insight_twin["eventID"]]


# --- errors, as the CLI shows them ----------------------------------------------------------


def assert_cli_error(result, code: str) -> None:
    assert result.returncode != 0, f"expected {code}, got success: {result.stdout[:500]}"
    assert result.error_code() == code, result.stderr
    assert "when calling the LookupEvents operation" in result.stderr, result.stderr


def test_two_attributes(module_server, cat):
    result = lookup(
        module_server,
        "--lookup-attributes",
        f"AttributeKey=EventName,AttributeValue={cat.values['name_a']}",
        f"AttributeKey=Username,AttributeValue={cat.values['alice']}",
    )
    assert_cli_error(result, "InvalidLookupAttributesException")


def test_unknown_attribute_key(module_server):
    # The CLI does not check enum values, so the key reaches the server.
    assert_cli_error(lookup(module_server, *attr("Colour", "blue")), "InvalidLookupAttributesException")


def test_start_after_end(module_server, cat):
    result = lookup(module_server, "--start-time", iso(cat.t(0)), "--end-time", iso(cat.t(5)))
    assert_cli_error(result, "InvalidTimeRangeException")


def test_max_results_over_50(module_server):
    # botocore checks only the minimum of an integer range; 51 reaches the server.
    assert_cli_error(lookup(module_server, "--max-results", "51"), "InvalidMaxResultsException")


def test_garbage_next_token(module_server):
    assert_cli_error(lookup(module_server, "--next-token", "not-a-token"), "InvalidNextTokenException")


def test_next_token_from_another_query(module_server, cat):
    first = lookup(module_server, *attr("EventName", cat.values["name_b"]), "--max-results", "2").json()
    result = lookup(module_server, *attr("EventName", cat.values["name_a"]), "--max-results", "2",
                    "--next-token", first["NextToken"])
    assert_cli_error(result, "InvalidNextTokenException")


def test_bad_event_category(module_server):
    assert_cli_error(lookup(module_server, "--event-category", "everything"), "InvalidEventCategoryException")
