"""The records the LookupEvents tests (CLI and boto3) ingest, and what each query must return.

Every value carries a per-run marker so that nothing else on the server (its own
self-audit events, say) can match by accident. Catalog events sit two days back, a minute
apart, so that time-window queries over them see nothing else.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from e2e_helpers import ACCOUNT_ID, make_record, utcnow


@dataclass
class LookupCatalog:
    run: str
    t0: dt.datetime
    catalog: list[dict]  # c0..c9, us-east-1, newest first (c0 newest)
    west: dict  # a us-west-2 event with the same EventName as c0
    excluded: list[dict]  # data and network-activity events: never in Event History
    insight_top: dict  # an Insights record that also carries top-level eventSource/eventName
    insight_twin: dict  # a management event with the same eventSource as insight_top
    pager: list[dict]  # 250 events sharing one Username, 7 per second
    no_id: dict  # a record without eventID and recipientAccountId
    values: dict[str, str] = field(default_factory=dict)

    @property
    def all_records(self) -> list[dict]:
        return [
            *self.catalog,
            self.west,
            *self.excluded,
            self.insight_top,
            self.insight_twin,
            *self.pager,
            self.no_id,
        ]

    def catalog_where(self, predicate) -> list[dict]:
        """Catalog events matching `predicate`, newest first."""
        return [rec for rec in self.catalog if predicate(rec)]

    def t(self, i: int) -> dt.datetime:
        return self.t0 - dt.timedelta(minutes=i)

    def expected(self, key: str, value: str) -> list[dict]:
        """What LookupEvents must return in us-east-1 for one attribute over the catalog."""

        def resources(rec, member):
            return [r.get(member) for r in rec.get("resources", [])]

        match = {
            "EventId": lambda r: r["eventID"] == value,
            "EventName": lambda r: r["eventName"] == value,
            "ReadOnly": lambda r: str(r["readOnly"]).lower() == value,
            "Username": lambda r: username_of(r) == value,
            "ResourceType": lambda r: value in resources(r, "type"),
            "ResourceName": lambda r: value in resources(r, "ARN"),
            "EventSource": lambda r: r["eventSource"] == value,
            "AccessKeyId": lambda r: r["userIdentity"].get("accessKeyId") == value,
        }[key]
        return self.catalog_where(match)


def username_of(rec: dict) -> str:
    ident = rec["userIdentity"]
    if ident["type"] == "IAMUser":
        return ident["userName"]
    return ident["arn"].rsplit("/", 1)[-1]


def build_catalog(run: str) -> LookupCatalog:
    t0 = (utcnow() - dt.timedelta(days=2)).replace(second=0)
    name_a = f"E2eCreateWidget{run}"
    name_b = f"E2eDescribeWidgets{run}"
    name_c = f"E2eDeleteWidget{run}"
    source = f"e2e{run}.amazonaws.com"
    source2 = f"e2eadmin{run}.amazonaws.com"
    alice, bob, session = f"alice-{run}", f"bob-{run}", f"session-{run}"
    key_a = ("AKIAA" + run.upper() + "XXXXXXXXXX")[:20]
    key_b = ("AKIAB" + run.upper() + "XXXXXXXXXX")[:20]
    key_s = ("ASIAS" + run.upper() + "XXXXXXXXXX")[:20]
    res_type = f"AWS::E2E{run}::Widget"
    widget1 = f"arn:aws:e2e:us-east-1:{ACCOUNT_ID}:widget/{run}-1"
    widget2 = f"arn:aws:e2e:us-east-1:{ACCOUNT_ID}:widget/{run}-2"
    bucket = f"arn:aws:s3:::bucket-{run}"

    def widget(arn: str) -> dict:
        return {"accountId": ACCOUNT_ID, "type": res_type, "ARN": arn}

    assumed_role = {
        "type": "AssumedRole",
        "principalId": f"AROAE2EEXAMPLE:{session}",
        "arn": f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/E2eRole/{session}",
        "accountId": ACCOUNT_ID,
        "accessKeyId": key_s,
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAE2EEXAMPLE",
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:role/E2eRole",
                "accountId": ACCOUNT_ID,
                "userName": "E2eRole",
            },
            "attributes": {"creationDate": "2026-01-01T00:00:00Z", "mfaAuthenticated": "false"},
        },
    }

    def at(i: int) -> dt.datetime:
        return t0 - dt.timedelta(minutes=i)

    catalog = [
        make_record(event_time=at(0), event_name=name_a, event_source=source, username=alice,
                    access_key_id=key_a, read_only=False,
                    resources=[widget(widget1), {"accountId": ACCOUNT_ID, "type": "AWS::S3::Bucket", "ARN": bucket}],
                    responseElements={"widgetId": f"{run}-1"}),
        make_record(event_time=at(1), event_name=name_b, event_source=source, username=alice,
                    access_key_id=key_a, read_only=True),
        make_record(event_time=at(2), event_name=name_a, event_source=source, username=bob,
                    access_key_id=key_b, read_only=False, resources=[widget(widget2)],
                    errorCode="AccessDenied", errorMessage="User: bob is not authorized"),
        make_record(event_time=at(3), event_name=name_b, event_source=source, read_only=True,
                    identity=assumed_role),
        make_record(event_time=at(4), event_name=name_c, event_source=source2, username=bob,
                    access_key_id=key_b, read_only=False, resources=[widget(widget1)]),
    ]
    catalog += [
        make_record(event_time=at(i), event_name=name_b, event_source=source, username=alice,
                    access_key_id=key_a, read_only=True, unknownFutureField={"kept": [1, 2.5, None, "x"]})
        for i in range(5, 10)
    ]

    west = make_record(event_time=at(0), event_name=name_a, event_source=source, region="us-west-2",
                       username=alice, access_key_id=key_a, read_only=False)

    data_user = f"data-user-{run}"
    excluded_time = t0 - dt.timedelta(hours=3)
    excluded = [
        # A data event as CloudTrail writes it today.
        make_record(event_time=excluded_time, event_name=f"E2eGetObject{run}", event_source="s3.amazonaws.com",
                    username=data_user, category="Data",
                    resources=[{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::bucket-{run}/key"}]),
        # An older data event: no eventCategory, managementEvent false.
        make_record(event_time=excluded_time, event_name=f"E2eInvoke{run}", event_source="lambda.amazonaws.com",
                    username=data_user, category=None, eventVersion="1.06", managementEvent=False),
        # A network-activity event.
        make_record(event_time=excluded_time, event_name=f"E2eVpce{run}", event_source="kms.amazonaws.com",
                    username=data_user, category="NetworkActivity", eventType="AwsVpceEvent",
                    managementEvent=False, vpcEndpointId="vpce-0e2e"),
    ]

    insight_source = f"e2einsight{run}.amazonaws.com"
    insight_time = t0 - dt.timedelta(minutes=30)
    insight_top = {
        "eventVersion": "1.08",
        "eventTime": insight_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "awsRegion": "us-east-1",
        "eventID": str(uuid.uuid4()),
        "eventType": "AwsCloudTrailInsight",
        "recipientAccountId": ACCOUNT_ID,
        "sharedEventID": str(uuid.uuid4()),
        "eventSource": insight_source,
        "eventName": f"E2eInsightTop{run}",
        "insightDetails": {
            "state": "Start",
            "eventSource": insight_source,
            "eventName": f"E2eInsightTop{run}",
            "insightType": "ApiCallRateInsight",
            "insightContext": {"statistics": {"baseline": {"average": 0.5}, "insight": {"average": 12.0}}},
        },
        "eventCategory": "Insight",
    }
    insight_twin = make_record(event_time=insight_time, event_name=f"E2eInsightTop{run}",
                               event_source=insight_source, username=alice, access_key_id=key_a)

    pager_user = f"pager-{run}"
    pager_base = t0 - dt.timedelta(hours=1)
    pager = [
        make_record(event_time=pager_base - dt.timedelta(seconds=i // 7), event_name=f"E2ePage{run}",
                    event_source=source, username=pager_user, access_key_id=key_a, read_only=True,
                    requestParameters={"page": i})
        for i in range(250)
    ]

    no_id = make_record(event_time=t0 - dt.timedelta(hours=2), event_name=f"E2eNoId{run}",
                        event_source=source, username=alice, event_id=None, account=None)

    return LookupCatalog(
        run=run,
        t0=t0,
        catalog=catalog,
        west=west,
        excluded=excluded,
        insight_top=insight_top,
        insight_twin=insight_twin,
        pager=pager,
        no_id=no_id,
        values={
            "name_a": name_a,
            "name_b": name_b,
            "name_c": name_c,
            "source": source,
            "source2": source2,
            "alice": alice,
            "bob": bob,
            "session": session,
            "key_a": key_a,
            "key_b": key_b,
            "key_s": key_s,
            "res_type": res_type,
            "widget1": widget1,
            "bucket": bucket,
            "pager_user": pager_user,
            "insight_source": insight_source,
        },
    )


def realistic_insight_pair(run: str, when: dt.datetime) -> list[dict]:
    """An Insights Start/End pair exactly as CloudTrail delivers them: no top-level
    eventSource, eventName, userIdentity or sourceIPAddress; the API sits in insightDetails."""
    shared = str(uuid.uuid4())
    pair = []
    for state, offset in (("Start", 0), ("End", 5)):
        pair.append(
            {
                "eventVersion": "1.07",
                "eventTime": (when + dt.timedelta(minutes=offset)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "awsRegion": "us-east-1",
                "eventID": str(uuid.uuid4()),
                "eventType": "AwsCloudTrailInsight",
                "recipientAccountId": ACCOUNT_ID,
                "sharedEventID": shared,
                "insightDetails": {
                    "state": state,
                    "eventSource": "ssm.amazonaws.com",
                    "eventName": f"E2eUpdateInstanceInformation{run}",
                    "insightType": "ApiCallRateInsight",
                    "insightContext": {
                        "statistics": {
                            "baseline": {"average": 85.4202380952},
                            "insight": {"average": 664},
                            **({"insightDuration": 5} if state == "End" else {}),
                        }
                    },
                },
                "eventCategory": "Insight",
            }
        )
    return pair
