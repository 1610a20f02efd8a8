//! Self-audit: every call to Trailkeeper's management API becomes a CloudTrail record in
//! the caller's own Event History, with the caller's identity, source, parameters and
//! result. Trailkeeper's own acts (retention) are recorded as service events.
//!
//! A call that changes something is answered only after its record is durable, so that no
//! acknowledged change goes unrecorded. A read-only call's record is queued in log order
//! before the call is answered, and made durable by the writer's next group commit without
//! the answer waiting for it: a read changes nothing a crash could leave unrecorded, and on
//! a disk whose syncs now and then take 20–300 ms the wait made LookupEvents' tail latency
//! the disk's (ARCHITECTURE.md). Secrets in request parameters are replaced before anything
//! is stored.

use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;
use trailkeeper_core::ParsedRecord;
use trailkeeper_core::record::{RecordDefaults, parse_record};
use trailkeeper_core::time::format_event_time;
use trailkeeper_store::{AppendOutcome, EventLog, NewEvent, StoreError};

use crate::api::{ApiError, Caller, MAX_USER_AGENT_BYTES, now_ms};
use crate::cloudtrail::Output;
use crate::state::AppState;

/// The eventVersion of the records Trailkeeper writes.
pub const EVENT_VERSION: &str = "1.11";
const HIDDEN: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserIdentity<'a> {
    #[serde(rename = "type")]
    identity_type: &'a str,
    principal_id: String,
    arn: String,
    account_id: &'a str,
    access_key_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_name: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TlsDetails<'a> {
    tls_version: &'a str,
    cipher_suite: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_provided_host_header: Option<&'a str>,
}

/// A CloudTrail record of a call, fields in CloudTrail's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiCallRecord<'a> {
    event_version: &'static str,
    user_identity: UserIdentity<'a>,
    event_time: String,
    event_source: &'a str,
    event_name: &'a str,
    aws_region: &'a str,
    #[serde(rename = "sourceIPAddress")]
    source_ip_address: &'a str,
    user_agent: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<&'a str>,
    request_parameters: Value,
    response_elements: Value,
    #[serde(rename = "requestID")]
    request_id: &'a str,
    #[serde(rename = "eventID")]
    event_id: String,
    read_only: bool,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    resources: &'a [AuditResource],
    event_type: &'static str,
    management_event: bool,
    recipient_account_id: &'a str,
    event_category: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_details: Option<TlsDetails<'a>>,
}

/// One entry of a record's `resources`.
#[derive(Debug, Clone, Serialize)]
pub struct AuditResource {
    #[serde(rename = "accountId", skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(rename = "type")]
    pub resource_type: String,
    #[serde(rename = "ARN")]
    pub arn: String,
}

/// What one API call did, as its audit record tells it. Request parameters and response
/// elements are written as given, after secrets are hidden.
#[derive(Debug, Clone)]
pub struct CallEvent<'a> {
    pub event_source: &'a str,
    pub event_name: &'a str,
    pub read_only: bool,
    /// Management events are in Event History; data events (object reads and writes) reach
    /// only the trails whose selectors ask for them.
    pub management: bool,
    pub resources: Vec<AuditResource>,
    pub request_parameters: Value,
    pub response_elements: Value,
    /// `(errorCode, errorMessage)` of a failed call.
    pub error: Option<(&'a str, &'a str)>,
}

/// Records one CloudTrail API call (AWS JSON 1.1), as [`record`] does.
pub async fn record_call(
    state: &AppState,
    caller: &Caller,
    event_name: &str,
    read_only: bool,
    input: &Value,
    outcome: &Result<Output, ApiError>,
) -> Result<Option<u64>, ApiError> {
    let response_elements = match outcome {
        Ok(output) if !read_only => camel_keys(output.response_elements.clone()),
        _ => Value::Null,
    };
    let event = CallEvent {
        event_source: "cloudtrail.amazonaws.com",
        event_name,
        read_only,
        management: true,
        resources: Vec::new(),
        request_parameters: camel_keys(input.clone()),
        response_elements,
        error: outcome.as_ref().err().map(|error| (error.code, error.message.as_str())),
    };
    record(state, caller, event).await
}

