//! A minimal Amazon SNS on Trailkeeper's endpoint: topics with HTTP(S) subscribers, managed
//! with the real AWS CLI and SDKs over the query protocol (API version 2010-03-31), and
//! published to by Trailkeeper itself (trail log-file notifications, alarms).
//!
//! - [`store`]: topics and subscriptions per account and Region, in `sns/topics.json`.
//! - [`rules`]: ARNs, errors, and the checks on names, attributes, endpoints and messages.
//! - [`query`]: form parameters in, XML and `<ErrorResponse>` out.
//! - [`operations`]: one function per operation.
//! - [`delivery`]: the HTTP(S) posts to subscribers, with retries, in background tasks.
//!
//! The pipeline of a signed call: read the body, verify SigV4 for service `sns`, pick the
//! operation from `Action`, rate limit, check the role, run it, record it (self-audit), answer.
//! Two links are followed without a signature, because subscribers visit them: the
//! `SubscribeURL` (`GET /?Action=ConfirmSubscription&TopicArn=..&Token=..`) and the
//! `UnsubscribeURL` (`GET /?Action=Unsubscribe&SubscriptionArn=..`). As in AWS, those
//! unauthenticated calls are not recorded in CloudTrail; the token and the subscription's
//! random ID are the only credentials they carry.
//!
//! Messages to subscribers are not signed: AWS signs them with an X.509 certificate that
//! Trailkeeper does not have, so the `SignatureVersion`, `Signature` and `SigningCertURL`
//! fields are left out instead of being faked. Subscribers that insist on verifying SNS
//! signatures cannot use these topics.
//!
//! This module must never deliver a message on the calling task (a slow subscriber must not
//! slow Publish or a trail), and never make a change it could not save.

mod delivery;
mod operations;
mod query;
mod rules;
mod store;

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

pub use rules::{ErrorKind, SnsError};
pub use store::Topics;

use crate::api::{ApiError, Caller, ConnectionInfo, authenticate, new_request_id, read_body};
use crate::audit::{self, AuditResource, CallEvent};
use crate::identity::Access;
use crate::state::AppState;
use query::Form;
use rules::{SubscriptionRef, TopicRef};

/// CloudTrail's `eventSource` of SNS calls.
pub const EVENT_SOURCE: &str = "sns.amazonaws.com";
const HIDDEN: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";

/// The SNS operations this endpoint implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    CreateTopic,
    DeleteTopic,
    ListTopics,
    GetTopicAttributes,
    SetTopicAttributes,
    Subscribe,
    ConfirmSubscription,
    Unsubscribe,
    ListSubscriptions,
    ListSubscriptionsByTopic,
    GetSubscriptionAttributes,
    Publish,
}

impl Operation {
    const ALL: [Operation; 12] = [
        Operation::CreateTopic,
        Operation::DeleteTopic,
        Operation::ListTopics,
        Operation::GetTopicAttributes,
        Operation::SetTopicAttributes,
        Operation::Subscribe,
        Operation::ConfirmSubscription,
        Operation::Unsubscribe,
        Operation::ListSubscriptions,
        Operation::ListSubscriptionsByTopic,
        Operation::GetSubscriptionAttributes,
        Operation::Publish,
    ];

    pub fn from_action(action: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|operation| operation.name() == action)
    }

    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateTopic => "CreateTopic",
            Operation::DeleteTopic => "DeleteTopic",
            Operation::ListTopics => "ListTopics",
            Operation::GetTopicAttributes => "GetTopicAttributes",
            Operation::SetTopicAttributes => "SetTopicAttributes",
            Operation::Subscribe => "Subscribe",
            Operation::ConfirmSubscription => "ConfirmSubscription",
            Operation::Unsubscribe => "Unsubscribe",
            Operation::ListSubscriptions => "ListSubscriptions",
            Operation::ListSubscriptionsByTopic => "ListSubscriptionsByTopic",
            Operation::GetSubscriptionAttributes => "GetSubscriptionAttributes",
            Operation::Publish => "Publish",
        }
    }

    pub fn access(self) -> Access {
        match self {
            Operation::ListTopics
            | Operation::GetTopicAttributes
            | Operation::ListSubscriptions
            | Operation::ListSubscriptionsByTopic
            | Operation::GetSubscriptionAttributes => Access::Read,
            _ => Access::Manage,
        }
    }

    /// CloudTrail records `Publish` as a data event on the topic (`AWS::SNS::Topic`): it
    /// reaches trails that select SNS data events, not Event History.
    pub fn is_data_event(self) -> bool {
        self == Operation::Publish
    }
}

