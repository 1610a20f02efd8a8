//! Tests of [`Topics`]: the domain rules and the persistence round trip.

use super::*;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
/// Nothing listens on the discard port, so confirmations sent there fail in the background.
const ENDPOINT: &str = "http://127.0.0.1:9/hook";
const SERVICE: &str = "http://127.0.0.1:4600";

fn topic_ref(name: &str) -> TopicRef {
    TopicRef { region: REGION.to_owned(), account_id: ACCOUNT.to_owned(), name: name.to_owned() }
}

fn subscribe(topics: &Topics, topic: &TopicRef, endpoint: &str) -> Subscribed {
    topics
        .subscribe(&SubscribeRequest { topic, owner: ACCOUNT, protocol: "http", endpoint, service_url: SERVICE })
        .unwrap()
}

/// The token the store issued for a subscription (the subscriber would read it from the
/// confirmation message).
fn token_of(topics: &Topics, topic: &TopicRef, endpoint: &str) -> String {
    let state = topics.lock();
    let stored = state.topic(topic).unwrap();
    stored.subscriptions.iter().find(|s| s.endpoint == endpoint).unwrap().token.clone()
}

#[test]
fn create_is_idempotent_and_checks_what_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Topics::open(dir.path()).unwrap();
    let display = vec![("DisplayName".to_owned(), "Audit".to_owned())];
    let tags = vec![Tag { key: "team".into(), value: "sec".into() }];
    let arn = topics.create_topic(ACCOUNT, REGION, "alerts", &display, &tags).unwrap();
    assert_eq!(arn, "arn:aws:sns:us-east-1:123456789012:alerts");
    assert_eq!(topics.create_topic(ACCOUNT, REGION, "alerts", &[], &[]).unwrap(), arn);
    assert_eq!(topics.create_topic(ACCOUNT, REGION, "alerts", &display, &tags).unwrap(), arn);
    let other = vec![("DisplayName".to_owned(), "Other".to_owned())];
    assert!(
        topics
            .create_topic(ACCOUNT, REGION, "alerts", &other, &[])
            .unwrap_err()
            .to_string()
            .contains("different attributes")
    );
    let other_tags = vec![Tag { key: "team".into(), value: "ops".into() }];
    assert!(
        topics
            .create_topic(ACCOUNT, REGION, "alerts", &[], &other_tags)
            .unwrap_err()
            .to_string()
            .contains("different tags")
    );
    assert_eq!(
        topics.create_topic(ACCOUNT, REGION, "bad name", &[], &[]).unwrap_err(),
        SnsError::invalid("Invalid parameter: Topic Name")
    );
    let unknown = vec![("Colour".to_owned(), "blue".to_owned())];
    assert_eq!(
        topics.create_topic(ACCOUNT, REGION, "t2", &unknown, &[]).unwrap_err(),
        SnsError::invalid("Invalid parameter: AttributeName")
    );
    let duplicated = vec![Tag { key: "a".into(), value: "1".into() }, Tag { key: "a".into(), value: "2".into() }];
    assert!(topics.create_topic(ACCOUNT, REGION, "t3", &[], &duplicated).is_err());
    let many: Vec<Tag> = (0..51).map(|i| Tag { key: format!("k{i}"), value: String::new() }).collect();
    assert_eq!(topics.create_topic(ACCOUNT, REGION, "t4", &[], &many).unwrap_err(), SnsError::TagLimitExceeded);
    // The same name in another Region or account is another topic.
    assert_eq!(
        topics.create_topic(ACCOUNT, "eu-west-1", "alerts", &[], &[]).unwrap(),
        "arn:aws:sns:eu-west-1:123456789012:alerts"
    );
    assert_eq!(topics.find(ACCOUNT, REGION, "alerts").as_deref(), Some(arn.as_str()));
    assert_eq!(topics.find(ACCOUNT, REGION, &arn).as_deref(), Some(arn.as_str()));
    assert_eq!(topics.find(ACCOUNT, "us-west-2", "alerts"), None);
    assert_eq!(topics.find("210987654321", REGION, &arn), None);
    assert_eq!(topics.find(ACCOUNT, REGION, "t2"), None, "a failed create leaves nothing behind");
}

