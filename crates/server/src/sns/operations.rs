//! One function per SNS operation: read its parameters from the form as the botocore model
//! names them, check that the caller may touch the topic, apply it to [`Topics`], and write
//! the `<ActionResult>` body and the `responseElements` of its audit record.
//!
//! Changes that write `topics.json` run on the blocking pool, never on an async worker.

use serde_json::{Value, json};

use super::Operation;
use super::query::{Form, api_error, map, writer};
use super::rules::{SnsError, SubscriptionRef, Tag, TopicRef};
use super::store::{MessageBody, Page, SubscribeRequest, SubscriptionSummary, Topics};
use crate::api::{ApiError, Caller};
use crate::state::AppState;

/// What an operation answers: the inside of `<ActionResult>` (None for operations without
/// output) and the `responseElements` of its audit record.
#[derive(Debug)]
pub struct Output {
    pub result: Option<String>,
    pub response_elements: Value,
}

impl Output {
    fn empty() -> Output {
        Output { result: None, response_elements: Value::Null }
    }
}

/// Runs one authenticated operation. `service_url` is Trailkeeper's base URL as the caller
/// reached it, for the `SubscribeURL` of new subscriptions.
pub async fn execute(
    state: &AppState,
    caller: &Caller,
    operation: Operation,
    form: &Form,
    service_url: &str,
) -> Result<Output, ApiError> {
    let topics = &state.topics;
    let result = match operation {
        Operation::CreateTopic => create_topic(topics, caller, form).await,
        Operation::DeleteTopic => delete_topic(topics, caller, form).await,
        Operation::ListTopics => list_topics(topics, caller, form),
        Operation::GetTopicAttributes => get_topic_attributes(topics, caller, form),
        Operation::SetTopicAttributes => set_topic_attributes(topics, caller, form).await,
        Operation::Subscribe => subscribe(topics, caller, form, service_url).await,
        Operation::ConfirmSubscription => confirm_subscription(topics, caller, form).await,
        Operation::Unsubscribe => unsubscribe(topics, caller, form).await,
        Operation::ListSubscriptions => list_subscriptions(topics, caller, form),
        Operation::ListSubscriptionsByTopic => list_subscriptions_by_topic(topics, caller, form),
        Operation::GetSubscriptionAttributes => get_subscription_attributes(topics, caller, form),
        Operation::Publish => publish(topics, caller, form),
    };
    result.map_err(|error| api_error(&error))
}

/// Runs a change to the store on the blocking pool (it writes and syncs a file).
async fn blocking<R: Send + 'static>(
    topics: &Topics,
    change: impl FnOnce(&Topics) -> Result<R, SnsError> + Send + 'static,
) -> Result<R, SnsError> {
    let topics = topics.clone();
    tokio::task::spawn_blocking(move || change(&topics))
        .await
        .map_err(|error| SnsError::Storage(format!("a topics task failed: {error}")))?
}

fn denied(caller: &Caller, operation: Operation, resource: &str) -> SnsError {
    SnsError::AuthorizationError(format!(
        "User: {} is not authorized to perform: SNS:{} on resource: {resource}",
        caller.principal.arn(),
        operation.name()
    ))
}

/// A topic the caller names by ARN: in the Region the request was signed for, and in an
/// account the caller reaches.
fn own_topic(caller: &Caller, operation: Operation, arn: &str, parameter: &str) -> Result<TopicRef, SnsError> {
    let topic = TopicRef::parse(arn, parameter)?;
    if topic.region != caller.region {
        return Err(SnsError::invalid(format!("Invalid parameter: {parameter}")));
    }
    if !caller.principal.reaches(&topic.account_id) {
        return Err(denied(caller, operation, &topic.arn()));
    }
    Ok(topic)
}

/// A subscription the caller names by ARN: the topic's account, or the subscriber itself.
fn own_subscription(
    topics: &Topics,
    caller: &Caller,
    operation: Operation,
    form: &Form,
) -> Result<SubscriptionRef, SnsError> {
    let subscription = SubscriptionRef::parse(form.required("SubscriptionArn")?)?;
    if subscription.topic.region != caller.region {
        return Err(SnsError::invalid("Invalid parameter: SubscriptionArn"));
    }
    let owner = topics.subscription_owner(&subscription);
    let allowed = caller.principal.reaches(&subscription.topic.account_id)
        || owner.as_deref().is_some_and(|owner| caller.principal.reaches(owner));
    if !allowed {
        return Err(denied(caller, operation, &subscription.arn()));
    }
    Ok(subscription)
}

fn unsupported_if_given(form: &Form, parameter: &str) -> Result<(), SnsError> {
    if form.get(parameter).is_some() || form.has_nested(parameter) {
        return Err(SnsError::invalid(format!(
            "Invalid parameter: {parameter} Reason: not supported by this endpoint"
        )));
    }
    Ok(())
}