/// Records one call of any service. A call that changes something waits until its record
/// is durable and gets the record's log position; a read-only call's record is queued, and
/// only a log that refuses it (overloaded, closing) fails the call.
pub async fn record(state: &AppState, caller: &Caller, event: CallEvent<'_>) -> Result<Option<u64>, ApiError> {
    let principal = &caller.principal;
    let user_agent = truncate_utf8(&caller.user_agent, MAX_USER_AGENT_BYTES);
    let record = ApiCallRecord {
        event_version: EVENT_VERSION,
        user_identity: UserIdentity {
            identity_type: principal.identity_type(),
            principal_id: principal.principal_id(),
            arn: principal.arn(),
            account_id: &principal.account_id,
            access_key_id: &principal.access_key_id,
            user_name: principal.user_name.as_deref(),
        },
        event_time: format_event_time(now_ms()),
        event_source: event.event_source,
        event_name: event.event_name,
        aws_region: &caller.region,
        source_ip_address: &caller.source_ip,
        user_agent,
        error_code: event.error.map(|(code, _)| code),
        error_message: event.error.map(|(_, message)| message),
        request_parameters: redact(event.request_parameters),
        response_elements: redact(event.response_elements),
        request_id: &caller.request_id,
        event_id: uuid::Uuid::new_v4().to_string(),
        read_only: event.read_only,
        resources: &event.resources,
        event_type: "AwsApiCall",
        management_event: event.management,
        recipient_account_id: &principal.account_id,
        event_category: if event.management { "Management" } else { "Data" },
        tls_details: caller.tls.as_ref().map(|tls| TlsDetails {
            tls_version: &tls.version,
            cipher_suite: &tls.cipher_suite,
            client_provided_host_header: caller.host.as_deref(),
        }),
    };
    let json = serde_json::to_vec(&record).map_err(|_| ApiError::internal())?;
    let record = own_record(&json, &principal.account_id, &caller.region)?;
    // A read is answered before its record is durable, unless the journal is failing:
    // then it waits for the append, and fails with it, rather than go unrecorded.
    if !event.read_only || state.log.journal_failing() {
        return append_one(state, record).await.map(Some);
    }
    let event_name = event.event_name.to_owned();
    queue(&state.log, vec![record], false, move |stored| {
        if let Err(error) = stored {
            tracing::error!(%error, event_name, "the record of a read-only call could not be stored");
        }
    })?;
    Ok(None)
}

/// Records one of Trailkeeper's own acts as an `AwsServiceEvent` in an account's history.
pub async fn record_service_event(
    state: &AppState,
    account_id: &str,
    region: &str,
    event_name: &str,
    details: Value,
) -> Result<u64, ApiError> {
    let record = serde_json::json!({
        "eventVersion": EVENT_VERSION,
        "userIdentity": { "type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com" },
        "eventTime": format_event_time(now_ms()),
        "eventSource": "cloudtrail.amazonaws.com",
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": "cloudtrail.amazonaws.com",
        "userAgent": "cloudtrail.amazonaws.com",
        "requestParameters": null,
        "responseElements": null,
        "eventID": uuid::Uuid::new_v4().to_string(),
        "readOnly": false,
        "eventType": "AwsServiceEvent",
        "managementEvent": true,
        "recipientAccountId": account_id,
        "serviceEventDetails": details,
        "eventCategory": "Management",
    });
    let json = serde_json::to_vec(&record).map_err(|_| ApiError::internal())?;
    append_one(state, own_record(&json, account_id, region)?).await
}

/// A record Trailkeeper wrote itself, parsed as the log takes every record.
fn own_record(json: &[u8], account_id: &str, region: &str) -> Result<ParsedRecord, ApiError> {
    let mut ids = || uuid::Uuid::new_v4().to_string();
    parse_record(json, RecordDefaults { account_id, region }, &mut ids).map_err(|error| {
        tracing::error!(%error, "an audit record failed its own validation");
        ApiError::internal()
    })
}

