//! Basic event selectors (`EventSelector`): validation and matching.
//!
//! Rules, from the CloudTrail API reference (EventSelector, DataResource,
//! InvalidEventSelectorsException) and the user guide ("Logging management events",
//! "Logging data events"):
//! - A trail has 1 to 5 basic selectors. A record is delivered when any selector matches.
//! - `ReadWriteType` (default `All`) filters management and data events alike.
//! - `IncludeManagementEvents` (default true): false drops every management event.
//! - `ExcludeManagementEventSources` may hold only `kms.amazonaws.com` and
//!   `rdsdata.amazonaws.com`; it drops management events from those sources.
//! - `DataResources` select data events of three types only: `AWS::S3::Object`,
//!   `AWS::Lambda::Function`, `AWS::DynamoDB::Table`. Every other data event, and every
//!   network activity or Insights event, is out of reach of basic selectors.
//! - At most 250 data resource values across all selectors of a trail; values that select
//!   all resources of a type (`arn:aws:s3`, `arn:aws:lambda`, ...) do not count, as the
//!   model says the limit "does not apply if you configure resource logging for all data
//!   events".
//!
//! Messages quoted from CloudTrail: "Value <v> for DataResources.Values is invalid.",
//! "Value <t> for DataResources.Type is invalid. Valid values are: ...", "Specify a valid
//! number of DataResources.Values (0 to 250) for all your selectors". The others follow the
//! same wording; their exact AWS text is not published.

use crate::lookup::Category;

use super::{DataResource, EventSelector, EventView, ReadWriteType, SelectorError};

const MAX_SELECTORS: usize = 5;
const MAX_DATA_RESOURCE_VALUES: usize = 250;
const EXCLUDABLE_SOURCES: [&str; 2] = ["kms.amazonaws.com", "rdsdata.amazonaws.com"];

pub(super) const S3_OBJECT: &str = "AWS::S3::Object";
pub(super) const LAMBDA_FUNCTION: &str = "AWS::Lambda::Function";
pub(super) const DYNAMODB_TABLE: &str = "AWS::DynamoDB::Table";

/// The selector AWS reports for a trail that never had PutEventSelectors called.
pub(super) fn default_selector() -> EventSelector {
    EventSelector {
        read_write_type: Some(ReadWriteType::All),
        include_management_events: Some(true),
        data_resources: Some(Vec::new()),
        exclude_management_event_sources: Some(Vec::new()),
    }
}

/// The default selection: every management event, read or write; nothing else.
pub(super) fn default_matches(event: &EventView<'_>) -> bool {
    event.category() == Category::Management
}

/// Checks the selectors and returns them with AWS's defaults filled in, as GetEventSelectors
/// will return them.
pub(super) fn validate(selectors: Vec<EventSelector>) -> Result<Vec<EventSelector>, SelectorError> {
    if selectors.is_empty() || selectors.len() > MAX_SELECTORS {
        return Err(SelectorError::invalid(format!(
            "Specify a valid number of EventSelectors (1 to {MAX_SELECTORS}) for your trail"
        )));
    }
    let mut counted_values = 0;
    let mut normalized = Vec::with_capacity(selectors.len());
    for selector in selectors {
        if let Some(ReadWriteType::Invalid(value)) = &selector.read_write_type {
            return Err(SelectorError::invalid(format!(
                "Value {value} for ReadWriteType is invalid. Valid values are: ReadOnly, WriteOnly, All"
            )));
        }
        for source in selector.exclude_management_event_sources.iter().flatten() {
            if !EXCLUDABLE_SOURCES.contains(&source.as_str()) {
                return Err(SelectorError::invalid(format!(
                    "Value {source} for ExcludeManagementEventSources is invalid. Valid values are: {}",
                    EXCLUDABLE_SOURCES.join(", ")
                )));
            }
        }
        for resource in selector.data_resources.iter().flatten() {
            let kind = resource_kind(resource)?;
            for value in resource.values.iter().flatten() {
                match value_scope(kind, value) {
                    Some(Scope::All) => {}
                    Some(Scope::Specific) => counted_values += 1,
                    None => {
                        return Err(SelectorError::invalid(format!(
                            "Value {value} for DataResources.Values is invalid."
                        )));
                    }
                }
            }
        }
        normalized.push(EventSelector {
            read_write_type: Some(selector.read_write_type.unwrap_or(ReadWriteType::All)),
            include_management_events: Some(selector.include_management_events.unwrap_or(true)),
            data_resources: Some(selector.data_resources.unwrap_or_default()),
            exclude_management_event_sources: Some(selector.exclude_management_event_sources.unwrap_or_default()),
        });
    }
    if counted_values > MAX_DATA_RESOURCE_VALUES {
        return Err(SelectorError::invalid(format!(
            "Specify a valid number of DataResources.Values (0 to {MAX_DATA_RESOURCE_VALUES}) for all your selectors"
        )));
    }
    Ok(normalized)
}

