//! ListPublicKeys: the public halves of the keys that sign digest files in the caller's
//! Region, for `aws cloudtrail validate-logs` and any other verifier.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Output;
use super::inputs::{Timestamp, deserialize_input, epoch_seconds};
use crate::api::{ApiError, Caller, now_ms};
use crate::signing::PublicKeyInfo;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
struct Input {
    #[serde(rename = "StartTime")]
    start_time: Option<Timestamp>,
    #[serde(rename = "EndTime")]
    end_time: Option<Timestamp>,
    #[serde(rename = "NextToken")]
    next_token: Option<String>,
}

/// The validated time range, `[start_ms, end_ms]`; either end defaults to now.
fn time_range(input: &Value, now_ms: i64) -> Result<(i64, i64), ApiError> {
    let input: Input = deserialize_input(input)?;
    if input.next_token.is_some_and(|token| !token.is_empty()) {
        // CloudTrail reserves the token and never returns one, so no valid token exists.
        return Err(ApiError::client("InvalidTokenException", "Reserved for future use."));
    }
    let start_ms = input.start_time.as_ref().map(|time| time.to_ms("StartTime")).transpose()?.unwrap_or(now_ms);
    let end_ms = input.end_time.as_ref().map(|time| time.to_ms("EndTime")).transpose()?.unwrap_or(now_ms);
    if start_ms > end_ms {
        return Err(ApiError::client("InvalidTimeRangeException", "The start time must be before the end time."));
    }
    Ok((start_ms, end_ms))
}

pub async fn list_public_keys(state: &AppState, caller: &Caller, input: &Value) -> Result<Output, ApiError> {
    let now = now_ms();
    let (start_ms, end_ms) = time_range(input, now)?;
    let region = caller.region.clone();
    let keys = state.clone();
    let keys = tokio::task::spawn_blocking(move || {
        if end_ms >= now {
            // The range reaches the present: the Region's current key is in it, made or
            // rotated now if it is due, as a verifier asking for "now" expects one.
            keys.signing_keys.current(&region, now)?;
        }
        Ok::<_, crate::signing::SigningError>(keys.signing_keys.public_keys(&region, start_ms, end_ms))
    })
    .await
    .map_err(|_| ApiError::internal())?
    .map_err(|error| {
        tracing::error!(%error, "signing keys unavailable");
        ApiError::internal()
    })?;
    Output::read(&json!({ "PublicKeyList": keys.iter().map(public_key).collect::<Vec<_>>() }))
}

/// One `PublicKey`. `Value` is the DER key as a JSON-protocol blob (base64 text). The AWS CLI
/// keeps blobs as that text and base64-decodes it itself before loading the key.
fn public_key(key: &PublicKeyInfo) -> Value {
    json!({
        "Value": STANDARD.encode(&key.der),
        "ValidityStartTime": epoch_seconds(key.valid_from_ms),
        "ValidityEndTime": epoch_seconds(key.valid_until_ms),
        "Fingerprint": key.fingerprint,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn code(input: Value) -> String {
        match time_range(&input, 5_000_000) {
            Ok(_) => "ok".to_owned(),
            Err(error) => error.code.to_owned(),
        }
    }

    #[test]
    fn validates_the_time_range() {
        assert_eq!(time_range(&json!({}), 5_000_000).unwrap(), (5_000_000, 5_000_000));
        assert_eq!(time_range(&json!({"StartTime": 10}), 5_000_000).unwrap(), (10_000, 5_000_000));
        assert_eq!(code(json!({"StartTime": 20, "EndTime": 10})), "InvalidTimeRangeException");
        assert_eq!(code(json!({"EndTime": 10})), "InvalidTimeRangeException", "the start defaults to now");
        assert_eq!(code(json!({"StartTime": "2024-01-01T00:00:00Z", "EndTime": 1e10})), "ok");
        assert_eq!(code(json!({"StartTime": "yesterday"})), "SerializationException");
        assert_eq!(code(json!({"NextToken": "abc"})), "InvalidTokenException");
        assert_eq!(code(json!({"NextToken": ""})), "ok");
    }
}
