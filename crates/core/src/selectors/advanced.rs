//! Advanced event selectors (`AdvancedEventSelector`) for trails: validation and matching.
//!
//! Fields a trail may use, per event category (API reference, AdvancedFieldSelector):
//! - Management: `eventCategory`, `eventSource` (only `NotEquals` with `kms.amazonaws.com`
//!   and/or `rdsdata.amazonaws.com`), `readOnly`.
//! - Data: `eventCategory`, `resources.type` (required), `resources.ARN`, `readOnly`,
//!   `eventName`, `eventSource`, `eventType`, `sessionCredentialFromConsole`,
//!   `userIdentity.arn`.
//! - NetworkActivity: `eventCategory`, `eventSource` (required), `eventName`, `errorCode`,
//!   `vpcEndpointId`, `userIdentity.arn`.
//!
//! Operators: `eventCategory`, `readOnly`, `resources.type` and `errorCode` take only
//! `Equals`; `sessionCredentialFromConsole` only `Equals` and `NotEquals`; the network
//! activity `eventSource` only `Equals`; every other field any operator. There are no
//! wildcards: `*` is an ordinary character. Every selector needs exactly one `eventCategory`
//! condition; a data selector exactly one `resources.type` condition with one value ("You
//! can have only one resources.type field per selector"); a network activity selector one
//! `eventSource` condition with one value ("create a separate field selector for each event
//! source"). At most 500 condition values across all selectors of the trail; `Name` at most
//! 1000 characters; every value 1 to 2048 characters; no empty operator list.
//!
//! Evaluation ("How CloudTrail evaluates multiple conditions for a field", user guide):
//! within one field selector the SELECT operators (`Equals`, `StartsWith`, `EndsWith`) are
//! OR'd, every value of every one of them included; the DESELECT operators (`NotEquals`,
//! `NotStartsWith`, `NotEndsWith`) exclude the event when any of their values matches; the
//! two groups are AND'd. Field selectors of one selector are AND'd; selectors are OR'd.
//!
//! How record fields are read:
//! - A field the record lacks matches no SELECT value and triggers no DESELECT value.
//! - `readOnly` reads as "false" unless the record says it is read-only (see
//!   `EventView::is_write`); `sessionCredentialFromConsole` reads "true" or "false".
//! - `resources.type` holds when any resource of the record has a matching type.
//!   `resources.ARN` looks only at the resources of the selector's `resources.type`, and
//!   holds when one of them satisfies the whole condition. So `NotStartsWith
//!   arn:aws:s3:::bucket/` excludes the bucket's object events even though the same record
//!   also lists the bucket itself, whose ARN has no slash.
//!
//! The exact texts of AWS's messages for these rules are not published; the messages here
//! follow the wording of the rules above.

use super::{AdvancedEventSelector, AdvancedFieldSelector, EventView, SelectorError};

const MAX_CONDITION_VALUES: usize = 500;
const MAX_NAME_CHARS: usize = 1000;
const MAX_FIELD_CHARS: usize = 1000;
const MAX_VALUE_CHARS: usize = 2048;

const EVENT_CATEGORY: &str = "eventCategory";
const RESOURCES_TYPE: &str = "resources.type";
const RESOURCES_ARN: &str = "resources.ARN";
const EVENT_SOURCE: &str = "eventSource";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Operator {
    Equals,
    StartsWith,
    EndsWith,
    NotEquals,
    NotStartsWith,
    NotEndsWith,
}

impl Operator {
    fn name(self) -> &'static str {
        match self {
            Operator::Equals => "Equals",
            Operator::StartsWith => "StartsWith",
            Operator::EndsWith => "EndsWith",
            Operator::NotEquals => "NotEquals",
            Operator::NotStartsWith => "NotStartsWith",
            Operator::NotEndsWith => "NotEndsWith",
        }
    }

    fn holds(self, value: &str, operand: &str) -> bool {
        match self {
            Operator::Equals | Operator::NotEquals => value == operand,
            Operator::StartsWith | Operator::NotStartsWith => value.starts_with(operand),
            Operator::EndsWith | Operator::NotEndsWith => value.ends_with(operand),
        }
    }

    fn is_select(self) -> bool {
        matches!(self, Operator::Equals | Operator::StartsWith | Operator::EndsWith)
    }
}