async fn create_topic(topics: &Topics, caller: &Caller, form: &Form) -> Result<Output, SnsError> {
    let name = form.required("Name")?.to_owned();
    let attributes = form.map("Attributes")?;
    let tags = form
        .members("Tags")
        .into_iter()
        .map(|fields| {
            let field =
                |wanted: &str| fields.iter().find(|(name, _)| *name == wanted).map(|(_, value)| (*value).to_owned());
            let key =
                field("Key").ok_or_else(|| SnsError::invalid("Invalid parameter: Tags Reason: a tag has no Key"))?;
            Ok(Tag { key, value: field("Value").unwrap_or_default() })
        })
        .collect::<Result<Vec<Tag>, SnsError>>()?;
    unsupported_if_given(form, "DataProtectionPolicy")?;
    let account = caller.principal.account_id.clone();
    let region = caller.region.clone();
    let arn = blocking(topics, move |topics| topics.create_topic(&account, &region, &name, &attributes, &tags)).await?;
    let mut xml = writer();
    xml.element("TopicArn", &arn);
    Ok(Output { result: Some(xml.finish()), response_elements: json!({ "topicArn": arn }) })
}

async fn delete_topic(topics: &Topics, caller: &Caller, form: &Form) -> Result<Output, SnsError> {
    let topic = own_topic(caller, Operation::DeleteTopic, form.required("TopicArn")?, "TopicArn")?;
    blocking(topics, move |topics| topics.delete_topic(&topic)).await?;
    Ok(Output::empty())
}

fn list_topics(topics: &Topics, caller: &Caller, form: &Form) -> Result<Output, SnsError> {
    let page = topics.list_topics(&caller.principal.account_id, &caller.region, form.get("NextToken"))?;
    let mut xml = writer();
    xml.open("Topics");
    for arn in &page.items {
        xml.open("member").element("TopicArn", arn).close("member");
    }
    xml.close("Topics");
    if let Some(token) = &page.next_token {
        xml.element("NextToken", token);
    }
    Ok(Output { result: Some(xml.finish()), response_elements: Value::Null })
}

fn get_topic_attributes(topics: &Topics, caller: &Caller, form: &Form) -> Result<Output, SnsError> {
    let topic = own_topic(caller, Operation::GetTopicAttributes, form.required("TopicArn")?, "TopicArn")?;
    let attributes = topics.topic_attributes(&topic)?;
    let mut xml = writer();
    map(&mut xml, "Attributes", &attributes);
    Ok(Output { result: Some(xml.finish()), response_elements: Value::Null })
}

async fn set_topic_attributes(topics: &Topics, caller: &Caller, form: &Form) -> Result<Output, SnsError> {
    let topic = own_topic(caller, Operation::SetTopicAttributes, form.required("TopicArn")?, "TopicArn")?;
    let attribute = form.required("AttributeName")?.to_owned();
    let value = form.get("AttributeValue").unwrap_or_default().to_owned();
    blocking(topics, move |topics| topics.set_topic_attribute(&topic, &attribute, &value)).await?;
    Ok(Output::empty())
}

async fn subscribe(topics: &Topics, caller: &Caller, form: &Form, service_url: &str) -> Result<Output, SnsError> {
    let topic = own_topic(caller, Operation::Subscribe, form.required("TopicArn")?, "TopicArn")?;
    let protocol = form.required("Protocol")?.to_owned();
    let endpoint = form.get("Endpoint").unwrap_or_default().to_owned();
    let return_arn = form.boolean("ReturnSubscriptionArn")?.unwrap_or(false);
    unsupported_if_given(form, "Attributes")?;
    let owner = caller.principal.account_id.clone();
    let service_url = service_url.to_owned();
    // The blocking pool runs inside the runtime, so the confirmation is spawned from there.
    let subscribed = blocking(topics, move |topics| {
        topics.subscribe(&SubscribeRequest {
            topic: &topic,
            owner: &owner,
            protocol: &protocol,
            endpoint: &endpoint,
            service_url: &service_url,
        })
    })
    .await?;
    let shown =
        if subscribed.pending && !return_arn { "pending confirmation".to_owned() } else { subscribed.subscription_arn };
    let mut xml = writer();
    xml.element("SubscriptionArn", &shown);
    Ok(Output { result: Some(xml.finish()), response_elements: json!({ "subscriptionArn": shown }) })
}

async fn confirm_subscription(topics: &Topics, caller: &Caller, form: &Form) -> Result<Output, SnsError> {
    // Whoever holds the token may confirm: the endpoint's owner may be in another account.
    let topic = TopicRef::parse(form.required("TopicArn")?, "TopicArn")?;
    if topic.region != caller.region {
        return Err(SnsError::invalid("Invalid parameter: TopicArn"));
    }
    let token = form.required("Token")?.to_owned();
    let authenticate_on_unsubscribe = form.boolean("AuthenticateOnUnsubscribe")?.unwrap_or(false);
    let arn =
        blocking(topics, move |topics| topics.confirm_subscription(&topic, &token, Some(authenticate_on_unsubscribe)))
            .await?;
    Ok(confirmed(arn))
}