/// Does one basic selector choose this event?
pub(super) fn matches(selector: &EventSelector, event: &EventView<'_>) -> bool {
    if !read_write_allows(selector, event) {
        return false;
    }
    match event.category() {
        Category::Management => {
            selector.include_management_events.unwrap_or(true)
                && !selector
                    .exclude_management_event_sources
                    .iter()
                    .flatten()
                    .any(|source| event.event_source() == Some(source.as_str()))
        }
        Category::Data => {
            selector.data_resources.iter().flatten().any(|resource| data_resource_matches(resource, event))
        }
        Category::Insight | Category::NetworkActivity | Category::Other => false,
    }
}

pub(super) fn logs_management_events(selector: &EventSelector) -> bool {
    selector.include_management_events.unwrap_or(true)
}

pub(super) fn logs_management_writes(selector: &EventSelector) -> bool {
    logs_management_events(selector)
        && matches!(
            selector.read_write_type.as_ref().unwrap_or(&ReadWriteType::All),
            ReadWriteType::All | ReadWriteType::WriteOnly
        )
}

fn read_write_allows(selector: &EventSelector, event: &EventView<'_>) -> bool {
    match selector.read_write_type.as_ref().unwrap_or(&ReadWriteType::All) {
        ReadWriteType::All => true,
        ReadWriteType::ReadOnly => !event.is_write(),
        ReadWriteType::WriteOnly => event.is_write(),
        ReadWriteType::Invalid(_) => false,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    S3Object,
    LambdaFunction,
    DynamoDbTable,
}

impl Kind {
    fn resource_type(self) -> &'static str {
        match self {
            Kind::S3Object => S3_OBJECT,
            Kind::LambdaFunction => LAMBDA_FUNCTION,
            Kind::DynamoDbTable => DYNAMODB_TABLE,
        }
    }

    /// The service part of the ARNs of this kind.
    fn service(self) -> &'static str {
        match self {
            Kind::S3Object => "s3",
            Kind::LambdaFunction => "lambda",
            Kind::DynamoDbTable => "dynamodb",
        }
    }

    fn of(resource_type: &str) -> Option<Kind> {
        match resource_type {
            S3_OBJECT => Some(Kind::S3Object),
            LAMBDA_FUNCTION => Some(Kind::LambdaFunction),
            DYNAMODB_TABLE => Some(Kind::DynamoDbTable),
            _ => None,
        }
    }
}

fn resource_kind(resource: &DataResource) -> Result<Kind, SelectorError> {
    resource.r#type.as_deref().and_then(Kind::of).ok_or_else(|| {
        SelectorError::invalid(format!(
            "Value {} for DataResources.Type is invalid. \
             Valid values are: {DYNAMODB_TABLE}, {LAMBDA_FUNCTION}, {S3_OBJECT}",
            resource.r#type.as_deref().unwrap_or("null")
        ))
    })
}

/// What a valid `DataResources.Values` entry selects.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scope {
    /// Every resource of the type: `arn:<partition>:s3` (or `arn:<partition>:s3:::`),
    /// `arn:<partition>:lambda`, `arn:<partition>:dynamodb`.
    All,
    /// One bucket (and key prefix), one function, one table.
    Specific,
}