#[test]
fn attributes_are_computed_and_set() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Topics::open(dir.path()).unwrap();
    topics.create_topic(ACCOUNT, REGION, "alerts", &[], &[]).unwrap();
    let topic = topic_ref("alerts");
    topics.set_topic_attribute(&topic, "DisplayName", "Trail notices").unwrap();
    assert_eq!(
        topics.set_topic_attribute(&topic, "TopicArn", "x").unwrap_err(),
        SnsError::invalid("Invalid parameter: AttributeName")
    );
    assert!(topics.set_topic_attribute(&topic, "Policy", "not json").is_err());
    assert!(topics.set_topic_attribute(&topic, "MaximumMessageSize", "10").is_err());
    topics.set_topic_attribute(&topic, "MaximumMessageSize", "2048").unwrap();
    let attributes: BTreeMap<String, String> = topics.topic_attributes(&topic).unwrap().into_iter().collect();
    assert_eq!(attributes["DisplayName"], "Trail notices");
    assert_eq!(attributes["TopicArn"], topic.arn());
    assert_eq!(attributes["Owner"], ACCOUNT);
    assert_eq!(attributes["SubscriptionsConfirmed"], "0");
    assert_eq!(attributes["MaximumMessageSize"], "2048");
    let policy: serde_json::Value = serde_json::from_str(&attributes["Policy"]).unwrap();
    assert_eq!(policy["Statement"][0]["Resource"], topic.arn().as_str());
    assert_eq!(topics.topic_attributes(&topic_ref("missing")).unwrap_err(), SnsError::NotFound("Topic does not exist"));
    assert_eq!(
        topics.set_topic_attribute(&topic_ref("missing"), "DisplayName", "x").unwrap_err(),
        SnsError::NotFound("Topic does not exist")
    );
}

#[test]
fn topics_are_listed_in_pages_of_a_hundred() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Topics::open(dir.path()).unwrap();
    for i in 0..205 {
        topics.create_topic(ACCOUNT, REGION, &format!("topic-{i:03}"), &[], &[]).unwrap();
    }
    topics.create_topic("210987654321", REGION, "elsewhere", &[], &[]).unwrap();
    topics.create_topic(ACCOUNT, "us-west-2", "elsewhere", &[], &[]).unwrap();
    let mut all = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = topics.list_topics(ACCOUNT, REGION, token.as_deref()).unwrap();
        pages += 1;
        all.extend(page.items);
        match page.next_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(all.len(), 205);
    assert_eq!(all[0], "arn:aws:sns:us-east-1:123456789012:topic-000");
    assert_eq!(all[204], "arn:aws:sns:us-east-1:123456789012:topic-204");
    assert_eq!(
        topics.list_topics(ACCOUNT, REGION, Some("!!not a token!!")).unwrap_err(),
        SnsError::invalid("Invalid parameter: NextToken")
    );
}

#[tokio::test]
async fn subscriptions_wait_for_their_token() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Topics::open(dir.path()).unwrap();
    topics.create_topic(ACCOUNT, REGION, "alerts", &[], &[]).unwrap();
    let topic = topic_ref("alerts");
    let subscribed = subscribe(&topics, &topic, ENDPOINT);
    assert!(subscribed.pending);
    assert_eq!(subscribe(&topics, &topic, ENDPOINT), subscribed, "subscribing again returns the same subscription");
    let listed = topics.list_subscriptions_by_topic(&topic, None).unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].subscription_arn, "PendingConfirmation");
    assert_eq!(topics.confirm_subscription(&topic, "wrong", None).unwrap_err(), SnsError::invalid("Invalid token"));
    let token = token_of(&topics, &topic, ENDPOINT);
    let arn = topics.confirm_subscription(&topic, &token, None).unwrap();
    assert_eq!(arn, subscribed.subscription_arn);
    assert_eq!(topics.confirm_subscription(&topic, &token, None).unwrap(), arn, "confirming twice is harmless");
    let listed = topics.list_subscriptions(ACCOUNT, REGION, None).unwrap();
    assert_eq!(listed.items[0].subscription_arn, arn);
    assert_eq!(listed.items[0].protocol, "http");
    let attributes: BTreeMap<String, String> =
        topics.subscription_attributes(&SubscriptionRef::parse(&arn).unwrap()).unwrap().into_iter().collect();
    assert_eq!(attributes["PendingConfirmation"], "false");
    assert_eq!(attributes["ConfirmationWasAuthenticated"], "false");
}

