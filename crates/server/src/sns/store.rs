//! [`Topics`]: SNS topics and their subscriptions per account and Region, kept in memory and
//! persisted whole in `<data_dir>/sns/topics.json` after every change.
//!
//! Every change goes through here and through the checks of [`super::rules`], so that the
//! API and Trailkeeper's own publishers (trail delivery) obey the same rules. This module
//! knows no wire protocol and no caller: who may do what is decided before it is called.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use trailkeeper_store::fsutil;

use super::delivery::{self, Delivery, MessageType, Outgoing, RETRY_DELAYS};
use super::rules::{
    DEFAULT_MAX_MESSAGE_BYTES, Protocol, SnsError, SubscriptionRef, Tag, TopicRef, check_attribute, check_endpoint,
    check_subject, check_tags, default_policy, is_topic_name, parse_protocol, same_tags,
};
use crate::api::now_ms;

/// Topics per account and Region (AWS's default quota for standard topics).
pub const MAX_TOPICS_PER_REGION: usize = 100_000;
/// Topics or subscriptions per page of a List call.
pub const PAGE_SIZE: usize = 100;
/// How long a confirmation token stays valid; unconfirmed subscriptions are dropped after it.
pub const TOKEN_LIFETIME_MS: i64 = 3 * 86_400_000;
const FILE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Subscription {
    id: String,
    /// The account that subscribed.
    owner: String,
    protocol: Protocol,
    endpoint: String,
    token: String,
    token_issued_ms: i64,
    confirmed: bool,
    confirmation_was_authenticated: bool,
    authenticate_on_unsubscribe: bool,
    /// Trailkeeper's own URL as the subscriber was told it (`SubscribeURL`), for the
    /// `UnsubscribeURL` of later notifications.
    service_url: String,
}

impl Subscription {
    fn expired(&self, now_ms: i64) -> bool {
        !self.confirmed && now_ms - self.token_issued_ms > TOKEN_LIFETIME_MS
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Topic {
    account_id: String,
    region: String,
    name: String,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    subscriptions: Vec<Subscription>,
}

impl Topic {
    fn reference(&self) -> TopicRef {
        TopicRef { region: self.region.clone(), account_id: self.account_id.clone(), name: self.name.clone() }
    }

    fn max_message_bytes(&self) -> usize {
        self.attributes
            .get("MaximumMessageSize")
            .and_then(|value| value.parse().ok())
            .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES)
    }
}

/// (account, Region, name): the map's order is `ListTopics`' order.
type TopicKey = (String, String, String);

#[derive(Debug, Clone, Default)]
struct State {
    topics: BTreeMap<TopicKey, Topic>,
}

impl State {
    fn topic(&self, topic: &TopicRef) -> Result<&Topic, SnsError> {
        self.topics.get(&topic.key()).ok_or_else(SnsError::topic_not_found)
    }

    fn topic_mut(&mut self, topic: &TopicRef) -> Result<&mut Topic, SnsError> {
        self.topics.get_mut(&topic.key()).ok_or_else(SnsError::topic_not_found)
    }

    fn drop_expired(&mut self, now_ms: i64) {
        for topic in self.topics.values_mut() {
            topic.subscriptions.retain(|subscription| !subscription.expired(now_ms));
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TopicsFile {
    version: u32,
    topics: Vec<Topic>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TopicsFileRef<'a> {
    version: u32,
    topics: Vec<&'a Topic>,
}

/// A page of a List call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// One row of `ListSubscriptions` and `ListSubscriptionsByTopic`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSummary {
    /// The subscription's ARN, or `PendingConfirmation`.
    pub subscription_arn: String,
    pub owner: String,
    pub protocol: &'static str,
    pub endpoint: String,
    pub topic_arn: String,
}

/// What `Subscribe` asks for.
#[derive(Debug, Clone)]
pub struct SubscribeRequest<'a> {
    pub topic: &'a TopicRef,
    pub owner: &'a str,
    pub protocol: &'a str,
    pub endpoint: &'a str,
    /// Trailkeeper's base URL as the caller reached it (`http://host:port`).
    pub service_url: &'a str,
}

/// What `Subscribe` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribed {
    pub subscription_arn: String,
    pub pending: bool,
}

/// A message to publish: the same text for every subscriber, or (`MessageStructure=json`)
/// a text per protocol with a default.
#[derive(Debug, Clone)]
pub struct MessageBody {
    /// The size of the `Message` as published, which the topic's `MaximumMessageSize` limits.
    pub size: usize,
    pub default: String,
    pub http: Option<String>,
    pub https: Option<String>,
}

impl MessageBody {
    pub fn text(message: &str) -> MessageBody {
        MessageBody { size: message.len(), default: message.to_owned(), http: None, https: None }
    }