/// `None` when CloudTrail refuses the value. Accepted forms, per the DataResource docs:
/// - S3: `arn:aws:s3` or `arn:aws:s3:::` for all buckets; `arn:aws:s3:::bucket/` for every
///   object of a bucket; `arn:aws:s3:::bucket/prefix` for the objects under a key prefix. A
///   bare bucket ARN without the slash, an empty bucket or a wildcard is refused.
/// - Lambda: `arn:aws:lambda` for all functions, or a function ARN
///   `arn:aws:lambda:<region>:<account>:function:<name>` (optionally with a version or alias).
/// - DynamoDB: `arn:aws:dynamodb` for all tables, or `arn:aws:dynamodb:<region>:<account>:table/<name>`.
fn value_scope(kind: Kind, value: &str) -> Option<Scope> {
    let rest = value.strip_prefix("arn:")?;
    let (partition, rest) = rest.split_once(':').unwrap_or((rest, ""));
    if !is_partition(partition) {
        return None;
    }
    let service = kind.service();
    if rest == service || (kind == Kind::S3Object && rest == "s3:::") {
        return Some(Scope::All);
    }
    let rest = rest.strip_prefix(service)?.strip_prefix(':')?;
    let specific = match kind {
        Kind::S3Object => rest
            .strip_prefix("::")
            .and_then(|path| path.split_once('/'))
            .is_some_and(|(bucket, _prefix)| is_bucket_name(bucket)),
        Kind::LambdaFunction => {
            let mut parts = rest.splitn(5, ':');
            let (region, account, resource, name, qualifier) =
                (parts.next(), parts.next(), parts.next(), parts.next(), parts.next());
            region.is_some_and(is_region)
                && account.is_some_and(is_account_id)
                && resource == Some("function")
                && name.is_some_and(|name| is_name(name, 1, 64, "-_"))
                && qualifier.is_none_or(|qualifier| is_name(qualifier, 1, 128, "-_$"))
        }
        Kind::DynamoDbTable => {
            let mut parts = rest.splitn(3, ':');
            let (region, account, resource) = (parts.next(), parts.next(), parts.next());
            region.is_some_and(is_region)
                && account.is_some_and(is_account_id)
                && resource
                    .and_then(|resource| resource.strip_prefix("table/"))
                    .is_some_and(|table| is_name(table, 3, 255, "-_."))
        }
    };
    specific.then_some(Scope::Specific)
}

/// Does a data resource entry choose this event? The event must carry a resource of the
/// entry's type whose ARN (or `ARNPrefix`) the entry covers:
/// - S3 values are ARN prefixes: `arn:aws:s3:::bucket/photos` covers
///   `arn:aws:s3:::bucket/photos/cat.jpg`, and `arn:aws:s3` covers every object.
/// - Lambda function ARNs are exact ("helloworld" does not cover "helloworld2"); a qualified
///   ARN of the function (`...:function:helloworld:$LATEST`) is the same function.
/// - DynamoDB table ARNs are exact.
/// - `arn:aws:lambda` and `arn:aws:dynamodb` cover every resource of that partition.
fn data_resource_matches(resource: &DataResource, event: &EventView<'_>) -> bool {
    let Some(kind) = resource.r#type.as_deref().and_then(Kind::of) else {
        return false;
    };
    let values = resource.values.as_deref().unwrap_or_default();
    event.arns_of_type(kind.resource_type()).any(|arn| values.iter().any(|value| value_covers(kind, value, arn)))
}

fn value_covers(kind: Kind, value: &str, arn: &str) -> bool {
    match kind {
        Kind::S3Object => arn.starts_with(value),
        Kind::LambdaFunction => {
            arn == value || arn.strip_prefix(value).is_some_and(|qualifier| qualifier.starts_with(':'))
        }
        Kind::DynamoDbTable => match value_scope(kind, value) {
            Some(Scope::All) => arn.strip_prefix(value).is_some_and(|rest| rest.starts_with(':')),
            _ => arn == value,
        },
    }
}

/// `aws`, `aws-cn`, `aws-us-gov`, `aws-iso-b`, ...
fn is_partition(text: &str) -> bool {
    text.strip_prefix("aws").is_some_and(|rest| {
        rest.is_empty()
            || (rest.starts_with('-')
                && rest[1..].split('-').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase())))
    })
}