#[tokio::test]
async fn subscribe_checks_protocol_and_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Topics::open(dir.path()).unwrap();
    topics.create_topic(ACCOUNT, REGION, "alerts", &[], &[]).unwrap();
    let topic = topic_ref("alerts");
    let attempt = |protocol: &str, endpoint: &str| {
        topics.subscribe(&SubscribeRequest { topic: &topic, owner: ACCOUNT, protocol, endpoint, service_url: SERVICE })
    };
    assert_eq!(
        attempt("carrier-pigeon", "x").unwrap_err(),
        SnsError::invalid("Invalid parameter: Amazon SNS does not support this protocol string: carrier-pigeon")
    );
    assert!(attempt("email", "a@example.com").unwrap_err().to_string().contains("not supported by this endpoint"));
    assert_eq!(
        attempt("https", "http://example.com/").unwrap_err(),
        SnsError::invalid("Invalid parameter: Endpoint must match the specified protocol")
    );
    assert!(attempt("http", "http://").is_err());
    let missing = TopicRef { name: "missing".into(), ..topic.clone() };
    let error = topics
        .subscribe(&SubscribeRequest {
            topic: &missing,
            owner: ACCOUNT,
            protocol: "http",
            endpoint: ENDPOINT,
            service_url: SERVICE,
        })
        .unwrap_err();
    assert_eq!(error, SnsError::NotFound("Topic does not exist"));
}

#[tokio::test]
async fn unsubscribe_honours_authenticate_on_unsubscribe() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Topics::open(dir.path()).unwrap();
    topics.create_topic(ACCOUNT, REGION, "alerts", &[], &[]).unwrap();
    let topic = topic_ref("alerts");
    subscribe(&topics, &topic, ENDPOINT);
    let token = token_of(&topics, &topic, ENDPOINT);
    let arn = topics.confirm_subscription(&topic, &token, Some(true)).unwrap();
    let subscription = SubscriptionRef::parse(&arn).unwrap();
    assert!(matches!(topics.unsubscribe(&subscription, false), Err(SnsError::AuthorizationError(_))));
    topics.unsubscribe(&subscription, true).unwrap();
    assert_eq!(topics.unsubscribe(&subscription, true).unwrap_err(), SnsError::NotFound("Subscription does not exist"));
}

#[tokio::test]
async fn publish_checks_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Topics::open(dir.path()).unwrap();
    let arn = topics.create_topic(ACCOUNT, REGION, "alerts", &[], &[]).unwrap();
    let message_id = topics.publish(&arn, Some("Log delivered"), r#"{"s3Bucket":"b","s3ObjectKey":["k"]}"#).unwrap();
    assert_eq!(message_id.len(), 36, "a UUID");
    assert_eq!(
        topics.publish("arn:aws:sns:us-east-1:123456789012:missing", None, "x").unwrap_err(),
        SnsError::NotFound("Topic does not exist")
    );
    assert_eq!(topics.publish(&arn, None, "").unwrap_err(), SnsError::invalid("Invalid parameter: Empty message"));
    assert_eq!(
        topics.publish(&arn, None, &"x".repeat(DEFAULT_MAX_MESSAGE_BYTES + 1)).unwrap_err(),
        SnsError::invalid("Invalid parameter: Message too long")
    );
    topics.publish(&arn, None, &"x".repeat(DEFAULT_MAX_MESSAGE_BYTES)).unwrap();
    assert_eq!(
        topics.publish(&arn, Some("two\nlines"), "x").unwrap_err(),
        SnsError::invalid("Invalid parameter: Subject")
    );
    assert!(topics.publish(&arn, Some(&"s".repeat(100)), "x").is_err());
}