/// The operator lists a field selector sets, each with its values.
fn operators(selector: &AdvancedFieldSelector) -> impl Iterator<Item = (Operator, &[String])> {
    [
        (Operator::Equals, &selector.equals),
        (Operator::StartsWith, &selector.starts_with),
        (Operator::EndsWith, &selector.ends_with),
        (Operator::NotEquals, &selector.not_equals),
        (Operator::NotStartsWith, &selector.not_starts_with),
        (Operator::NotEndsWith, &selector.not_ends_with),
    ]
    .into_iter()
    .filter_map(|(operator, values)| values.as_deref().map(|values| (operator, values)))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum EventCategory {
    Management,
    Data,
    NetworkActivity,
}

impl EventCategory {
    fn of(value: &str) -> Option<EventCategory> {
        match value {
            "Management" => Some(EventCategory::Management),
            "Data" => Some(EventCategory::Data),
            "NetworkActivity" => Some(EventCategory::NetworkActivity),
            _ => None,
        }
    }
}

/// Which operators a field accepts in a selector of a given category; `None` when trails
/// cannot use the field for that category at all.
fn allowed_operators(field: &str, category: EventCategory) -> Option<&'static [Operator]> {
    use EventCategory::*;
    use Operator::*;
    const ANY: &[Operator] = &[Equals, StartsWith, EndsWith, NotEquals, NotStartsWith, NotEndsWith];
    const EQUALS: &[Operator] = &[Equals];
    match (field, category) {
        (EVENT_CATEGORY, _) => Some(EQUALS),
        ("readOnly", Management | Data) => Some(EQUALS),
        (EVENT_SOURCE, Management) => Some(&[NotEquals]),
        (EVENT_SOURCE, Data) => Some(ANY),
        (EVENT_SOURCE, NetworkActivity) => Some(EQUALS),
        (RESOURCES_TYPE, Data) => Some(EQUALS),
        (RESOURCES_ARN | "eventType", Data) => Some(ANY),
        ("sessionCredentialFromConsole", Data) => Some(&[Equals, NotEquals]),
        ("eventName" | "userIdentity.arn", Data | NetworkActivity) => Some(ANY),
        ("errorCode", NetworkActivity) => Some(EQUALS),
        ("vpcEndpointId", NetworkActivity) => Some(ANY),
        _ => None,
    }
}

const KNOWN_FIELDS: [&str; 11] = [
    EVENT_CATEGORY,
    "readOnly",
    EVENT_SOURCE,
    "eventName",
    "eventType",
    RESOURCES_TYPE,
    RESOURCES_ARN,
    "sessionCredentialFromConsole",
    "userIdentity.arn",
    "errorCode",
    "vpcEndpointId",
];

fn category_name(category: EventCategory) -> &'static str {
    match category {
        EventCategory::Management => "Management",
        EventCategory::Data => "Data",
        EventCategory::NetworkActivity => "NetworkActivity",
    }
}

pub(super) fn validate(selectors: &[AdvancedEventSelector]) -> Result<(), SelectorError> {
    if selectors.is_empty() {
        return Err(SelectorError::invalid("Specify at least one AdvancedEventSelector for your trail"));
    }
    let values: usize = selectors
        .iter()
        .flat_map(|selector| &selector.field_selectors)
        .flat_map(operators)
        .map(|(_, values)| values.len())
        .sum();
    if values > MAX_CONDITION_VALUES {
        return Err(SelectorError::invalid(format!(
            "Specify up to {MAX_CONDITION_VALUES} values for all conditions in all advanced event selectors \
             for a trail; these selectors have {values}"
        )));
    }
    selectors.iter().try_for_each(validate_selector)
}