fn is_region(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// Bucket names as S3 has allowed them, legacy us-east-1 names (capitals, underscores, up to
/// 255 characters) included.
fn is_bucket_name(text: &str) -> bool {
    is_name(text, 3, 255, "-_.")
}

fn is_name(text: &str, min: usize, max: usize, punctuation: &str) -> bool {
    (min..=max).contains(&text.len()) && text.chars().all(|c| c.is_ascii_alphanumeric() || punctuation.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_data_resource_values() {
        use Scope::*;
        let cases: &[(Kind, &str, Option<Scope>)] = &[
            (Kind::S3Object, "arn:aws:s3", Some(All)),
            (Kind::S3Object, "arn:aws:s3:::", Some(All)),
            (Kind::S3Object, "arn:aws-cn:s3", Some(All)),
            (Kind::S3Object, "arn:aws:s3:::bucket-1/", Some(Specific)),
            (Kind::S3Object, "arn:aws:s3:::bucket-1/my-images", Some(Specific)),
            (Kind::S3Object, "arn:aws:s3:::bucket-1", None),
            (Kind::S3Object, "arn:aws:s3:::*/*", None),
            (Kind::S3Object, "arn:aws:s3:::*", None),
            (Kind::S3Object, "arn:aws:s3:::/", None),
            (Kind::S3Object, "bucket-1/", None),
            (Kind::S3Object, "arn:aws:s3:*", None),
            (Kind::S3Object, "arn:aws:lambda", None),
            (Kind::S3Object, "arn:azure:s3", None),
            (Kind::LambdaFunction, "arn:aws:lambda", Some(All)),
            (Kind::LambdaFunction, "arn:aws:lambda:us-west-2:111111111111:function:helloworld", Some(Specific)),
            (Kind::LambdaFunction, "arn:aws:lambda:us-west-2:111111111111:function:helloworld:$LATEST", Some(Specific)),
            (Kind::LambdaFunction, "arn:aws:lambda:*", None),
            (Kind::LambdaFunction, "arn:aws:lambda:us-west-2:111111111111:function:", None),
            (Kind::LambdaFunction, "arn:aws:lambda:us-west-2:1111:function:f", None),
            (Kind::LambdaFunction, "arn:aws:lambda:us-west-2:111111111111:layer:f", None),
            (Kind::DynamoDbTable, "arn:aws:dynamodb", Some(All)),
            (Kind::DynamoDbTable, "arn:aws:dynamodb:us-east-1:123456789012:table/Orders", Some(Specific)),
            (Kind::DynamoDbTable, "arn:aws:dynamodb:us-east-1:123456789012:table/", None),
            (Kind::DynamoDbTable, "arn:aws:dynamodb:us-east-1:123456789012:stream/x", None),
        ];
        for (kind, value, expected) in cases {
            assert_eq!(value_scope(*kind, value), *expected, "{value}");
        }
    }

    #[test]
    fn lambda_arns_are_exact_and_dynamodb_all_is_by_partition() {
        let function = "arn:aws:lambda:us-west-2:111111111111:function:helloworld";
        assert!(value_covers(Kind::LambdaFunction, function, function));
        assert!(value_covers(Kind::LambdaFunction, function, &format!("{function}:$LATEST")));
        assert!(!value_covers(Kind::LambdaFunction, function, &format!("{function}2")));
        assert!(value_covers(Kind::LambdaFunction, "arn:aws:lambda", function));
        assert!(!value_covers(Kind::LambdaFunction, "arn:aws-cn:lambda", function));
        let table = "arn:aws:dynamodb:us-east-1:123456789012:table/Orders";
        assert!(value_covers(Kind::DynamoDbTable, "arn:aws:dynamodb", table));
        assert!(!value_covers(Kind::DynamoDbTable, "arn:aws:dynamodb", "arn:aws:dynamodbx:1"));
        assert!(!value_covers(Kind::DynamoDbTable, &format!("{table}2"), table));
    }
}
