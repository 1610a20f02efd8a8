//! The CloudTrail API (2013-11-01): one enum of operations, one module per operation
//! group, each parsing its input, applying it and shaping its output as the botocore
//! model says.

pub mod lookup_events;
pub mod token;

use serde_json::Value;

use crate::api::{ApiError, Caller};
use crate::identity::Access;
use crate::state::AppState;

/// The `X-Amz-Target` prefix of every CloudTrail operation.
pub const TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    LookupEvents,
}

impl Operation {
    pub fn from_target(target: &str) -> Option<Operation> {
        match target.strip_prefix(TARGET_PREFIX)? {
            "LookupEvents" => Some(Operation::LookupEvents),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Operation::LookupEvents => "LookupEvents",
        }
    }

    pub fn access(self) -> Access {
        match self {
            Operation::LookupEvents => Access::Read,
        }
    }

    /// CloudTrail's `readOnly` for the operation's own audit record.
    pub fn read_only(self) -> bool {
        matches!(self.access(), Access::Read)
    }
}

/// What an operation answers: the response body, and what its audit record shows as
/// `responseElements` (null for read-only calls, whose responses CloudTrail does not record).
#[derive(Debug)]
pub struct Output {
    pub body: String,
    pub response_elements: Value,
}

impl Output {
    /// A read-only call's answer, serialized once and not recorded.
    pub fn unrecorded(body: String) -> Output {
        Output { body, response_elements: Value::Null }
    }
}

pub async fn execute(
    state: &AppState,
    caller: &Caller,
    operation: Operation,
    input: &Value,
) -> Result<Output, ApiError> {
    match operation {
        Operation::LookupEvents => lookup_events::execute(state, caller, input).await,
    }
}
