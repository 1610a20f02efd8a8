//! `LookupEvents`: Event History, newest first, one Region, one lookup attribute at most.
//!
//! Validation follows the botocore model (`LookupAttributes` of one item, `MaxResults`
//! 1–50, `EventCategory` only `insight`) with CloudTrail's own error codes. Unlike AWS
//! there is no 2-requests-per-second cap; the per-principal rate limit applies instead.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use trailkeeper_core::record::{RecordDefaults, parse_record};
use trailkeeper_core::{LookupKey, ParsedRecord};
use trailkeeper_store::hot::ScanBounds;
use trailkeeper_store::{EventKey, HistoryKind};

use super::inputs::{Timestamp, deserialize_input};
use super::{Output, token};
use crate::api::{ApiError, Caller};
use crate::state::AppState;

const MAX_ATTRIBUTE_VALUE_CHARS: usize = 2000;
const DEFAULT_MAX_RESULTS: i64 = 50;

#[derive(Debug, Deserialize)]
struct Input {
    #[serde(rename = "LookupAttributes")]
    lookup_attributes: Option<Vec<AttributeInput>>,
    #[serde(rename = "StartTime")]
    start_time: Option<Timestamp>,
    #[serde(rename = "EndTime")]
    end_time: Option<Timestamp>,
    #[serde(rename = "EventCategory")]
    event_category: Option<String>,
    #[serde(rename = "MaxResults")]
    max_results: Option<i64>,
    #[serde(rename = "NextToken")]
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AttributeInput {
    #[serde(rename = "AttributeKey")]
    key: Option<String>,
    #[serde(rename = "AttributeValue")]
    value: Option<String>,
}

/// A validated request.
#[derive(Debug)]
struct Query {
    attribute: Option<(LookupKey, String)>,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    kind: HistoryKind,
    max_results: usize,
    next_token: Option<String>,
}

fn validate(input: &Value) -> Result<Query, ApiError> {
    let input: Input = deserialize_input(input)?;
    let attributes = input.lookup_attributes.unwrap_or_default();
    if attributes.len() > 1 {
        return Err(ApiError::client("InvalidLookupAttributesException", "You can only specify one lookup attribute."));
    }
    let attribute = match attributes.into_iter().next() {
        None => None,
        Some(AttributeInput { key, value }) => {
            let key_text =
                key.ok_or_else(|| ApiError::client("InvalidLookupAttributesException", "AttributeKey is required."))?;
            let key: LookupKey = key_text.parse().map_err(|()| {
                ApiError::client(
                    "InvalidLookupAttributesException",
                    format!("Invalid attribute key {key_text:?}: must be one of EventId, EventName, ReadOnly, Username, ResourceType, ResourceName, EventSource, AccessKeyId."),
                )
            })?;
            let value = value
                .ok_or_else(|| ApiError::client("InvalidLookupAttributesException", "AttributeValue is required."))?;
            let chars = value.chars().count();
            if chars == 0 || chars > MAX_ATTRIBUTE_VALUE_CHARS {
                return Err(ApiError::client(
                    "InvalidLookupAttributesException",
                    format!("AttributeValue must be 1 to {MAX_ATTRIBUTE_VALUE_CHARS} characters long."),
                ));
            }
            Some((key, value))
        }
    };
    let max_results = input.max_results.unwrap_or(DEFAULT_MAX_RESULTS);
    if !(1..=50).contains(&max_results) {
        return Err(ApiError::client("InvalidMaxResultsException", "MaxResults must be between 1 and 50."));
    }
    let kind = match input.event_category.as_deref() {
        None => HistoryKind::Management,
        Some("insight") => HistoryKind::Insight,
        Some(other) => {
            return Err(ApiError::client(
                "InvalidEventCategoryException",
                format!("Invalid EventCategory {other:?}: the only supported value is insight."),
            ));
        }
    };
    if kind == HistoryKind::Insight && attribute.as_ref().is_some_and(|(key, _)| !key.applies_to_insights()) {
        return Err(ApiError::client(
            "InvalidLookupAttributesException",
            "For Insights events, the lookup attribute must be EventId, EventName or EventSource.",
        ));
    }
    let start_ms = input.start_time.as_ref().map(|time| time.to_ms("StartTime")).transpose()?;
    let end_ms = input.end_time.as_ref().map(|time| time.to_ms("EndTime")).transpose()?;
    if let (Some(start), Some(end)) = (start_ms, end_ms)
        && start > end
    {
        return Err(ApiError::client("InvalidTimeRangeException", "The start time must be before the end time."));
    }
    if input.next_token.as_deref() == Some("") {
        return Err(ApiError::client("InvalidNextTokenException", "Invalid NextToken."));
    }
    Ok(Query { attribute, start_ms, end_ms, kind, max_results: max_results as usize, next_token: input.next_token })
}

/// What a NextToken is bound to: everything that decides which events a call returns,
/// except `MaxResults`, which a paginator may change from page to page.
fn token_binding(caller: &Caller, query: &Query) -> Vec<u8> {
    let mut hasher = Sha256::new();
    let parts = [
        caller.principal.access_key_id.clone(),
        caller.region.clone(),
        query.attribute.as_ref().map(|(key, value)| format!("{key}={value}")).unwrap_or_default(),
        format!("{:?}", query.start_ms),
        format!("{:?}", query.end_ms),
        format!("{:?}", query.kind),
    ];
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().to_vec()
}

pub async fn execute(state: &AppState, caller: &Caller, input: &Value) -> Result<Output, ApiError> {
    let query = validate(input)?;
    let binding = token_binding(caller, &query);
    let before = match &query.next_token {
        None => None,
        Some(text) => Some(
            token::decode(&state.token_key, text, &binding)
                .ok_or_else(|| ApiError::client("InvalidNextTokenException", "Invalid NextToken."))?,
        ),
    };
    let scope = caller.principal.read_scope();
    let log = state.log.clone();
    let region = caller.region.clone();
    let attribute = query.attribute.clone();
    let (start_ms, end_ms, kind, limit) = (query.start_ms, query.end_ms, query.kind, query.max_results);
    // One more than a page tells whether there is a next page.
    let found = tokio::task::spawn_blocking(move || {
        let bounds = ScanBounds {
            kind,
            attribute: attribute.as_ref().map(|(key, value)| (*key, value.as_str())),
            start_ms,
            end_ms,
            before,
        };
        log.lookup(&scope, &region, &bounds, limit + 1)
    })
    .await
    .map_err(|_| ApiError::internal())?
    .map_err(|error| ApiError::from_store(&error))?;

    let has_more = found.len() > limit;
    let page = &found[..found.len().min(limit)];
    let mut records = Vec::with_capacity(page.len());
    for event in page {
        records.push(read_record(event.key, &event.json)?);
    }
    let events: Vec<EventOut<'_>> =
        page.iter().zip(&records).map(|(event, (record, text))| EventOut::new(event.key, record, text)).collect();
    let next_token =
        if has_more { page.last().map(|last| token::encode(&state.token_key, last.key, &binding)) } else { None };
    let body = serde_json::to_string(&LookupEventsOutput { events, next_token }).map_err(|_| ApiError::internal())?;
    Ok(Output::unrecorded(body))
}

/// The response, serialized straight from the stored records without copying them.
#[derive(Serialize)]
struct LookupEventsOutput<'a> {
    #[serde(rename = "Events")]
    events: Vec<EventOut<'a>>,
    #[serde(rename = "NextToken", skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// One `Event` of the response, as the botocore model names its members.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EventOut<'a> {
    event_id: &'a str,
    event_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_only: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_key_id: Option<&'a str>,
    event_time: Value,
    event_source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    resources: Vec<ResourceOut<'a>>,
    cloud_trail_event: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ResourceOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_name: Option<&'a str>,
}