fn validate_selector(selector: &AdvancedEventSelector) -> Result<(), SelectorError> {
    if let Some(name) = &selector.name
        && name.chars().count() > MAX_NAME_CHARS
    {
        return Err(SelectorError::invalid(format!(
            "AdvancedEventSelector Name must be at most {MAX_NAME_CHARS} characters long"
        )));
    }
    if selector.field_selectors.is_empty() {
        return Err(SelectorError::invalid("Each AdvancedEventSelector must contain at least one FieldSelector"));
    }
    for field_selector in &selector.field_selectors {
        validate_shape(field_selector)?;
    }

    let category_selectors: Vec<_> =
        selector.field_selectors.iter().filter(|field_selector| field_selector.field == EVENT_CATEGORY).collect();
    let category = match category_selectors.as_slice() {
        [] => {
            return Err(SelectorError::invalid(
                "Each AdvancedEventSelector must contain the eventCategory field with the Equals operator",
            ));
        }
        [only] => {
            check_operators(only, &[Operator::Equals])?;
            let value = single_value(only)?;
            EventCategory::of(value).ok_or_else(|| {
                SelectorError::invalid(format!(
                    "Value {value} for field eventCategory is invalid. \
                     Valid values for trails are: Management, Data, NetworkActivity"
                ))
            })?
        }
        _ => return Err(SelectorError::invalid("You can have only one eventCategory field per selector")),
    };

    for field_selector in &selector.field_selectors {
        let field = field_selector.field.as_str();
        let Some(allowed) = allowed_operators(field, category) else {
            return Err(SelectorError::invalid(format!(
                "Field {field} is not supported for {} events on trails",
                category_name(category)
            )));
        };
        check_operators(field_selector, allowed)?;
        check_values(field_selector, category)?;
    }

    let count = |field: &str| selector.field_selectors.iter().filter(|fs| fs.field == field).count();
    match category {
        EventCategory::Data => match count(RESOURCES_TYPE) {
            0 => return Err(SelectorError::invalid("The resources.type field is required for Data events")),
            1 => {}
            _ => return Err(SelectorError::invalid("You can have only one resources.type field per selector")),
        },
        EventCategory::NetworkActivity => match count(EVENT_SOURCE) {
            0 => return Err(SelectorError::invalid("The eventSource field is required for NetworkActivity events")),
            1 => {}
            _ => {
                return Err(SelectorError::invalid(
                    "You can have only one eventSource field per NetworkActivity selector; \
                     add a selector for each event source",
                ));
            }
        },
        EventCategory::Management => {}
    }
    Ok(())
}

/// Checks that hold for any field: a known name, at least one operator, no empty list,
/// values of 1 to 2048 characters.
fn validate_shape(field_selector: &AdvancedFieldSelector) -> Result<(), SelectorError> {
    let field = field_selector.field.as_str();
    let well_formed = !field.is_empty()
        && field.chars().count() <= MAX_FIELD_CHARS
        && field.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '|');
    if !well_formed || !KNOWN_FIELDS.contains(&field) {
        return Err(SelectorError::invalid(format!("Value {field} for AdvancedFieldSelector.Field is invalid.")));
    }
    let mut any = false;
    for (operator, values) in operators(field_selector) {
        any = true;
        if values.is_empty() {
            return Err(SelectorError::invalid(format!(
                "Operator {} of field {field} must have at least one value",
                operator.name()
            )));
        }
        if values.iter().any(|value| value.is_empty() || value.chars().count() > MAX_VALUE_CHARS) {
            return Err(SelectorError::invalid(format!(
                "Values of operator {} of field {field} must be 1 to {MAX_VALUE_CHARS} characters long",
                operator.name()
            )));
        }
    }
    if !any {
        return Err(SelectorError::invalid(format!("Field {field} must have at least one operator")));
    }
    Ok(())
}

fn check_operators(field_selector: &AdvancedFieldSelector, allowed: &[Operator]) -> Result<(), SelectorError> {
    match operators(field_selector).find(|(operator, _)| !allowed.contains(operator)) {
        None => Ok(()),
        Some((operator, _)) => {
            let names: Vec<_> = allowed.iter().map(|operator| operator.name()).collect();
            Err(SelectorError::invalid(format!(
                "Operator {} is not valid for field {}. Valid operators: {}",
                operator.name(),
                field_selector.field,
                names.join(", ")
            )))
        }
    }
}

/// The one value of a field that takes exactly one `Equals` value.
fn single_value(field_selector: &AdvancedFieldSelector) -> Result<&str, SelectorError> {
    match field_selector.equals.as_deref() {
        Some([value]) => Ok(value),
        _ => Err(SelectorError::invalid(format!(
            "Field {} must have exactly one value for the Equals operator",
            field_selector.field
        ))),
    }
}

/// Value rules of the fields that have them.
fn check_values(field_selector: &AdvancedFieldSelector, category: EventCategory) -> Result<(), SelectorError> {
    let field = field_selector.field.as_str();
    let all_values = || operators(field_selector).flat_map(|(_, values)| values.iter().map(String::as_str));
    let allow_only = |valid: &[&str]| match all_values().find(|value| !valid.contains(value)) {
        None => Ok(()),
        Some(value) => Err(SelectorError::invalid(format!(
            "Value {value} for field {field} is invalid. Valid values are: {}",
            valid.join(", ")
        ))),
    };
    match (field, category) {
        ("readOnly" | "sessionCredentialFromConsole", _) => allow_only(&["true", "false"]),
        (EVENT_SOURCE, EventCategory::Management) => allow_only(&["kms.amazonaws.com", "rdsdata.amazonaws.com"]),
        (EVENT_SOURCE, EventCategory::NetworkActivity) => single_value(field_selector).map(drop),
        ("errorCode", _) => allow_only(&["VpceAccessDenied"]),
        (RESOURCES_TYPE, _) => {
            let value = single_value(field_selector)?;
            if is_resource_type(value) {
                Ok(())
            } else {
                Err(SelectorError::invalid(format!("Value {value} for field resources.type is invalid.")))
            }
        }
        _ => Ok(()),
    }
}