    fn for_protocol(&self, protocol: Protocol) -> &str {
        let specific = match protocol {
            Protocol::Http => &self.http,
            Protocol::Https => &self.https,
        };
        specific.as_deref().unwrap_or(&self.default)
    }
}

/// The SNS topics of every account: a cheap-clone handle.
#[derive(Clone)]
pub struct Topics(Arc<Inner>);

struct Inner {
    path: PathBuf,
    /// A std mutex: every critical section is short and synchronous (the file write
    /// included), and none spans an `.await`.
    state: Mutex<State>,
    delivery: Delivery,
}

impl Topics {
    /// Loads `<data_dir>/sns/topics.json` (an absent file is no topics yet).
    pub fn open(data_dir: &Path) -> Result<Topics, SnsError> {
        let dir = data_dir.join("sns");
        std::fs::create_dir_all(&dir).map_err(|error| SnsError::Storage(format!("{}: {error}", dir.display())))?;
        let path = dir.join("topics.json");
        let mut state = State::default();
        match std::fs::read(&path) {
            Ok(bytes) => {
                let file: TopicsFile = serde_json::from_slice(&bytes)
                    .map_err(|error| SnsError::Storage(format!("{}: {error}", path.display())))?;
                if file.version != FILE_VERSION {
                    return Err(SnsError::Storage(format!(
                        "{}: version {} is not the supported version {FILE_VERSION}",
                        path.display(),
                        file.version
                    )));
                }
                for topic in file.topics {
                    state.topics.insert((topic.account_id.clone(), topic.region.clone(), topic.name.clone()), topic);
                }
                state.drop_expired(now_ms());
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(SnsError::Storage(format!("{}: {error}", path.display()))),
        }
        let delivery = Delivery::new(&RETRY_DELAYS).map_err(SnsError::Storage)?;
        Ok(Topics(Arc::new(Inner { path, state: Mutex::new(state), delivery })))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change: changes are
        // made on a copy (see `change`), so the state behind a poisoned lock is still whole.
        self.0.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies `apply` to a copy of the state, writes the copy to disk, and only then makes
    /// it the state: a change that cannot be saved is not made.
    fn change<R>(&self, apply: impl FnOnce(&mut State) -> Result<R, SnsError>) -> Result<R, SnsError> {
        let mut state = self.lock();
        let mut next = state.clone();
        next.drop_expired(now_ms());
        let result = apply(&mut next)?;
        if next.topics != state.topics {
            let file = TopicsFileRef { version: FILE_VERSION, topics: next.topics.values().collect() };
            let bytes = serde_json::to_vec_pretty(&file).map_err(|error| SnsError::Storage(error.to_string()))?;
            fsutil::write_atomic(&self.0.path, &bytes).map_err(|error| {
                tracing::error!(%error, "cannot save the SNS topics");
                SnsError::Storage(error.to_string())
            })?;
            *state = next;
        }
        Ok(result)
    }

    /// The ARN of a topic given by name or ARN, if it exists in that account and region.
    pub fn find(&self, account_id: &str, region: &str, name_or_arn: &str) -> Option<String> {
        let topic = if name_or_arn.starts_with("arn:") {
            TopicRef::parse(name_or_arn, "TopicArn").ok()?
        } else {
            TopicRef { region: region.to_owned(), account_id: account_id.to_owned(), name: name_or_arn.to_owned() }
        };
        if topic.account_id != account_id || topic.region != region {
            return None;
        }
        self.lock().topics.contains_key(&topic.key()).then(|| topic.arn())
    }

    /// Publishes as the service itself would (no caller): returns the MessageId, or an error
    /// when the topic does not exist (trail status shows it as LatestNotificationError).
    pub fn publish(&self, topic_arn: &str, subject: Option<&str>, message: &str) -> Result<String, SnsError> {
        let topic = TopicRef::parse(topic_arn, "TopicArn")?;
        self.publish_message(&topic, subject, &MessageBody::text(message))
    }

    /// Checks the message, then hands one notification per confirmed subscription to
    /// background tasks. Returns the MessageId without waiting for any delivery.
    pub fn publish_message(
        &self,
        topic: &TopicRef,
        subject: Option<&str>,
        message: &MessageBody,
    ) -> Result<String, SnsError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SnsError::NoRuntime)?;
        if let Some(subject) = subject {
            check_subject(subject)?;
        }
        if message.default.is_empty() {
            return Err(SnsError::invalid("Invalid parameter: Empty message"));
        }
        let targets: Vec<(Protocol, String, String, String)> = {
            let state = self.lock();
            let stored = state.topic(topic)?;
            if message.size > stored.max_message_bytes() {
                return Err(SnsError::invalid("Invalid parameter: Message too long"));
            }
            stored
                .subscriptions
                .iter()
                .filter(|subscription| subscription.confirmed)
                .map(|subscription| {
                    let arn = SubscriptionRef { topic: topic.clone(), id: subscription.id.clone() }.arn();
                    (subscription.protocol, subscription.endpoint.clone(), arn, subscription.service_url.clone())
                })
                .collect()
        };
        let message_id = uuid::Uuid::new_v4().to_string();
        let topic_arn = topic.arn();
        let now = now_ms();
        for (protocol, endpoint, subscription_arn, service_url) in targets {
            let unsubscribe_url =
                service_link(&service_url, &[("Action", "Unsubscribe"), ("SubscriptionArn", &subscription_arn)]);
            let body = delivery::notification_body(
                &message_id,
                &topic_arn,
                subject,
                message.for_protocol(protocol),
                &unsubscribe_url,
                now,
            );
            let outgoing = Outgoing {
                endpoint,
                message_type: MessageType::Notification,
                message_id: message_id.clone(),
                topic_arn: topic_arn.clone(),
                subscription_arn: Some(subscription_arn),
                body,
            };
            self.0.delivery.spawn(&runtime, outgoing);
        }
        Ok(message_id)
    }

