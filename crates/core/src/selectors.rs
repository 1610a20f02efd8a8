//! Event selectors: which events a trail delivers. The wire shapes of `PutEventSelectors`
//! and `GetEventSelectors` (basic `EventSelector` and `AdvancedEventSelector`), their
//! validation with CloudTrail's rules and error codes, and the matcher that the delivery
//! engine runs for every event and every trail.
//!
//! This module is pure: it never does IO, reads a clock or keeps state between calls. It
//! knows nothing of trails beyond their selectors; delivery, Regions and
//! `IncludeGlobalServiceEvents` are the caller's business (see `is_global_service_event`).
//!
//! What a selection delivers, in brief (each rule is spelled out where it is implemented):
//! - No selectors configured (`Selection::Default`): every management event, read and write;
//!   no data, network activity or Insights events.
//! - Basic selectors (`basic`): management events filtered by `ReadWriteType`,
//!   `IncludeManagementEvents` and `ExcludeManagementEventSources`; data events only for the
//!   three basic resource types, filtered by `DataResources` and `ReadWriteType`.
//! - Advanced selectors (`advanced`): management, data and network activity events chosen by
//!   field conditions. A record is delivered when any selector matches it.
//! - Insights events are never chosen by event selectors: they are delivered by the Insights
//!   machinery, to their own `CloudTrail-Insight` folder.

mod advanced;
mod basic;
#[cfg(test)]
mod corpus_tests;
mod event;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

pub use event::{EventResource, EventView, is_global_service_event};

/// The error code for every selector that breaks a rule.
pub const INVALID_EVENT_SELECTORS: &str = "InvalidEventSelectorsException";
/// The error code for a `PutEventSelectors` call that sends both kinds of selectors.
pub const INVALID_PARAMETER_COMBINATION: &str = "InvalidParameterCombinationException";

/// One basic event selector, as `PutEventSelectors` receives it and `GetEventSelectors`
/// returns it. Members absent from the request stay `None`; `Selection::for_trail` fills in
/// AWS's defaults before the selector is stored.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_write_type: Option<ReadWriteType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_management_events: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_resources: Option<Vec<DataResource>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_management_event_sources: Option<Vec<String>>,
}

/// `ReadWriteType`. A value outside the enum is kept as `Invalid` so that validation can
/// refuse it with `InvalidEventSelectorsException`, as CloudTrail does (the botocore model
/// lets any string through to the service), instead of failing the whole request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadWriteType {
    ReadOnly,
    WriteOnly,
    All,
    /// A value CloudTrail does not accept; never present in a validated selection.
    Invalid(String),
}

impl ReadWriteType {
    pub fn as_str(&self) -> &str {
        match self {
            ReadWriteType::ReadOnly => "ReadOnly",
            ReadWriteType::WriteOnly => "WriteOnly",
            ReadWriteType::All => "All",
            ReadWriteType::Invalid(text) => text,
        }
    }

    fn from_wire(text: &str) -> ReadWriteType {
        match text {
            "ReadOnly" => ReadWriteType::ReadOnly,
            "WriteOnly" => ReadWriteType::WriteOnly,
            "All" => ReadWriteType::All,
            other => ReadWriteType::Invalid(other.to_owned()),
        }
    }
}

impl Serialize for ReadWriteType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ReadWriteType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ReadWriteTypeVisitor;
        impl Visitor<'_> for ReadWriteTypeVisitor {
            type Value = ReadWriteType;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a ReadWriteType string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ReadWriteType::from_wire(v))
            }
        }
        deserializer.deserialize_str(ReadWriteTypeVisitor)
    }
}

/// One entry of a basic selector's `DataResources`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DataResource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

/// One advanced event selector: a name and field conditions that must all hold.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AdvancedEventSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Required by the model; a request without it deserializes to an empty list, which
    /// validation refuses with CloudTrail's error rather than a parse failure.
    #[serde(default)]
    pub field_selectors: Vec<AdvancedFieldSelector>,
}

/// One condition of an advanced selector: a record field and operator value lists.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AdvancedFieldSelector {
    /// Required by the model; absent reads as empty, which validation refuses.
    #[serde(default)]
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_with: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_with: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_equals: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_starts_with: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_ends_with: Option<Vec<String>>,
}

/// Why `PutEventSelectors` refused the selectors: an AWS error code and message, ready for
/// the API layer to send as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SelectorError {
    /// `InvalidEventSelectorsException` or `InvalidParameterCombinationException`.
    pub code: &'static str,
    pub message: String,
}

impl SelectorError {
    pub(crate) fn invalid(message: impl Into<String>) -> SelectorError {
        SelectorError { code: INVALID_EVENT_SELECTORS, message: message.into() }
    }
}