/// `AWS::Service::Type`. CloudTrail keeps adding advanced data event types (the user guide's
/// table grows every few months), so any name of that shape is accepted rather than a list
/// that would refuse next month's type; events of a type no service emits match nothing.
fn is_resource_type(value: &str) -> bool {
    let parts: Vec<&str> = value.split("::").collect();
    parts.len() == 3 && parts.iter().all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Does one advanced selector choose this event? All its field selectors must hold.
pub(super) fn matches(selector: &AdvancedEventSelector, event: &EventView<'_>) -> bool {
    // A selector with no conditions is never stored (validation refuses it); if one were
    // loaded from elsewhere it must not select everything.
    if selector.field_selectors.is_empty() {
        return false;
    }
    let resource_type = selector
        .field_selectors
        .iter()
        .find(|field_selector| field_selector.field == RESOURCES_TYPE)
        .and_then(|field_selector| field_selector.equals.as_deref())
        .and_then(|values| values.first())
        .map(String::as_str);
    selector.field_selectors.iter().all(|field_selector| field_matches(field_selector, event, resource_type))
}

fn field_matches(field_selector: &AdvancedFieldSelector, event: &EventView<'_>, resource_type: Option<&str>) -> bool {
    let check = |value: Option<&str>| condition_holds(field_selector, value);
    match field_selector.field.as_str() {
        EVENT_CATEGORY => check(Some(event.event_category())),
        "readOnly" => check(Some(if event.is_write() { "false" } else { "true" })),
        EVENT_SOURCE => check(event.event_source()),
        "eventName" => check(event.event_name()),
        "eventType" => check(event.event_type()),
        "errorCode" => check(event.error_code()),
        "vpcEndpointId" => check(event.vpc_endpoint_id()),
        "userIdentity.arn" => check(event.user_identity_arn()),
        "sessionCredentialFromConsole" => {
            check(Some(if event.session_credential_from_console() { "true" } else { "false" }))
        }
        RESOURCES_TYPE => {
            any_or_none(event.resources().iter().filter_map(|resource| resource.resource_type.as_deref()), &check)
        }
        RESOURCES_ARN => match resource_type {
            Some(resource_type) => any_or_none(event.arns_of_type(resource_type), &check),
            None => any_or_none(event.resources().iter().filter_map(|resource| resource.arn.as_deref()), &check),
        },
        // A field this matcher does not know cannot be evaluated: it does not hold.
        _ => false,
    }
}

/// A multi-valued field holds when one of its values satisfies the condition; with no
/// values it behaves like a missing field.
fn any_or_none<'v>(mut values: impl Iterator<Item = &'v str>, check: &impl Fn(Option<&str>) -> bool) -> bool {
    match values.next() {
        None => check(None),
        Some(first) => check(Some(first)) || values.any(|value| check(Some(value))),
    }
}

/// One field selector against one field value: some SELECT value holds (or there is no
/// SELECT operator) and no DESELECT value holds.
fn condition_holds(field_selector: &AdvancedFieldSelector, value: Option<&str>) -> bool {
    let mut has_select = false;
    let mut selected = false;
    for (operator, operands) in operators(field_selector) {
        let hit = value.is_some_and(|value| operands.iter().any(|operand| operator.holds(value, operand)));
        if operator.is_select() {
            has_select = true;
            selected |= hit;
        } else if hit {
            return false;
        }
    }
    !has_select || selected
}

/// The selector's `eventCategory`, when it has the one `Equals` value validation requires.
fn selector_category(selector: &AdvancedEventSelector) -> Option<&str> {
    selector
        .field_selectors
        .iter()
        .find(|field_selector| field_selector.field == EVENT_CATEGORY)
        .and_then(|field_selector| field_selector.equals.as_deref())
        .and_then(|values| match values {
            [only] => Some(only.as_str()),
            _ => None,
        })
}

pub(super) fn logs_management_events(selector: &AdvancedEventSelector) -> bool {
    selector_category(selector) == Some("Management")
}

/// A management selector logs writes unless its `readOnly` condition rules out "false".
pub(super) fn logs_management_writes(selector: &AdvancedEventSelector) -> bool {
    logs_management_events(selector)
        && selector
            .field_selectors
            .iter()
            .filter(|field_selector| field_selector.field == "readOnly")
            .all(|field_selector| condition_holds(field_selector, Some("false")))
}