    /// Creates a topic, or returns the ARN of the one that exists with that name when the
    /// attributes and tags asked for agree with it.
    pub fn create_topic(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
        attributes: &[(String, String)],
        tags: &[Tag],
    ) -> Result<String, SnsError> {
        if !is_topic_name(name) {
            return Err(SnsError::invalid("Invalid parameter: Topic Name"));
        }
        let mut stored_attributes = BTreeMap::new();
        for (attribute, value) in attributes {
            if attribute == "FifoTopic" {
                if value.eq_ignore_ascii_case("true") {
                    return Err(SnsError::invalid(
                        "Invalid parameter: Attributes Reason: FIFO topics are not supported by this endpoint",
                    ));
                }
                continue;
            }
            check_attribute(attribute, value)?;
            stored_attributes.insert(attribute.clone(), value.clone());
        }
        check_tags(tags)?;
        let topic = TopicRef { region: region.to_owned(), account_id: account_id.to_owned(), name: name.to_owned() };
        self.change(|state| {
            if let Some(existing) = state.topics.get(&topic.key()) {
                if stored_attributes.iter().any(|(attribute, value)| existing.attributes.get(attribute) != Some(value))
                {
                    return Err(SnsError::invalid(
                        "Invalid parameter: Attributes Reason: Topic already exists with different attributes",
                    ));
                }
                if !tags.is_empty() && !same_tags(&existing.tags, tags) {
                    return Err(SnsError::invalid(
                        "Invalid parameter: Tags Reason: Topic already exists with different tags",
                    ));
                }
                return Ok(topic.arn());
            }
            let in_region = state
                .topics
                .range((account_id.to_owned(), region.to_owned(), String::new())..)
                .take_while(|((account, topic_region, _), _)| account == account_id && topic_region == region)
                .count();
            if in_region >= MAX_TOPICS_PER_REGION {
                return Err(SnsError::TopicLimitExceeded);
            }
            state.topics.insert(
                topic.key(),
                Topic {
                    account_id: account_id.to_owned(),
                    region: region.to_owned(),
                    name: name.to_owned(),
                    attributes: stored_attributes,
                    tags: tags.to_vec(),
                    subscriptions: Vec::new(),
                },
            );
            Ok(topic.arn())
        })
    }