/// What a trail selects: nothing configured (the default: all management events, read and
/// write, no data events), basic selectors, or advanced selectors. Only `for_trail` builds
/// the `Basic` and `Advanced` forms from a request; a selection loaded back from storage was
/// validated when it was stored, and the matcher stays total (it never panics and treats a
/// condition it does not understand as not matching) even for one that was not.
///
/// For storage it serialises as `"Default"`, `{"Basic": [...]}` or `{"Advanced": [...]}`,
/// the selectors keeping their wire member names.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Selection {
    #[default]
    Default,
    Basic(Vec<EventSelector>),
    Advanced(Vec<AdvancedEventSelector>),
}

impl Selection {
    /// Validates what PutEventSelectors received for a trail (not an event data store) and
    /// returns the selection to store. Exactly one of the two must be given.
    ///
    /// Both given → `InvalidParameterCombinationException`. The botocore model lists only
    /// `InvalidEventSelectorsException` for PutEventSelectors and AWS's exact answer to this
    /// case is not documented; the combination exception is the one CloudTrail defines for
    /// "the combination of parameters provided is not valid". An empty list sent next to a
    /// non-empty one of the other kind counts as absent, since some clients serialise every
    /// list member. Neither given → `InvalidEventSelectorsException`.
    pub fn for_trail(
        basic: Option<Vec<EventSelector>>,
        advanced: Option<Vec<AdvancedEventSelector>>,
    ) -> Result<Selection, SelectorError> {
        let (basic, advanced) = match (basic, advanced) {
            (Some(basic), Some(advanced)) if basic.is_empty() && !advanced.is_empty() => (None, Some(advanced)),
            (Some(basic), Some(advanced)) if advanced.is_empty() && !basic.is_empty() => (Some(basic), None),
            other => other,
        };
        match (basic, advanced) {
            (Some(_), Some(_)) => Err(SelectorError {
                code: INVALID_PARAMETER_COMBINATION,
                message: "You can use either EventSelectors or AdvancedEventSelectors, but not both.".to_owned(),
            }),
            (None, None) => Err(SelectorError::invalid("Specify either EventSelectors or AdvancedEventSelectors.")),
            (Some(basic), None) => basic::validate(basic).map(Selection::Basic),
            (None, Some(advanced)) => advanced::validate(&advanced).map(|()| Selection::Advanced(advanced)),
        }
    }

    /// Does the trail deliver this event? Parse the record once with `EventView::parse`
    /// and ask every trail.
    pub fn matches(&self, event: &EventView<'_>) -> bool {
        match self {
            Selection::Default => basic::default_matches(event),
            Selection::Basic(selectors) => selectors.iter().any(|selector| basic::matches(selector, event)),
            Selection::Advanced(selectors) => selectors.iter().any(|selector| advanced::matches(selector, event)),
        }
    }

    /// Whether the trail logs write management events: `ApiCallRateInsight` needs them.
    pub fn logs_management_writes(&self) -> bool {
        match self {
            Selection::Default => true,
            Selection::Basic(selectors) => selectors.iter().any(basic::logs_management_writes),
            Selection::Advanced(selectors) => selectors.iter().any(advanced::logs_management_writes),
        }
    }

    /// Whether the trail logs any management events: `ApiErrorRateInsight` needs them.
    pub fn logs_management_events(&self) -> bool {
        match self {
            Selection::Default => true,
            Selection::Basic(selectors) => selectors.iter().any(basic::logs_management_events),
            Selection::Advanced(selectors) => selectors.iter().any(advanced::logs_management_events),
        }
    }

    /// `HasCustomEventSelectors` in DescribeTrails and GetTrail: true once PutEventSelectors
    /// has succeeded for the trail, whatever it set.
    pub fn has_custom(&self) -> bool {
        !matches!(self, Selection::Default)
    }

    /// `EventSelectors` for GetEventSelectors: the stored basic selectors, or for a trail
    /// without selectors the one selector AWS returns for a new trail (`ReadWriteType: All`,
    /// `IncludeManagementEvents: true`, empty `DataResources` and
    /// `ExcludeManagementEventSources`). `None` for a trail with advanced selectors.
    pub fn event_selectors(&self) -> Option<Vec<EventSelector>> {
        match self {
            Selection::Default => Some(vec![basic::default_selector()]),
            Selection::Basic(selectors) => Some(selectors.clone()),
            Selection::Advanced(_) => None,
        }
    }

    /// `AdvancedEventSelectors` for GetEventSelectors; `None` unless the trail uses them.
    pub fn advanced_event_selectors(&self) -> Option<&[AdvancedEventSelector]> {
        match self {
            Selection::Advanced(selectors) => Some(selectors),
            Selection::Default | Selection::Basic(_) => None,
        }
    }
}
