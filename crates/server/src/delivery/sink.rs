//! temporary
use bytes::Bytes;
use crate::api::ApiError;
use crate::state::AppState;
pub async fn check_bucket(_state: &AppState, _account_id: &str, _bucket: &str) -> Result<(), ApiError> { Ok(()) }
pub async fn put_log_file(_state: &AppState, _a: &str, _b: &str, _k: &str, _body: Bytes) -> Result<(), String> { Ok(()) }
