//! The CloudTrail API (2013-11-01): one enum of operations, one module per operation
//! group, each parsing its input, applying it and shaping its output as the botocore
//! model says.

pub mod inputs;
pub mod lookup_events;
pub mod public_keys;
pub mod token;
pub mod trail_settings;
pub mod trails;

use serde_json::Value;

use crate::api::{ApiError, Caller};
use crate::delivery::TrailKey;
use crate::identity::Access;
use crate::state::AppState;

/// The `X-Amz-Target` prefix of every CloudTrail operation.
pub const TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.";

macro_rules! operations {
    ($($name:ident => $access:ident),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Operation {
            $($name),*
        }

        impl Operation {
            pub fn from_target(target: &str) -> Option<Operation> {
                match target.strip_prefix(TARGET_PREFIX)? {
                    $(stringify!($name) => Some(Operation::$name),)*
                    _ => None,
                }
            }

            pub fn name(self) -> &'static str {
                match self {
                    $(Operation::$name => stringify!($name)),*
                }
            }

            pub fn access(self) -> Access {
                match self {
                    $(Operation::$name => Access::$access),*
                }
            }
        }
    };
}

operations! {
    LookupEvents => Read,
    CreateTrail => Manage,
    UpdateTrail => Manage,
    DeleteTrail => Manage,
    GetTrail => Read,
    DescribeTrails => Read,
    ListTrails => Read,
    GetTrailStatus => Read,
    StartLogging => Manage,
    StopLogging => Manage,
    PutEventSelectors => Manage,
    GetEventSelectors => Read,
    PutInsightSelectors => Manage,
    GetInsightSelectors => Read,
    AddTags => Manage,
    RemoveTags => Manage,
    ListTags => Read,
    ListPublicKeys => Read,
}

impl Operation {
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
    /// A trail this StopLogging stopped: its logging window closes at the call's own audit
    /// record, once the record is stored (see [`trails::settle_stop`]).
    pub stopped_trail: Option<TrailKey>,
}

impl Output {
    /// A read-only call's answer, serialized once and not recorded.
    pub fn unrecorded(body: String) -> Output {
        Output { body, response_elements: Value::Null, stopped_trail: None }
    }

    /// A read-only call's answer from a JSON value.
    pub fn read(value: &Value) -> Result<Output, ApiError> {
        serde_json::to_string(value).map(Output::unrecorded).map_err(|_| ApiError::internal())
    }

    /// A change's answer: the response, which its audit record also shows.
    pub fn recorded(value: Value) -> Output {
        Output { body: value.to_string(), response_elements: value, stopped_trail: None }
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
        Operation::CreateTrail => trails::create_trail(state, caller, input).await,
        Operation::UpdateTrail => trails::update_trail(state, caller, input).await,
        Operation::DeleteTrail => trails::delete_trail(state, caller, input).await,
        Operation::GetTrail => trails::get_trail(state, caller, input).await,
        Operation::DescribeTrails => trails::describe_trails(state, caller, input).await,
        Operation::ListTrails => trails::list_trails(state, caller, input).await,
        Operation::GetTrailStatus => trails::get_trail_status(state, caller, input).await,
        Operation::StartLogging => trails::start_logging(state, caller, input).await,
        Operation::StopLogging => trails::stop_logging(state, caller, input).await,
        Operation::PutEventSelectors => trail_settings::put_event_selectors(state, caller, input).await,
        Operation::GetEventSelectors => trail_settings::get_event_selectors(state, caller, input).await,
        Operation::PutInsightSelectors => trail_settings::put_insight_selectors(state, caller, input).await,
        Operation::GetInsightSelectors => trail_settings::get_insight_selectors(state, caller, input).await,
        Operation::AddTags => trail_settings::add_tags(state, caller, input).await,
        Operation::RemoveTags => trail_settings::remove_tags(state, caller, input).await,
        Operation::ListTags => trail_settings::list_tags(state, caller, input).await,
        Operation::ListPublicKeys => public_keys::list_public_keys(state, caller, input).await,
    }
}