    /// Deletes a topic and its subscriptions. Deleting a topic that does not exist is not
    /// an error (SNS's DeleteTopic is idempotent).
    pub fn delete_topic(&self, topic: &TopicRef) -> Result<(), SnsError> {
        self.change(|state| {
            state.topics.remove(&topic.key());
            Ok(())
        })
    }

    /// `GetTopicAttributes`: the stored attributes plus the ones SNS computes.
    pub fn topic_attributes(&self, topic: &TopicRef) -> Result<Vec<(String, String)>, SnsError> {
        let state = self.lock();
        let stored = state.topic(topic)?;
        let confirmed = stored.subscriptions.iter().filter(|subscription| subscription.confirmed).count();
        let pending = stored.subscriptions.len() - confirmed;
        let arn = topic.arn();
        let mut attributes = vec![
            ("Policy".to_owned(), stored.attributes.get("Policy").cloned().unwrap_or_else(|| default_policy(topic))),
            ("Owner".to_owned(), topic.account_id.clone()),
            ("SubscriptionsPending".to_owned(), pending.to_string()),
            ("TopicArn".to_owned(), arn),
            ("EffectiveDeliveryPolicy".to_owned(), delivery::effective_delivery_policy()),
            ("SubscriptionsConfirmed".to_owned(), confirmed.to_string()),
            ("DisplayName".to_owned(), stored.attributes.get("DisplayName").cloned().unwrap_or_default()),
            // Unsubscribing removes a subscription at once, so none is ever waiting for deletion.
            ("SubscriptionsDeleted".to_owned(), "0".to_owned()),
        ];
        for (attribute, value) in &stored.attributes {
            if attribute != "Policy" && attribute != "DisplayName" {
                attributes.push((attribute.clone(), value.clone()));
            }
        }
        Ok(attributes)
    }

    pub fn set_topic_attribute(&self, topic: &TopicRef, attribute: &str, value: &str) -> Result<(), SnsError> {
        check_attribute(attribute, value)?;
        self.change(|state| {
            let stored = state.topic_mut(topic)?;
            // An empty value clears the attribute, as SNS does for optional attributes.
            if value.is_empty() && attribute != "DisplayName" {
                stored.attributes.remove(attribute);
            } else {
                stored.attributes.insert(attribute.to_owned(), value.to_owned());
            }
            Ok(())
        })
    }

    pub fn list_topics(
        &self,
        account_id: &str,
        region: &str,
        next_token: Option<&str>,
    ) -> Result<Page<String>, SnsError> {
        let after = next_token.map(decode_token).transpose()?;
        let state = self.lock();
        let start = (account_id.to_owned(), region.to_owned(), after.clone().unwrap_or_default());
        let mut names = state
            .topics
            .range(start..)
            .take_while(|((account, topic_region, _), _)| account == account_id && topic_region == region)
            .map(|((_, _, name), _)| name)
            .filter(|name| after.as_ref().is_none_or(|after| *name > after));
        let page: Vec<&String> = names.by_ref().take(PAGE_SIZE).collect();
        let next_token = if names.next().is_some() { page.last().map(|name| encode_token(name)) } else { None };
        let items = page
            .into_iter()
            .map(|name| {
                TopicRef { region: region.to_owned(), account_id: account_id.to_owned(), name: name.clone() }.arn()
            })
            .collect();
        Ok(Page { items, next_token })
    }

