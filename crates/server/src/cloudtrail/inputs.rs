//! Reading operation inputs: JSON members into typed requests, with AWS's error when a
//! member has the wrong type.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::ApiError;

/// The input as `T`; a member of the wrong type is a `SerializationException`, as AWS
/// answers malformed JSON-protocol requests.
pub fn deserialize_input<T: DeserializeOwned>(input: &Value) -> Result<T, ApiError> {
    T::deserialize(input).map_err(|error| ApiError::serialization(error.to_string()))
}

/// A timestamp as the JSON protocol writes it: epoch seconds, with milliseconds.
pub fn epoch_seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// A timestamp as AWS JSON clients send it: epoch seconds, possibly fractional. Some
/// clients send ISO 8601 text instead, which AWS also accepts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Timestamp {
    Seconds(f64),
    Text(String),
}

impl Timestamp {
    pub fn to_ms(&self, member: &str) -> Result<i64, ApiError> {
        match self {
            Timestamp::Seconds(seconds) if seconds.is_finite() && seconds.abs() < 1e13 => {
                Ok((seconds * 1000.0).round() as i64)
            }
            Timestamp::Seconds(_) => Err(ApiError::serialization(format!("{member} is out of range"))),
            Timestamp::Text(text) => trailkeeper_core::time::parse_event_time(text)
                .map_err(|error| ApiError::serialization(format!("{member}: {error}"))),
        }
    }
}