impl<'a> EventOut<'a> {
    fn new(key: EventKey, record: &'a ParsedRecord, text: &'a str) -> EventOut<'a> {
        let fields = &record.fields;
        EventOut {
            event_id: fields.event_id(),
            event_name: fields.event_name(),
            read_only: fields.read_only.map(|read_only| if read_only { "true" } else { "false" }),
            access_key_id: fields.access_key_id(),
            event_time: epoch_seconds(key.time_ms),
            event_source: fields.event_source(),
            username: fields.username(),
            resources: fields
                .resources()
                .map(|resource| ResourceOut {
                    resource_type: resource.resource_type,
                    resource_name: resource.resource_name,
                })
                .collect(),
            cloud_trail_event: text,
        }
    }
}

/// A stored record, read again for the fields the response reports, with its text.
fn read_record(key: EventKey, json_text: &[u8]) -> Result<(ParsedRecord, &str), ApiError> {
    // Stored records always carry eventID and recipientAccountId, so no defaults apply.
    let mut no_new_ids = String::new;
    let record =
        parse_record(json_text, RecordDefaults { account_id: "-", region: "-" }, &mut no_new_ids).map_err(|error| {
            tracing::error!(%error, seq = key.seq, "a stored record no longer parses");
            ApiError::internal()
        })?;
    let text = std::str::from_utf8(json_text).map_err(|_| ApiError::internal())?;
    Ok((record, text))
}

