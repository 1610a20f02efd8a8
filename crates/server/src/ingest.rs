//! `POST /v1/records`: CloudTrail records in, per-record results out.
//!
//! The body is CloudTrail's own log-file JSON (`{"Records":[...]}`, one file or several
//! back to back), a JSON array of records, or NDJSON, one record per line, optionally
//! gzip-encoded. Each record is judged alone: one bad record never
//! fails its neighbours. Accepted records are acknowledged only once durable.

use std::io::Read as _;

use axum::Extension;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
#[cfg(test)]
use serde::Serialize;
use trailkeeper_core::body::{gzip_size_hint, split_records};
use trailkeeper_core::record::{RecordDefaults, parse_record_in};
use trailkeeper_core::{ParsedRecord, json};
use trailkeeper_store::AppendOutcome;

use crate::api::{ApiError, Caller, ConnectionInfo, authenticate, new_request_id, read_body};
use crate::audit;
use crate::identity::Access;
use crate::state::AppState;

/// The most records one request may carry.
pub const MAX_RECORDS_PER_REQUEST: usize = 100_000;
/// How far a gzip body may expand: bounded so that a small bomb cannot exhaust memory.
/// CloudTrail log files compress about 10 to 30 times.
pub const MAX_INFLATION: usize = 64;
/// The most one decompressed body may hold.
const MAX_DECOMPRESSED_BYTES: usize = 512 * 1024 * 1024;

#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(test, derive(Serialize))]
#[cfg_attr(test, serde(rename_all = "camelCase"))]
pub struct IngestResponse {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub results: Vec<RecordResult>,
}

#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(test, derive(Serialize))]
#[cfg_attr(test, serde(rename_all = "camelCase"))]
pub struct RecordResult {
    pub index: usize,
    pub status: &'static str,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    pub event_id: Option<String>,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    pub reason: Option<String>,
}