/// The answer to a confirmation, signed or through the `SubscribeURL`.
pub fn confirmed(subscription_arn: String) -> Output {
    let mut xml = writer();
    xml.element("SubscriptionArn", &subscription_arn);
    Output { result: Some(xml.finish()), response_elements: json!({ "subscriptionArn": subscription_arn }) }
}

async fn unsubscribe(topics: &Topics, caller: &Caller, form: &Form) -> Result<Output, SnsError> {
    let subscription = own_subscription(topics, caller, Operation::Unsubscribe, form)?;
    blocking(topics, move |topics| topics.unsubscribe(&subscription, true)).await?;
    Ok(Output::empty())
}

fn subscriptions_xml(page: &Page<SubscriptionSummary>) -> String {
    let mut xml = writer();
    xml.open("Subscriptions");
    for row in &page.items {
        xml.open("member")
            .element("SubscriptionArn", &row.subscription_arn)
            .element("Owner", &row.owner)
            .element("Protocol", row.protocol)
            .element("Endpoint", &row.endpoint)
            .element("TopicArn", &row.topic_arn)
            .close("member");
    }
    xml.close("Subscriptions");
    if let Some(token) = &page.next_token {
        xml.element("NextToken", token);
    }
    xml.finish()
}

fn list_subscriptions(topics: &Topics, caller: &Caller, form: &Form) -> Result<Output, SnsError> {
    let page = topics.list_subscriptions(&caller.principal.account_id, &caller.region, form.get("NextToken"))?;
    Ok(Output { result: Some(subscriptions_xml(&page)), response_elements: Value::Null })
}

fn list_subscriptions_by_topic(topics: &Topics, caller: &Caller, form: &Form) -> Result<Output, SnsError> {
    let topic = own_topic(caller, Operation::ListSubscriptionsByTopic, form.required("TopicArn")?, "TopicArn")?;
    let page = topics.list_subscriptions_by_topic(&topic, form.get("NextToken"))?;
    Ok(Output { result: Some(subscriptions_xml(&page)), response_elements: Value::Null })
}

fn get_subscription_attributes(topics: &Topics, caller: &Caller, form: &Form) -> Result<Output, SnsError> {
    let subscription = own_subscription(topics, caller, Operation::GetSubscriptionAttributes, form)?;
    let attributes = topics.subscription_attributes(&subscription)?;
    let mut xml = writer();
    map(&mut xml, "Attributes", &attributes);
    Ok(Output { result: Some(xml.finish()), response_elements: Value::Null })
}

fn publish(topics: &Topics, caller: &Caller, form: &Form) -> Result<Output, SnsError> {
    if form.get("PhoneNumber").is_some() {
        return Err(SnsError::invalid("Invalid parameter: PhoneNumber Reason: SMS is not supported by this endpoint"));
    }
    let (arn, parameter) = match (form.get("TopicArn"), form.get("TargetArn")) {
        (Some(arn), _) => (arn, "TopicArn"),
        (None, Some(arn)) => (arn, "TargetArn"),
        (None, None) => {
            return Err(SnsError::invalid(
                "Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter",
            ));
        }
    };
    let topic = own_topic(caller, Operation::Publish, arn, parameter)?;
    let message = form.required("Message")?;
    for parameter in ["MessageAttributes", "MessageGroupId", "MessageDeduplicationId"] {
        unsupported_if_given(form, parameter)?;
    }
    let body = match form.get("MessageStructure") {
        None => MessageBody::text(message),
        Some("json") => structured_message(message)?,
        Some(_) => return Err(SnsError::invalid("Invalid parameter: MessageStructure")),
    };
    let message_id = topics.publish_message(&topic, form.get("Subject"), &body)?;
    let mut xml = writer();
    xml.element("MessageId", &message_id);
    Ok(Output { result: Some(xml.finish()), response_elements: json!({ "messageId": message_id }) })
}

/// `MessageStructure=json`: a JSON object of texts per protocol, with a `default` text.
/// Members whose value is not a string are ignored, as SNS ignores them.
fn structured_message(message: &str) -> Result<MessageBody, SnsError> {
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(message) else {
        return Err(SnsError::invalid("Invalid parameter: Message Structure - JSON message body failed to parse"));
    };
    let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
    let default = text("default").ok_or_else(|| {
        SnsError::invalid("Invalid parameter: Message Structure - No default entry in JSON message body")
    })?;
    Ok(MessageBody { size: message.len(), default, http: text("http"), https: text("https") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_messages_need_a_default() {
        let body = structured_message(r#"{"default":"d","https":"s","http":7}"#).unwrap();
        assert_eq!((body.default.as_str(), body.http, body.https.as_deref()), ("d", None, Some("s")));
        assert!(structured_message(r#"{"http":"x"}"#).unwrap_err().to_string().contains("No default entry"));
        assert!(structured_message("[1]").unwrap_err().to_string().contains("failed to parse"));
    }
}