    /// Subscribes an HTTP(S) endpoint. The subscription waits for confirmation: the
    /// endpoint is sent a `SubscriptionConfirmation` whose `SubscribeURL` confirms it.
    /// Subscribing the same endpoint again returns the existing subscription (and sends a
    /// pending one its confirmation again).
    pub fn subscribe(&self, request: &SubscribeRequest<'_>) -> Result<Subscribed, SnsError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SnsError::NoRuntime)?;
        let protocol = parse_protocol(request.protocol)?;
        check_endpoint(protocol, request.endpoint)?;
        let now = now_ms();
        let (subscribed, token) = self.change(|state| {
            let topic = state.topic_mut(request.topic)?;
            if let Some(existing) = topic
                .subscriptions
                .iter()
                .find(|subscription| subscription.protocol == protocol && subscription.endpoint == request.endpoint)
            {
                let arn = SubscriptionRef { topic: request.topic.clone(), id: existing.id.clone() }.arn();
                let subscribed = Subscribed { subscription_arn: arn, pending: !existing.confirmed };
                return Ok((subscribed, (!existing.confirmed).then(|| existing.token.clone())));
            }
            let subscription = Subscription {
                id: uuid::Uuid::new_v4().to_string(),
                owner: request.owner.to_owned(),
                protocol,
                endpoint: request.endpoint.to_owned(),
                token: new_token(),
                token_issued_ms: now,
                confirmed: false,
                confirmation_was_authenticated: false,
                authenticate_on_unsubscribe: false,
                service_url: request.service_url.to_owned(),
            };
            let arn = SubscriptionRef { topic: request.topic.clone(), id: subscription.id.clone() }.arn();
            let token = subscription.token.clone();
            topic.subscriptions.push(subscription);
            Ok((Subscribed { subscription_arn: arn, pending: true }, Some(token)))
        })?;
        if let Some(token) = token {
            let topic_arn = request.topic.arn();
            let subscribe_url = service_link(
                request.service_url,
                &[("Action", "ConfirmSubscription"), ("TopicArn", &topic_arn), ("Token", &token)],
            );
            let message_id = uuid::Uuid::new_v4().to_string();
            let body = delivery::confirmation_body(&message_id, &token, &topic_arn, &subscribe_url, now);
            let outgoing = Outgoing {
                endpoint: request.endpoint.to_owned(),
                message_type: MessageType::SubscriptionConfirmation,
                message_id,
                topic_arn,
                subscription_arn: None,
                body,
            };
            self.0.delivery.spawn(&runtime, outgoing);
        }
        Ok(subscribed)
    }

    /// Confirms the subscription the token was sent to. `authenticate_on_unsubscribe` is
    /// `Some` when the caller signed the request (only then may it forbid unauthenticated
    /// unsubscribes); `None` for a visit of the `SubscribeURL`.
    pub fn confirm_subscription(
        &self,
        topic: &TopicRef,
        token: &str,
        authenticate_on_unsubscribe: Option<bool>,
    ) -> Result<String, SnsError> {
        self.change(|state| {
            let stored = state.topic_mut(topic)?;
            let subscription = stored
                .subscriptions
                .iter_mut()
                .find(|subscription| constant_time_eq(subscription.token.as_bytes(), token.as_bytes()))
                .ok_or_else(|| SnsError::invalid("Invalid token"))?;
            if !subscription.confirmed {
                subscription.confirmed = true;
                subscription.confirmation_was_authenticated = authenticate_on_unsubscribe.is_some();
                subscription.authenticate_on_unsubscribe = authenticate_on_unsubscribe.unwrap_or(false);
            }
            Ok(SubscriptionRef { topic: topic.clone(), id: subscription.id.clone() }.arn())
        })
    }

    /// The account that owns a subscription, for the caller's permission check.
    pub fn subscription_owner(&self, subscription: &SubscriptionRef) -> Option<String> {
        let state = self.lock();
        let topic = state.topic(&subscription.topic).ok()?;
        topic.subscriptions.iter().find(|stored| stored.id == subscription.id).map(|stored| stored.owner.clone())
    }

    /// Deletes a subscription. `authenticated` says whether the caller signed the request:
    /// a subscription confirmed with `AuthenticateOnUnsubscribe` refuses anyone else.
    pub fn unsubscribe(&self, subscription: &SubscriptionRef, authenticated: bool) -> Result<(), SnsError> {
        self.change(|state| {
            let topic = state.topics.get_mut(&subscription.topic.key()).ok_or_else(SnsError::subscription_not_found)?;
            let position = topic
                .subscriptions
                .iter()
                .position(|stored| stored.id == subscription.id)
                .ok_or_else(SnsError::subscription_not_found)?;
            if topic.subscriptions[position].authenticate_on_unsubscribe && !authenticated {
                return Err(SnsError::AuthorizationError(
                    "This subscription requires authentication to unsubscribe; sign the request".to_owned(),
                ));
            }
            topic.subscriptions.remove(position);
            Ok(())
        })
    }

