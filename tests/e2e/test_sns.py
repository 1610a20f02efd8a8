"""SNS topics on Trailkeeper's endpoint, driven by boto3 and the AWS CLI: topic management,
paging, SNS's errors, a real HTTP subscriber that confirms its subscription and receives
notifications, persistence across a restart, and the calls in Event History."""

from __future__ import annotations

import http.server
import json
import queue
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import botocore
import pytest
from botocore.exceptions import ClientError

from e2e_helpers import (
    ACCOUNT_ID,
    BOB,
    IMPORTER,
    READER,
    ROOT,
    WRITER,
    Creds,
    by_attr,
    eventually,
    lookup_all,
    run_id,
)

REGION = "us-east-1"


def sns_client(server, creds: Creds = ROOT, region: str = REGION, **config: Any):
    """A boto3 SNS client for the server, without retries so every error shows as sent."""
    return server.client(region=region, creds=creds, service="sns", **config)


def client_error(call) -> ClientError:
    with pytest.raises(ClientError) as info:
        call()
    return info.value


def error_of(err: ClientError) -> tuple[str, str, int]:
    return (
        err.response["Error"]["Code"],
        err.response["Error"]["Message"],
        err.response["ResponseMetadata"]["HTTPStatusCode"],
    )


class Subscriber:
    """An HTTP endpoint on 127.0.0.1 that records every POST SNS sends it."""

    def __init__(self) -> None:
        self.received: queue.Queue[tuple[dict[str, str], dict]] = queue.Queue()
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                received.put((headers, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/sns"

    def next(self, timeout: float = 15.0) -> tuple[dict[str, str], dict]:
        try:
            return self.received.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no message reached {self.url} within {timeout} s") from None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def subscriber():
    endpoint = Subscriber()
    yield endpoint
    endpoint.close()


def visit(url: str) -> tuple[int, str]:
    """GETs a link the way a subscriber's code would: no signature."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def subscribe_and_confirm(sns, topic_arn: str, subscriber: Subscriber) -> str:
    """Subscribes the endpoint and confirms through the SubscribeURL it receives."""
    assert sns.subscribe(TopicArn=topic_arn, Protocol="http", Endpoint=subscriber.url)["SubscriptionArn"] == (
        "pending confirmation"
    )
    headers, body = subscriber.next()
    assert body["Type"] == "SubscriptionConfirmation"
    status, text = visit(body["SubscribeURL"])
    assert status == 200, text
    arn = text.split("<SubscriptionArn>")[1].split("</SubscriptionArn>")[0]
    assert arn.startswith(topic_arn + ":")
    return arn


# --- topics ------------------------------------------------------------------------------


def test_topics_are_managed_with_the_cli(module_server):
    name = f"cli-{run_id()}"
    created = module_server.aws("sns", "create-topic", "--name", name, creds=ROOT).json()
    arn = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{name}"
    assert created == {"TopicArn": arn}
    listed = module_server.aws("sns", "list-topics", creds=ROOT).json()
    assert {"TopicArn": arn} in listed["Topics"]

    result = module_server.aws(
        "sns", "set-topic-attributes", "--topic-arn", arn, "--attribute-name", "DisplayName",
        "--attribute-value", "Trail notices", creds=ROOT,
    )
    assert result.returncode == 0, result.stderr
    attributes = module_server.aws("sns", "get-topic-attributes", "--topic-arn", arn, creds=ROOT).json()["Attributes"]
    assert attributes["TopicArn"] == arn
    assert attributes["Owner"] == ACCOUNT_ID
    assert attributes["DisplayName"] == "Trail notices"
    assert attributes["SubscriptionsConfirmed"] == "0"
    assert attributes["SubscriptionsPending"] == "0"
    assert attributes["SubscriptionsDeleted"] == "0"
    assert json.loads(attributes["Policy"])["Statement"][0]["Resource"] == arn
    assert "EffectiveDeliveryPolicy" in attributes

    assert module_server.aws("sns", "delete-topic", "--topic-arn", arn, creds=ROOT).returncode == 0
    listed = module_server.aws("sns", "list-topics", creds=ROOT).json()
    assert {"TopicArn": arn} not in listed["Topics"]
    missing = module_server.aws("sns", "get-topic-attributes", "--topic-arn", arn, creds=ROOT)
    assert missing.error_code() == "NotFound"
    assert "Topic does not exist" in missing.stderr


def test_create_topic_is_idempotent_and_keeps_attributes_and_tags(module_server):
    sns = sns_client(module_server)
    name = f"idem-{run_id()}"
    first = sns.create_topic(
        Name=name, Attributes={"DisplayName": "Audit"}, Tags=[{"Key": "team", "Value": "security"}]
    )["TopicArn"]
    assert sns.create_topic(Name=name)["TopicArn"] == first
    assert sns.create_topic(Name=name, Attributes={"DisplayName": "Audit"})["TopicArn"] == first
    code, message, status = error_of(
        client_error(lambda: sns.create_topic(Name=name, Attributes={"DisplayName": "Other"}))
    )
    assert (code, status) == ("InvalidParameter", 400)
    assert message == "Invalid parameter: Attributes Reason: Topic already exists with different attributes"
    assert sns.get_topic_attributes(TopicArn=first)["Attributes"]["DisplayName"] == "Audit"
    # DeleteTopic is idempotent, as in AWS.
    sns.delete_topic(TopicArn=first)
    sns.delete_topic(TopicArn=first)


def test_list_topics_pages_by_a_hundred(module_server):
    # A Region of its own, so that other tests' topics do not change the count.
    sns = sns_client(module_server, region="eu-west-3")
    prefix = f"page-{run_id()}"
    arns = sorted(sns.create_topic(Name=f"{prefix}-{i:03d}")["TopicArn"] for i in range(205))
    first = sns.list_topics()
    assert len(first["Topics"]) == 100
    assert "NextToken" in first
    listed = [topic["TopicArn"] for page in sns.get_paginator("list_topics").paginate() for topic in page["Topics"]]
    assert listed == arns
    from_cli = module_server.aws("sns", "list-topics", region="eu-west-3", creds=ROOT).json()
    assert [topic["TopicArn"] for topic in from_cli["Topics"]] == arns
    code, message, _ = error_of(client_error(lambda: sns.list_topics(NextToken="!!")))
    assert (code, message) == ("InvalidParameter", "Invalid parameter: NextToken")


# --- errors ------------------------------------------------------------------------------


def test_errors_have_sns_codes_messages_and_statuses(module_server):
    sns = sns_client(module_server)
    missing = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:missing-{run_id()}"
    assert error_of(client_error(lambda: sns.get_topic_attributes(TopicArn=missing))) == (
        "NotFound", "Topic does not exist", 404,
    )
    assert error_of(client_error(lambda: sns.publish(TopicArn=missing, Message="x"))) == (
        "NotFound", "Topic does not exist", 404,
    )
    assert error_of(client_error(lambda: sns.create_topic(Name="not a name"))) == (
        "InvalidParameter", "Invalid parameter: Topic Name", 400,
    )
    assert error_of(client_error(lambda: sns.get_topic_attributes(TopicArn="fake_topic"))) == (
        "InvalidParameter", "Invalid parameter: TopicArn Reason: fake_topic does not start with arn", 400,
    )
    assert error_of(client_error(lambda: sns.unsubscribe(SubscriptionArn=missing + ":0000"))) == (
        "NotFound", "Subscription does not exist", 404,
    )
    arn = sns.create_topic(Name=f"errors-{run_id()}")["TopicArn"]
    code, message, status = error_of(
        client_error(lambda: sns.subscribe(TopicArn=arn, Protocol="carrier-pigeon", Endpoint="x"))
    )
    assert (code, status) == ("InvalidParameter", 400)
    assert message == "Invalid parameter: Amazon SNS does not support this protocol string: carrier-pigeon"
    code, _, _ = error_of(client_error(lambda: sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="a@b.c")))
    assert code == "InvalidParameter"
    assert error_of(
        client_error(lambda: sns.subscribe(TopicArn=arn, Protocol="https", Endpoint="http://127.0.0.1/"))
    ) == ("InvalidParameter", "Invalid parameter: Endpoint must match the specified protocol", 400)
    assert error_of(client_error(lambda: sns.publish(TopicArn=arn, Message="x" * 262_145))) == (
        "InvalidParameter", "Invalid parameter: Message too long", 400,
    )
    assert error_of(client_error(lambda: sns.set_topic_attributes(
        TopicArn=arn, AttributeName="Colour", AttributeValue="blue"
    ))) == ("InvalidParameter", "Invalid parameter: AttributeName", 400)
    # A topic ARN of another Region than the request was signed for.
    other_region = arn.replace(f":{REGION}:", ":eu-west-1:")
    code, _, _ = error_of(client_error(lambda: sns.get_topic_attributes(TopicArn=other_region)))
    assert code == "InvalidParameter"


def test_roles_and_accounts_are_enforced(module_server):
    arn = sns_client(module_server).create_topic(Name=f"guarded-{run_id()}")["TopicArn"]
    reader = sns_client(module_server, creds=READER)
    assert {"TopicArn": arn} in reader.list_topics()["Topics"]
    assert reader.get_topic_attributes(TopicArn=arn)["Attributes"]["TopicArn"] == arn
    code, message, status = error_of(client_error(lambda: reader.create_topic(Name="nope")))
    assert (code, status) == ("AuthorizationError", 403)
    assert message.startswith(f"User: {READER.arn} is not authorized to perform: SNS:CreateTopic")
    code, _, _ = error_of(client_error(lambda: reader.publish(TopicArn=arn, Message="x")))
    assert code == "AuthorizationError"
    code, _, _ = error_of(client_error(lambda: sns_client(module_server, creds=WRITER).list_topics()))
    assert code == "AuthorizationError"
    # Bob is an admin of another account: this account's topic is not his.
    bob = sns_client(module_server, creds=BOB)
    code, _, _ = error_of(client_error(lambda: bob.get_topic_attributes(TopicArn=arn)))
    assert code == "AuthorizationError"
    assert {"TopicArn": arn} not in bob.list_topics()["Topics"]
    # The importer reaches every account.
    assert sns_client(module_server, creds=IMPORTER).get_topic_attributes(TopicArn=arn)["Attributes"]["Owner"] == (
        ACCOUNT_ID
    )
    unsigned = sns_client(module_server, signature_version=botocore.UNSIGNED)
    code, _, status = error_of(client_error(lambda: unsigned.list_topics()))
    assert (code, status) == ("MissingAuthenticationToken", 403)
    wrong = Creds("root", ROOT.access_key_id, "not-the-secret", ACCOUNT_ID, "root")
    code, _, status = error_of(client_error(lambda: sns_client(module_server, creds=wrong).list_topics()))
    assert (code, status) == ("SignatureDoesNotMatch", 403)


# --- subscribers -------------------------------------------------------------------------


def test_http_subscriber_confirms_and_receives_notifications(module_server, subscriber):
    sns = sns_client(module_server)
    arn = sns.create_topic(Name=f"deliver-{run_id()}")["TopicArn"]
    assert sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=subscriber.url)["SubscriptionArn"] == (
        "pending confirmation"
    )
    headers, body = subscriber.next()
    assert headers["x-amz-sns-message-type"] == "SubscriptionConfirmation"
    assert headers["x-amz-sns-topic-arn"] == arn
    assert headers["x-amz-sns-message-id"] == body["MessageId"]
    assert headers["content-type"].startswith("text/plain")
    assert body["Type"] == "SubscriptionConfirmation"
    assert body["TopicArn"] == arn
    assert body["Message"] == (
        f"You have chosen to subscribe to the topic {arn}.\n"
        "To confirm the subscription, visit the SubscribeURL included in this message."
    )
    assert body["SubscribeURL"].startswith(module_server.endpoint + "/?Action=ConfirmSubscription")
    assert body["Token"] and body["Timestamp"].endswith("Z")
    assert "Signature" not in body, "messages are not signed, and say nothing pretending they are"

    pending = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert pending == [{
        "SubscriptionArn": "PendingConfirmation", "Owner": ACCOUNT_ID, "Protocol": "http",
        "Endpoint": subscriber.url, "TopicArn": arn,
    }]
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SubscriptionsPending"] == "1"

    status, text = visit(body["SubscribeURL"])
    assert status == 200, text
    assert "<ConfirmSubscriptionResponse" in text
    subscription_arn = text.split("<SubscriptionArn>")[1].split("</SubscriptionArn>")[0]
    assert subscription_arn.startswith(arn + ":")
    listed = sns.list_subscriptions()["Subscriptions"]
    assert any(row["SubscriptionArn"] == subscription_arn and row["TopicArn"] == arn for row in listed)
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscription_arn)["Attributes"]
    assert attributes["PendingConfirmation"] == "false"
    assert attributes["Endpoint"] == subscriber.url

    message = json.dumps({"s3Bucket": "audit-logs", "s3ObjectKey": ["AWSLogs/123/CloudTrail/x.json.gz"]})
    message_id = sns.publish(TopicArn=arn, Message=message, Subject="New log file")["MessageId"]
    headers, body = subscriber.next()
    assert headers["x-amz-sns-message-type"] == "Notification"
    assert headers["x-amz-sns-subscription-arn"] == subscription_arn
    assert body["Type"] == "Notification"
    assert body["MessageId"] == message_id
    assert body["TopicArn"] == arn
    assert body["Message"] == message
    assert body["Subject"] == "New log file"
    assert body["UnsubscribeURL"].startswith(module_server.endpoint + "/?Action=Unsubscribe")

    text_message = "ünïcödé <&> \"quoted\"\nsecond line"
    sns.publish(TopicArn=arn, Message=text_message)
    _, body = subscriber.next()
    assert body["Message"] == text_message
    assert "Subject" not in body

    sns.publish(
        TopicArn=arn, MessageStructure="json", Message=json.dumps({"default": "for all", "http": "for http"})
    )
    _, body = subscriber.next()
    assert body["Message"] == "for http"


def test_unsubscribe_stops_deliveries(module_server, subscriber):
    sns = sns_client(module_server)
    arn = sns.create_topic(Name=f"stop-{run_id()}")["TopicArn"]
    leaving = subscribe_and_confirm(sns, arn, subscriber)
    staying = Subscriber()
    try:
        subscribe_and_confirm(sns, arn, staying)
        sns.unsubscribe(SubscriptionArn=leaving)
        sns.publish(TopicArn=arn, Message="after unsubscribe")
        # The remaining subscriber gets it; by then the other one would have too.
        assert staying.next()[1]["Message"] == "after unsubscribe"
        time.sleep(0.5)
        assert subscriber.received.empty(), "an unsubscribed endpoint still received a message"
        assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SubscriptionsConfirmed"] == "1"
    finally:
        staying.close()


def test_unsubscribe_url_and_authenticated_confirmation(module_server, subscriber):
    sns = sns_client(module_server)
    arn = sns.create_topic(Name=f"links-{run_id()}")["TopicArn"]
    subscription_arn = subscribe_and_confirm(sns, arn, subscriber)
    sns.publish(TopicArn=arn, Message="one")
    _, body = subscriber.next()
    status, text = visit(body["UnsubscribeURL"])
    assert status == 200, text
    assert "<UnsubscribeResponse" in text
    assert sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"] == []
    code, _, _ = error_of(client_error(lambda: sns.get_subscription_attributes(SubscriptionArn=subscription_arn)))
    assert code == "NotFound"

    # Confirmed with a signed call and AuthenticateOnUnsubscribe, the link no longer works.
    sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=subscriber.url)
    _, confirmation = subscriber.next()
    assert error_of(client_error(lambda: sns.confirm_subscription(TopicArn=arn, Token="not-the-token"))) == (
        "InvalidParameter", "Invalid token", 400,
    )
    confirmed = sns.confirm_subscription(TopicArn=arn, Token=confirmation["Token"], AuthenticateOnUnsubscribe="true")
    sns.publish(TopicArn=arn, Message="two")
    _, body = subscriber.next()
    status, text = visit(body["UnsubscribeURL"])
    assert status == 403, text
    assert "<Code>AuthorizationError</Code>" in text
    sns.unsubscribe(SubscriptionArn=confirmed["SubscriptionArn"])
    assert sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"] == []


def test_cli_subscribes_and_publishes(module_server, subscriber):
    name = f"cli-pub-{run_id()}"
    arn = module_server.aws("sns", "create-topic", "--name", name, creds=ROOT).json()["TopicArn"]
    subscribed = module_server.aws(
        "sns", "subscribe", "--topic-arn", arn, "--protocol", "http", "--notification-endpoint", subscriber.url,
        "--return-subscription-arn", creds=ROOT,
    ).json()
    assert subscribed["SubscriptionArn"].startswith(arn + ":")
    _, confirmation = subscriber.next()
    confirmed = module_server.aws(
        "sns", "confirm-subscription", "--topic-arn", arn, "--token", confirmation["Token"], creds=ROOT
    ).json()
    assert confirmed["SubscriptionArn"] == subscribed["SubscriptionArn"]
    published = module_server.aws(
        "sns", "publish", "--topic-arn", arn, "--message", "from the cli", "--subject", "CLI", creds=ROOT
    ).json()
    _, body = subscriber.next()
    assert (body["MessageId"], body["Message"], body["Subject"]) == (published["MessageId"], "from the cli", "CLI")


# --- persistence and self-audit --------------------------------------------------------------


def test_topics_and_subscriptions_survive_a_restart(server_factory, subscriber):
    server = server_factory()
    sns = sns_client(server)
    arn = sns.create_topic(Name="durable", Attributes={"DisplayName": "Kept"})["TopicArn"]
    subscription_arn = subscribe_and_confirm(sns, arn, subscriber)
    server.restart()
    sns = sns_client(server)
    assert sns.list_topics()["Topics"] == [{"TopicArn": arn}]
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "Kept"
    rows = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert [row["SubscriptionArn"] for row in rows] == [subscription_arn]
    sns.publish(TopicArn=arn, Message="after restart")
    assert subscriber.next()[1]["Message"] == "after restart"
    assert (server.data_dir / "sns" / "topics.json").is_file()


def test_calls_are_in_event_history(module_server):
    sns = sns_client(module_server)
    name = f"audited-{run_id()}"
    arn = sns.create_topic(Name=name)["TopicArn"]
    sns.get_topic_attributes(TopicArn=arn)
    client_error(lambda: sns.create_topic(Name="bad name!"))
    sns.publish(TopicArn=arn, Message="not in event history")
    cloudtrail = module_server.client(creds=ROOT)

    def sns_events() -> list[dict]:
        events = [json.loads(event["CloudTrailEvent"]) for event in lookup_all(
            cloudtrail, LookupAttributes=by_attr("EventSource", "sns.amazonaws.com")
        )]
        return events if any(e["eventName"] == "GetTopicAttributes" and e["requestParameters"] == {"topicArn": arn}
                             for e in events) else []

    events = eventually(sns_events, what="SNS calls in Event History")
    created = [e for e in events if e["eventName"] == "CreateTopic" and e["requestParameters"] == {"name": name}]
    assert len(created) == 1
    record = created[0]
    assert record["eventSource"] == "sns.amazonaws.com"
    assert record["responseElements"] == {"topicArn": arn}
    assert record["readOnly"] is False
    assert record["managementEvent"] is True
    assert record["userIdentity"]["arn"] == ROOT.arn
    read = [e for e in events if e["eventName"] == "GetTopicAttributes" and e["requestParameters"] == {"topicArn": arn}]
    assert read[0]["readOnly"] is True and read[0]["responseElements"] is None
    failed = [e for e in events if e["requestParameters"] == {"name": "bad name!"}]
    assert failed[0]["errorCode"] == "InvalidParameter"
    assert failed[0]["errorMessage"] == "Invalid parameter: Topic Name"
    # Publish is a data event in CloudTrail: it reaches trails, not Event History.
    assert not any(e["eventName"] == "Publish" for e in events)