/// Epoch seconds as AWS JSON writes timestamps: whole seconds as an integer.
fn epoch_seconds(ms: i64) -> Value {
    if ms % 1000 == 0 { json!(ms / 1000) } else { json!(ms as f64 / 1000.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(input: Value) -> &'static str {
        validate(&input).map(|_| "ok").unwrap_or_else(|error| error.code)
    }

    #[test]
    fn validates_as_the_model_says() {
        assert_eq!(code(json!({})), "ok");
        assert_eq!(code(json!({"LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": "alice"}]})), "ok");
        assert_eq!(
            code(
                json!({"LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": "a"}, {"AttributeKey": "EventName", "AttributeValue": "b"}]})
            ),
            "InvalidLookupAttributesException"
        );
        assert_eq!(
            code(json!({"LookupAttributes": [{"AttributeKey": "UserName", "AttributeValue": "a"}]})),
            "InvalidLookupAttributesException"
        );
        assert_eq!(
            code(json!({"LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": ""}]})),
            "InvalidLookupAttributesException"
        );
        assert_eq!(
            code(json!({"LookupAttributes": [{"AttributeKey": "Username"}]})),
            "InvalidLookupAttributesException"
        );
        assert_eq!(code(json!({"MaxResults": 0})), "InvalidMaxResultsException");
        assert_eq!(code(json!({"MaxResults": 51})), "InvalidMaxResultsException");
        assert_eq!(code(json!({"MaxResults": "5"})), "SerializationException");
        assert_eq!(code(json!({"EventCategory": "management"})), "InvalidEventCategoryException");
        assert_eq!(
            code(
                json!({"EventCategory": "insight", "LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": "a"}]})
            ),
            "InvalidLookupAttributesException"
        );
        assert_eq!(code(json!({"StartTime": 20, "EndTime": 10})), "InvalidTimeRangeException");
        assert_eq!(code(json!({"StartTime": 10.5, "EndTime": "2024-01-01T00:00:00Z"})), "ok");
        assert_eq!(code(json!({"NextToken": ""})), "InvalidNextTokenException");
    }

    #[test]
    fn writes_whole_seconds_as_integers() {
        assert_eq!(epoch_seconds(1_700_000_000_000), json!(1_700_000_000));
        assert_eq!(epoch_seconds(1_700_000_000_250), json!(1_700_000_000.25));
    }
}
