//! AWS JSON 1.1: `POST /` with `X-Amz-Target: <service prefix>.<Operation>` and a JSON
//! body; answers with `application/x-amz-json-1.1` and errors as `{"__type", "message"}`.
//!
//! The pipeline is the same for every operation: read the body, verify SigV4, pick the
//! operation, apply the rate limit, check the role, run it, record it in the caller's
//! Event History (self-audit), answer.

use axum::extract::Request;
use axum::response::Response;
use serde_json::Value;

use super::{ApiError, ConnectionInfo, authenticate, json_ok, new_request_id, read_body};
use crate::audit;
use crate::cloudtrail::{self, Operation};
use crate::state::AppState;

pub async fn handle(state: AppState, connection: ConnectionInfo, request: Request) -> Response {
    let request_id = new_request_id();
    let (parts, body) = request.into_parts();
    let target = parts.headers.get("x-amz-target").and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned();
    let result = async {
        let body = read_body(body, state.config.max_request_bytes).await?;
        let caller = authenticate(&state, &connection, &parts, &body, "cloudtrail", &request_id)?;
        let operation = Operation::from_target(&target).ok_or_else(|| {
            ApiError::client(
                "UnknownOperationException",
                format!("The operation {target:?} is not supported by this endpoint."),
            )
        })?;
        if !state.limiter.try_acquire(&caller.principal.access_key_id) {
            return Err(ApiError::throttling());
        }
        let input = parse_input(&body);
        let outcome = match &input {
            Err(error) => Err(error.clone()),
            Ok(_) if !caller.principal.role.allows(operation.access()) => {
                Err(ApiError::not_authorized(&caller.principal.arn(), operation.name()))
            }
            Ok(input) => cloudtrail::execute(&state, &caller, operation, input).await,
        };
        let empty = Value::Object(Default::default());
        let input = input.as_ref().unwrap_or(&empty);
        let recorded =
            audit::record_call(&state, &caller, operation.name(), operation.read_only(), input, &outcome).await;
        if let Some(stopped) = outcome.as_ref().ok().and_then(|output| output.stopped_trail.as_ref()) {
            cloudtrail::trails::settle_stop(&state, stopped, recorded.as_ref().ok().copied().flatten());
        }
        recorded?;
        state.metrics.count_operation(operation.name(), outcome.is_ok());
        outcome
    }
    .await;
    match result {
        Ok(output) => json_ok(output.body, "application/x-amz-json-1.1", &request_id),
        Err(error) => error.into_response_with_id(&request_id),
    }
}

/// The body as a JSON object; an empty body is an empty input, as AWS treats it.
fn parse_input(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => {
            Err(ApiError::serialization("Start of structure or map expected: the request body must be a JSON object"))
        }
        Err(error) => Err(ApiError::serialization(format!("Malformed JSON in the request body: {error}"))),
    }
}