#[test]
fn publish_needs_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Topics::open(dir.path()).unwrap();
    let arn = topics.create_topic(ACCOUNT, REGION, "alerts", &[], &[]).unwrap();
    assert_eq!(topics.publish(&arn, None, "x").unwrap_err(), SnsError::NoRuntime);
}

#[tokio::test]
async fn topics_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let topic = topic_ref("alerts");
    let (confirmed_arn, pending) = {
        let topics = Topics::open(dir.path()).unwrap();
        let tags = vec![Tag { key: "team".into(), value: "sec".into() }];
        topics.create_topic(ACCOUNT, REGION, "alerts", &[("DisplayName".into(), "Audit".into())], &tags).unwrap();
        topics.create_topic(ACCOUNT, REGION, "doomed", &[], &[]).unwrap();
        topics.delete_topic(&topic_ref("doomed")).unwrap();
        topics.delete_topic(&topic_ref("doomed")).unwrap();
        subscribe(&topics, &topic, ENDPOINT);
        let token = token_of(&topics, &topic, ENDPOINT);
        let confirmed_arn = topics.confirm_subscription(&topic, &token, Some(false)).unwrap();
        let pending = subscribe(&topics, &topic, "http://127.0.0.1:9/other");
        (confirmed_arn, pending)
    };
    let reopened = Topics::open(dir.path()).unwrap();
    assert_eq!(reopened.list_topics(ACCOUNT, REGION, None).unwrap().items, vec![topic.arn()]);
    let attributes: BTreeMap<String, String> = reopened.topic_attributes(&topic).unwrap().into_iter().collect();
    assert_eq!(attributes["DisplayName"], "Audit");
    assert_eq!(attributes["SubscriptionsConfirmed"], "1");
    assert_eq!(attributes["SubscriptionsPending"], "1");
    let rows = reopened.list_subscriptions_by_topic(&topic, None).unwrap().items;
    assert!(rows.iter().any(|row| row.subscription_arn == confirmed_arn));
    // The pending subscription's token still confirms it after the restart.
    let token = token_of(&reopened, &topic, "http://127.0.0.1:9/other");
    assert_eq!(reopened.confirm_subscription(&topic, &token, None).unwrap(), pending.subscription_arn);
    let state = reopened.lock();
    assert_eq!(state.topic(&topic).unwrap().tags, vec![Tag { key: "team".into(), value: "sec".into() }]);
}

#[test]
fn expired_pending_subscriptions_are_dropped_at_open() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sns")).unwrap();
    let stale = serde_json::json!({
        "version": 1,
        "topics": [{
            "accountId": ACCOUNT, "region": REGION, "name": "alerts",
            "subscriptions": [{
                "id": "s-1", "owner": ACCOUNT, "protocol": "http", "endpoint": ENDPOINT,
                "token": "t", "tokenIssuedMs": 0, "confirmed": false,
                "confirmationWasAuthenticated": false, "authenticateOnUnsubscribe": false,
                "serviceUrl": SERVICE
            }]
        }]
    });
    std::fs::write(dir.path().join("sns/topics.json"), stale.to_string()).unwrap();
    let topics = Topics::open(dir.path()).unwrap();
    assert!(topics.list_subscriptions_by_topic(&topic_ref("alerts"), None).unwrap().items.is_empty());
}

#[test]
fn a_damaged_file_fails_the_open() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sns")).unwrap();
    std::fs::write(dir.path().join("sns/topics.json"), b"{\"version\":1,\"topics\":[{").unwrap();
    assert!(matches!(Topics::open(dir.path()), Err(SnsError::Storage(_))));
    std::fs::write(dir.path().join("sns/topics.json"), b"{\"version\":9,\"topics\":[]}").unwrap();
    assert!(matches!(Topics::open(dir.path()), Err(SnsError::Storage(_))));
}

#[test]
fn links_are_form_encoded() {
    assert_eq!(
        service_link(
            "http://127.0.0.1:4600/",
            &[("Action", "Unsubscribe"), ("SubscriptionArn", "arn:aws:sns:r:1:t:id")]
        ),
        "http://127.0.0.1:4600/?Action=Unsubscribe&SubscriptionArn=arn%3Aaws%3Asns%3Ar%3A1%3At%3Aid"
    );
}