/// Whether a request speaks SNS's query protocol: a form-encoded POST, or a visit of a
/// `SubscribeURL` or `UnsubscribeURL`.
pub fn is_query_request(request: &Request) -> bool {
    match *request.method() {
        Method::POST => {
            request.headers().get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).is_some_and(|value| {
                value
                    .split(';')
                    .next()
                    .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
            })
        }
        Method::GET => {
            let form = Form::parse(request.uri().query().unwrap_or_default().as_bytes());
            matches!(form.get("Action"), Some("ConfirmSubscription" | "Unsubscribe"))
        }
        _ => false,
    }
}

pub async fn handle(state: AppState, connection: ConnectionInfo, request: Request) -> Response {
    let request_id = new_request_id();
    let (parts, body) = request.into_parts();
    if parts.method == Method::GET {
        let form = Form::parse(parts.uri.query().unwrap_or_default().as_bytes());
        return match follow_link(&state, &form).await {
            Ok((action, output)) => answer(action, output, &request_id),
            Err(error) => query::error_response(&error, &request_id),
        };
    }
    let service_url = service_url(&state, &parts.headers);
    let result = async {
        let body = read_body(body, state.config.max_request_bytes).await?;
        let caller = authenticate(&state, &connection, &parts, &body, "sns", &request_id).map_err(query::auth_error)?;
        let form = Form::parse(&body);
        let operation = pick_operation(&form)?;
        if !state.limiter.try_acquire(&caller.principal.access_key_id) {
            return Err(query::throttled());
        }
        let outcome = if caller.principal.role.allows(operation.access()) {
            operations::execute(&state, &caller, operation, &form, &service_url).await
        } else {
            Err(ApiError::new(
                "AuthorizationError",
                format!(
                    "User: {} is not authorized to perform: SNS:{} on resource: {}",
                    caller.principal.arn(),
                    operation.name(),
                    resource_of(&caller, &form)
                ),
                StatusCode::FORBIDDEN,
            ))
        };
        record(&state, &caller, operation, &form, &outcome).await?;
        state.metrics.count_operation(operation.name(), outcome.is_ok());
        outcome.map(|output| (operation.name(), output))
    }
    .await;
    match result {
        Ok((action, output)) => answer(action, output, &request_id),
        Err(error) => query::error_response(&error, &request_id),
    }
}

fn answer(action: &str, output: operations::Output, request_id: &str) -> Response {
    let document = query::response_document(action, output.result.as_deref(), request_id);
    query::xml_response(StatusCode::OK, document, request_id)
}

fn pick_operation(form: &Form) -> Result<Operation, ApiError> {
    let Some(action) = form.get("Action") else {
        return Err(ApiError::client("MissingAction", "The request must contain the parameter Action."));
    };
    let version = form.get("Version").unwrap_or(query::API_VERSION);
    match Operation::from_action(action) {
        Some(operation) if version == query::API_VERSION => Ok(operation),
        _ => Err(ApiError::client("InvalidAction", format!("Could not find operation {action} for version {version}"))),
    }
}

/// The resource an authorization error names: the topic or subscription the call is about,
/// or every topic of the caller's account and Region.
fn resource_of(caller: &Caller, form: &Form) -> String {
    if let Some(arn) = form.get("TopicArn").or(form.get("TargetArn")).or(form.get("SubscriptionArn")) {
        return arn.to_owned();
    }
    let name = form.get("Name").unwrap_or("*");
    format!("arn:aws:sns:{}:{}:{name}", caller.region, caller.principal.account_id)
}