    /// The subscriptions `owner` made in `region`, on any topic.
    pub fn list_subscriptions(
        &self,
        owner: &str,
        region: &str,
        next_token: Option<&str>,
    ) -> Result<Page<SubscriptionSummary>, SnsError> {
        let after = next_token.map(decode_token).transpose()?;
        let state = self.lock();
        let rows = state.topics.values().filter(|topic| topic.region == region).flat_map(|topic| {
            let mut subscriptions: Vec<&Subscription> =
                topic.subscriptions.iter().filter(|subscription| subscription.owner == owner).collect();
            subscriptions.sort_by(|a, b| a.id.cmp(&b.id));
            subscriptions.into_iter().map(move |subscription| {
                // A space sorts before every character of a name, so these keys sort as the
                // (account, name, id) tuples they stand for.
                (format!("{} {} {}", topic.account_id, topic.name, subscription.id), topic, subscription)
            })
        });
        Ok(page_of(rows, after.as_deref()))
    }

    pub fn list_subscriptions_by_topic(
        &self,
        topic: &TopicRef,
        next_token: Option<&str>,
    ) -> Result<Page<SubscriptionSummary>, SnsError> {
        let after = next_token.map(decode_token).transpose()?;
        let state = self.lock();
        let stored = state.topic(topic)?;
        let mut subscriptions: Vec<&Subscription> = stored.subscriptions.iter().collect();
        subscriptions.sort_by(|a, b| a.id.cmp(&b.id));
        let rows = subscriptions.into_iter().map(|subscription| (subscription.id.clone(), stored, subscription));
        Ok(page_of(rows, after.as_deref()))
    }

    /// `GetSubscriptionAttributes`.
    pub fn subscription_attributes(&self, subscription: &SubscriptionRef) -> Result<Vec<(String, String)>, SnsError> {
        let state = self.lock();
        let topic = state.topics.get(&subscription.topic.key()).ok_or_else(SnsError::subscription_not_found)?;
        let stored = topic
            .subscriptions
            .iter()
            .find(|stored| stored.id == subscription.id)
            .ok_or_else(SnsError::subscription_not_found)?;
        Ok(vec![
            ("SubscriptionArn".to_owned(), subscription.arn()),
            ("TopicArn".to_owned(), subscription.topic.arn()),
            ("Owner".to_owned(), stored.owner.clone()),
            ("Protocol".to_owned(), stored.protocol.as_str().to_owned()),
            ("Endpoint".to_owned(), stored.endpoint.clone()),
            ("PendingConfirmation".to_owned(), (!stored.confirmed).to_string()),
            ("ConfirmationWasAuthenticated".to_owned(), stored.confirmation_was_authenticated.to_string()),
            // Every delivery is the JSON document; raw delivery is not implemented.
            ("RawMessageDelivery".to_owned(), "false".to_owned()),
            ("EffectiveDeliveryPolicy".to_owned(), delivery::effective_delivery_policy()),
        ])
    }
}

/// The rows after the one keyed `after`, at most a page of them, with the token of the next.
fn page_of<'a>(
    rows: impl Iterator<Item = (String, &'a Topic, &'a Subscription)>,
    after: Option<&str>,
) -> Page<SubscriptionSummary> {
    let mut items = Vec::new();
    let mut last_key = None;
    let mut next_token = None;
    let mut rows = rows.skip_while(|(key, _, _)| after.is_some_and(|after| key.as_str() <= after));
    for (key, topic, subscription) in rows.by_ref() {
        if items.len() == PAGE_SIZE {
            next_token = last_key.as_deref().map(encode_token);
            break;
        }
        let topic_ref = topic.reference();
        items.push(SubscriptionSummary {
            subscription_arn: if subscription.confirmed {
                SubscriptionRef { topic: topic_ref.clone(), id: subscription.id.clone() }.arn()
            } else {
                "PendingConfirmation".to_owned()
            },
            owner: subscription.owner.clone(),
            protocol: subscription.protocol.as_str(),
            endpoint: subscription.endpoint.clone(),
            topic_arn: topic_ref.arn(),
        });
        last_key = Some(key);
    }
    Page { items, next_token }
}

fn encode_token(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

fn decode_token(token: &str) -> Result<String, SnsError> {
    URL_SAFE_NO_PAD
        .decode(token.as_bytes())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| SnsError::invalid("Invalid parameter: NextToken"))
}

/// A URL on Trailkeeper's own endpoint with the query `pairs`, form-encoded.
pub fn service_link(service_url: &str, pairs: &[(&str, &str)]) -> String {
    let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    format!("{}/?{query}", service_url.trim_end_matches('/'))
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
