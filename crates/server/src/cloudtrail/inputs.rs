//! Reading operation inputs: JSON members into typed requests, with AWS's error when a
//! member has the wrong type.

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