/// The unauthenticated links a subscriber follows. Not audited: AWS does not record them
/// either, and there is no identity to record.
async fn follow_link(state: &AppState, form: &Form) -> Result<(&'static str, operations::Output), ApiError> {
    let topics = state.topics.clone();
    let sns = |error: SnsError| query::api_error(&error);
    match form.get("Action") {
        Some("ConfirmSubscription") => {
            let topic = TopicRef::parse(form.required("TopicArn").map_err(sns)?, "TopicArn").map_err(sns)?;
            let token = form.required("Token").map_err(sns)?.to_owned();
            let arn = tokio::task::spawn_blocking(move || topics.confirm_subscription(&topic, &token, None))
                .await
                .map_err(|_| query::internal_error())?
                .map_err(sns)?;
            tracing::info!(subscription = %arn, "subscription confirmed through its SubscribeURL");
            Ok(("ConfirmSubscription", operations::confirmed(arn)))
        }
        Some("Unsubscribe") => {
            let subscription = SubscriptionRef::parse(form.required("SubscriptionArn").map_err(sns)?).map_err(sns)?;
            let arn = subscription.arn();
            tokio::task::spawn_blocking(move || topics.unsubscribe(&subscription, false))
                .await
                .map_err(|_| query::internal_error())?
                .map_err(sns)?;
            tracing::info!(subscription = %arn, "unsubscribed through the UnsubscribeURL");
            Ok(("Unsubscribe", operations::Output { result: None, response_elements: Value::Null }))
        }
        _ => Err(ApiError::new(
            "MissingAuthenticationToken",
            "Request is missing Authentication Token",
            StatusCode::FORBIDDEN,
        )),
    }
}

/// Trailkeeper's base URL for the links it sends subscribers: the configured listen
/// address, or, when that is a wildcard address, the `Host` the caller reached it by.
fn service_url(state: &AppState, headers: &HeaderMap) -> String {
    let scheme = if state.config.tls.is_some() { "https" } else { "http" };
    let listen = state.config.listen;
    if !listen.ip().is_unspecified() {
        return format!("{scheme}://{listen}");
    }
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)));
    match host {
        Some(host) => format!("{scheme}://{host}"),
        None if listen.is_ipv6() => format!("{scheme}://[::1]:{}", listen.port()),
        None => format!("{scheme}://127.0.0.1:{}", listen.port()),
    }
}

/// Records one signed call in the caller's history, waiting until it is durable.
async fn record(
    state: &AppState,
    caller: &Caller,
    operation: Operation,
    form: &Form,
    outcome: &Result<operations::Output, ApiError>,
) -> Result<(), ApiError> {
    let mut request_parameters = form.request_parameters();
    if let Value::Object(parameters) = &mut request_parameters {
        // Message texts and confirmation tokens are the subscribers' business, not the trail's.
        for secret in ["message", "subject", "token"] {
            if let Some(value) = parameters.get_mut(secret) {
                *value = Value::String(HIDDEN.to_owned());
            }
        }
    }
    let read_only = operation.access() == Access::Read;
    let response_elements = match outcome {
        Ok(output) if !read_only => output.response_elements.clone(),
        _ => Value::Null,
    };
    let resources = if operation.is_data_event() {
        form.get("TopicArn")
            .or(form.get("TargetArn"))
            .and_then(|arn| TopicRef::parse(arn, "TopicArn").ok())
            .map(|topic| AuditResource {
                account_id: Some(topic.account_id.clone()),
                resource_type: "AWS::SNS::Topic".to_owned(),
                arn: topic.arn(),
            })
            .into_iter()
            .collect()
    } else {
        Vec::new()
    };
    let event = CallEvent {
        event_source: EVENT_SOURCE,
        event_name: operation.name(),
        read_only,
        management: !operation.is_data_event(),
        resources,
        request_parameters,
        response_elements,
        error: outcome.as_ref().err().map(|error| (error.code, error.message.as_str())),
    };
    audit::record(state, caller, event).await.map(|_| ()).map_err(|error| {
        // The record could not be made durable: the call is answered as failed, in SNS's shape.
        tracing::error!(code = error.code, message = %error.message, "could not record an SNS call");
        if error.status.is_server_error() { query::internal_error() } else { query::throttled() }
    })
}