/// Appends one record and waits until it is durable; returns its log position.
async fn append_one(state: &AppState, record: ParsedRecord) -> Result<u64, ApiError> {
    match append(state, vec![record]).await?.as_slice() {
        [AppendOutcome::Stored { seq }] => Ok(*seq),
        // A fresh UUID is never a duplicate; anything else is a writer bug.
        _ => Err(ApiError::internal()),
    }
}

/// Appends records to the event log and waits until they are durable.
pub async fn append(state: &AppState, records: Vec<ParsedRecord>) -> Result<Vec<AppendOutcome>, ApiError> {
    let acked = submit(&state.log, records, false)?;
    acknowledged(acked).await
}

/// What [`submit`] hands back: the writer's verdict, once the events are durable.
pub type Acknowledgement = oneshot::Receiver<Result<Vec<AppendOutcome>, StoreError>>;

/// Queues records for the event log without waiting for them to be durable. It encodes and
/// compresses their journal payload on the calling thread, so call it off the async workers
/// for big batches. With `may_block`, an overloaded log is waited for (a while) before the
/// records are refused: for the blocking pool only.
pub fn submit(log: &EventLog, records: Vec<ParsedRecord>, may_block: bool) -> Result<Acknowledgement, ApiError> {
    let (done, acked) = oneshot::channel();
    queue(log, records, may_block, move |result| {
        // The caller may have gone away; the events are stored all the same.
        let _ = done.send(result);
    })?;
    Ok(acked)
}

/// Queues records for the event log; `done` runs on the log's writer thread once they are
/// durable (or failed) and must not block.
fn queue(
    log: &EventLog,
    records: Vec<ParsedRecord>,
    may_block: bool,
    done: impl FnOnce(Result<Vec<AppendOutcome>, StoreError>) + Send + 'static,
) -> Result<(), ApiError> {
    let ingest_time_ms = now_ms();
    let events = records.into_iter().map(|record| NewEvent { record, ingest_time_ms }).collect();
    let queued = if may_block { log.append_waiting(events, done) } else { log.append(events, done) };
    queued.map_err(|error| ApiError::from_store(&error))
}

/// Waits for the writer's verdict on submitted records.
pub async fn acknowledged(acked: Acknowledgement) -> Result<Vec<AppendOutcome>, ApiError> {
    match acked.await {
        Ok(Ok(outcomes)) => Ok(outcomes),
        Ok(Err(error)) => Err(ApiError::from_store(&error)),
        Err(_) => Err(ApiError::internal()),
    }
}

/// CloudTrail writes request parameters with lower-camel-case member names.
pub fn camel_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let mut chars = key.chars();
                    let camel = match chars.next() {
                        Some(first) => first.to_lowercase().chain(chars).collect(),
                        None => key,
                    };
                    (camel, camel_keys(value))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(camel_keys).collect()),
        other => other,
    }
}

/// Replaces the value of every member whose name says it holds a secret.
fn redact(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let lower = key.to_ascii_lowercase();
                    if lower.contains("secret")
                        || lower.contains("password")
                        || lower.contains("privatekey")
                        || lower == "sessiontoken"
                    {
                        (key, Value::String(HIDDEN.to_owned()))
                    } else {
                        (key, redact(value))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        other => other,
    }
}

fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_parameters_as_cloudtrail_does() {
        let input =
            json!({"LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": "alice"}], "MaxResults": 5});
        assert_eq!(
            camel_keys(input),
            json!({"lookupAttributes": [{"attributeKey": "Username", "attributeValue": "alice"}], "maxResults": 5})
        );
    }

    #[test]
    fn hides_secrets() {
        let input = json!({"name": "x", "SecretAccessKey": "abc", "nested": [{"password": "p"}]});
        assert_eq!(redact(input), json!({"name": "x", "SecretAccessKey": HIDDEN, "nested": [{"password": HIDDEN}]}));
    }

    #[test]
    fn truncates_on_character_boundaries() {
        assert_eq!(truncate_utf8("ééé", 3), "é");
        assert_eq!(truncate_utf8("abc", 10), "abc");
    }
}