impl IngestResponse {
    /// The response body: `{"accepted":…,"duplicates":…,"rejected":…,"results":[…]}`, as
    /// serde_json would write it. Written by hand because a request of a thousand records
    /// answers with a thousand results, and serde_json's escaping looks up every byte of
    /// every eventID.
    pub fn to_json(&self) -> String {
        use std::fmt::Write;
        let mut out = String::with_capacity(64 + self.results.len() * 80);
        let _ = write!(
            out,
            r#"{{"accepted":{},"duplicates":{},"rejected":{},"results":["#,
            self.accepted, self.duplicates, self.rejected
        );
        for (position, result) in self.results.iter().enumerate() {
            if position > 0 {
                out.push(',');
            }
            let _ = write!(out, r#"{{"index":{},"status":"#, result.index);
            push_json_string(&mut out, result.status);
            if let Some(event_id) = &result.event_id {
                out.push_str(r#","eventId":"#);
                push_json_string(&mut out, event_id);
            }
            if let Some(reason) = &result.reason {
                out.push_str(r#","reason":"#);
                push_json_string(&mut out, reason);
            }
            out.push('}');
        }
        out.push_str("]}");
        out
    }
}

/// `text` as a JSON string. Most need no escape and are copied as they are.
fn push_json_string(out: &mut String, text: &str) {
    if json::needs_no_escape(text) {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&serde_json::Value::from(text).to_string());
    }
}

pub async fn handle(
    State(state): State<AppState>,
    Extension(connection): Extension<ConnectionInfo>,
    request: Request,
) -> Response {
    let request_id = new_request_id();
    match ingest(&state, &connection, request, &request_id).await {
        Ok(response) => {
            let mut response = (StatusCode::OK, response.to_json()).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response.headers_mut().insert("x-amzn-requestid", value);
            }
            response
        }
        Err(error) => error.into_response_with_id(&request_id),
    }
}

async fn ingest(
    state: &AppState,
    connection: &ConnectionInfo,
    request: Request,
    request_id: &str,
) -> Result<IngestResponse, ApiError> {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    let _body_budget =
        reserve(state, declared.unwrap_or(state.config.max_request_bytes).min(state.config.max_request_bytes))?;
    let body = read_body(body, state.config.max_request_bytes).await?;
    let caller = authenticate(state, connection, &parts, &body, "cloudtrail", request_id)?;
    if !state.limiter.try_acquire(&caller.principal.access_key_id) {
        return Err(ApiError::throttling());
    }
    if !caller.principal.role.allows(Access::Ingest) {
        return Err(ApiError::not_authorized(&caller.principal.arn(), "PutRecords"));
    }
    let gzipped = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("gzip"));
    let limit = body.len().saturating_mul(MAX_INFLATION).min(MAX_DECOMPRESSED_BYTES);
    // A gzip body may expand up to the limit; its decompressed bytes need budget too.
    let _inflated_budget = if gzipped { Some(reserve(state, limit)?) } else { None };
    let judged_caller = caller.clone();
    let log = state.log.clone();
    // Decompress, parse, judge and submit on the blocking pool: all of it is CPU work.
    let (mut results, positions, acked) = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        // Records kept as written share this buffer (see `parse_record_in`).
        let text = if gzipped { Bytes::from(gunzip(&body, limit)?) } else { body };
        let raw_records = split_records(&text)?;
        if raw_records.len() > MAX_RECORDS_PER_REQUEST {
            return Err(ApiError::client(
                "ValidationException",
                format!(
                    "A request may carry at most {MAX_RECORDS_PER_REQUEST} records; this one has {}.",
                    raw_records.len()
                ),
            ));
        }
        let mut results: Vec<RecordResult> = Vec::with_capacity(raw_records.len());
        let mut to_append: Vec<ParsedRecord> = Vec::new();
        let mut positions = Vec::new();
        for (index, raw) in raw_records.into_iter().enumerate() {
            match judge(&judged_caller, &text, raw) {
                Ok(record) => {
                    results.push(RecordResult {
                        index,
                        status: "accepted",
                        event_id: Some(record.fields.event_id().to_owned()),
                        reason: None,
                    });
                    positions.push(index);
                    to_append.push(record);
                }
                Err(reason) => {
                    results.push(RecordResult { index, status: "rejected", event_id: None, reason: Some(reason) })
                }
            }
        }
        let acked = if to_append.is_empty() { None } else { Some(audit::submit(&log, to_append, true)?) };
        Ok((results, positions, acked))
    })
    .await
    .map_err(|_| ApiError::internal())??;

    if let Some(acked) = acked {
        let outcomes = audit::acknowledged(acked).await?;
        for (position, outcome) in positions.into_iter().zip(outcomes) {
            if outcome == AppendOutcome::Duplicate {
                results[position].status = "duplicate";
            }
        }
    }
    let count = |status: &str| results.iter().filter(|result| result.status == status).count();
    let response = IngestResponse {
        accepted: count("accepted"),
        duplicates: count("duplicate"),
        rejected: count("rejected"),
        results,
    };
    state.metrics.count_ingest(response.accepted, response.duplicates, response.rejected);
    Ok(response)
}

/// Takes `bytes` (rounded up to whole megabytes) from the ingest budget, or refuses with
/// `ThrottlingException` when the server already holds as much as it may.
fn reserve(state: &AppState, bytes: usize) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    let megabytes = u32::try_from(bytes.div_ceil(1024 * 1024).max(1)).unwrap_or(u32::MAX);
    std::sync::Arc::clone(&state.ingest_budget).try_acquire_many_owned(megabytes).map_err(|_| {
        tracing::warn!(megabytes, "ingest budget exhausted: refusing a request");
        ApiError::client("ThrottlingException", "Rate exceeded: too much ingest data in flight, retry later")
    })
}

/// A record ready to append, or the reason it was refused.
type Judgement = Result<ParsedRecord, String>;

fn judge(caller: &Caller, body: &Bytes, raw: &[u8]) -> Judgement {
    let defaults = RecordDefaults { account_id: &caller.principal.account_id, region: &caller.region };
    let mut ids = || uuid::Uuid::new_v4().to_string();
    match parse_record_in(body, raw, defaults, &mut ids) {
        Err(error) => Err(error.to_string()),
        Ok(record) if !caller.principal.reaches(record.fields.account_id()) => {
            Err(format!("{} may not write events for account {}", caller.principal.arn(), record.fields.account_id()))
        }
        Ok(record) => Ok(record),
    }
}

fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    // Sized by the trailer, a file's text is read without growing and copying its buffer;
    // a lying trailer only costs those copies. Log files sent back to back carry only the
    // last one's size, so the buffer starts at no less than four times the body, the guess
    // for a stream without a trailer. Spare room is handed back below.
    let capacity = gzip_size_hint(body).unwrap_or(0).max(body.len() * 4).min(limit);
    let mut text = Vec::with_capacity(capacity);
    let decoder = flate2::read::MultiGzDecoder::new(body);
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut text)
        .map_err(|error| ApiError::serialization(format!("The gzip body could not be decompressed: {error}")))?;
    if text.len() > limit {
        return Err(ApiError::new(
            "RequestEntityTooLargeException",
            format!("The decompressed body exceeds {limit} bytes."),
            StatusCode::PAYLOAD_TOO_LARGE,
        ));
    }
    // The records stored from it keep this buffer until they are sealed: not its spare room.
    text.shrink_to_fit();
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_response_is_what_serde_json_would_write() {
        let result = |index, status, event_id: Option<&str>, reason: Option<&str>| RecordResult {
            index,
            status,
            event_id: event_id.map(str::to_owned),
            reason: reason.map(str::to_owned),
        };
        let response = IngestResponse {
            accepted: 2,
            duplicates: 1,
            rejected: 1,
            results: vec![
                result(0, "accepted", Some("6a0c1b2e-5d1f-4a53-9a77-0f5e3c1d2b4a"), None),
                result(1, "accepted", Some("quote\" back\\slash \u{1} tab\t é"), None),
                result(2, "duplicate", Some("x"), None),
                result(3, "rejected", None, Some("record 3: \"eventTime\" is missing")),
            ],
        };
        assert_eq!(response.to_json(), serde_json::to_string(&response).unwrap());
        let empty = IngestResponse { accepted: 0, duplicates: 0, rejected: 0, results: Vec::new() };
        assert_eq!(empty.to_json(), serde_json::to_string(&empty).unwrap());
    }

    #[test]
    fn a_body_that_is_not_records_is_a_serialization_exception() {
        for body in [&b"[1, 2"[..], br#"{"Records":[{"a":1}],"x":1}"#] {
            let error = ApiError::from(split_records(body).unwrap_err());
            assert_eq!(error.code, "SerializationException", "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn refuses_gzip_bombs() {
        let bomb = gzip(&vec![b' '; 1 << 20]);
        assert_eq!(gunzip(&bomb, 1000).unwrap_err().status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(gunzip(b"not gzip", 1000).is_err());
    }

    fn gzip(text: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut encoder, text).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn the_size_hint_is_the_last_members_trailer_and_never_trusted() {
        let text = br#"{"Records":[{"eventTime":"2026-12-07T00:00:00Z"}]}"#;
        let single = gzip(text);
        assert_eq!(gzip_size_hint(&single), Some(text.len()));
        let mut two = gzip(b"{}\n");
        two.extend_from_slice(&single);
        assert_eq!(gzip_size_hint(&two), Some(text.len()));
        assert_eq!(gunzip(&two, 1000).unwrap().len(), 3 + text.len());
        assert_eq!(gzip_size_hint(b"not gzip at all, but long enough"), None);
        assert_eq!(gzip_size_hint(&single[..10]), None);
        // A trailer that does not match its text fails the stream's own check.
        let mut lying = single.clone();
        let at = lying.len() - 4;
        lying[at..].copy_from_slice(&1u32.to_le_bytes());
        assert!(gunzip(&lying, 1000).is_err(), "the stream's own check refuses a wrong size");
    }
}
