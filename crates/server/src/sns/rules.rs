//! The vocabulary and rules of SNS topics: [`SnsError`], topic and subscription ARNs, tags,
//! protocols, and the checks every topic name, attribute, endpoint and subject must pass.
//!
//! Pure functions only: nothing here reads a clock, a file or the network.

use serde::{Deserialize, Serialize};

/// Tags per topic.
pub const MAX_TAGS: usize = 50;
/// `MaximumMessageSize` when the topic does not set it: 256 KiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 262_144;

/// Attributes a topic stores as given (`CreateTopic`, `SetTopicAttributes`).
const SETTABLE_ATTRIBUTES: &[&str] = &[
    "DisplayName",
    "Policy",
    "DeliveryPolicy",
    "MaximumMessageSize",
    "TracingConfig",
    "KmsMasterKeyId",
    "HTTPSuccessFeedbackRoleArn",
    "HTTPSuccessFeedbackSampleRate",
    "HTTPFailureFeedbackRoleArn",
    "FirehoseSuccessFeedbackRoleArn",
    "FirehoseSuccessFeedbackSampleRate",
    "FirehoseFailureFeedbackRoleArn",
    "LambdaSuccessFeedbackRoleArn",
    "LambdaSuccessFeedbackSampleRate",
    "LambdaFailureFeedbackRoleArn",
    "SQSSuccessFeedbackRoleArn",
    "SQSSuccessFeedbackSampleRate",
    "SQSFailureFeedbackRoleArn",
    "ApplicationSuccessFeedbackRoleArn",
    "ApplicationSuccessFeedbackSampleRate",
    "ApplicationFailureFeedbackRoleArn",
];

/// Why an SNS operation failed. [`SnsError::kind`] is what the API maps to AWS error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnsError {
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    AuthorizationError(String),
    #[error("Topic limit exceeded")]
    TopicLimitExceeded,
    #[error("Could not complete request: tag quota of per resource exceeded")]
    TagLimitExceeded,
    #[error("cannot save the topics: {0}")]
    Storage(String),
    #[error("no async runtime to deliver messages on")]
    NoRuntime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    InvalidParameter,
    AuthorizationError,
    TopicLimitExceeded,
    TagLimitExceeded,
    Internal,
}

impl SnsError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SnsError::NotFound(_) => ErrorKind::NotFound,
            SnsError::InvalidParameter(_) => ErrorKind::InvalidParameter,
            SnsError::AuthorizationError(_) => ErrorKind::AuthorizationError,
            SnsError::TopicLimitExceeded => ErrorKind::TopicLimitExceeded,
            SnsError::TagLimitExceeded => ErrorKind::TagLimitExceeded,
            SnsError::Storage(_) | SnsError::NoRuntime => ErrorKind::Internal,
        }
    }

    pub fn invalid(message: impl Into<String>) -> SnsError {
        SnsError::InvalidParameter(message.into())
    }

    pub fn topic_not_found() -> SnsError {
        SnsError::NotFound("Topic does not exist")
    }

    pub fn subscription_not_found() -> SnsError {
        SnsError::NotFound("Subscription does not exist")
    }
}

/// A topic named by its ARN: `arn:aws:sns:<region>:<account>:<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRef {
    pub region: String,
    pub account_id: String,
    pub name: String,
}

impl TopicRef {
    /// Parses an ARN given as the parameter `parameter` (`TopicArn`, `TargetArn`), with
    /// SNS's messages for each way it can be wrong.
    pub fn parse(arn: &str, parameter: &str) -> Result<TopicRef, SnsError> {
        let parts = arn_parts(arn, parameter)?;
        match parts.as_slice() {
            [_, _, _, region, account, name] if is_topic_name(name) && !region.is_empty() && is_account(account) => {
                Ok(TopicRef {
                    region: (*region).to_owned(),
                    account_id: (*account).to_owned(),
                    name: (*name).to_owned(),
                })
            }
            _ => Err(SnsError::invalid(format!("Invalid parameter: {parameter}"))),
        }
    }

    pub fn arn(&self) -> String {
        format!("arn:aws:sns:{}:{}:{}", self.region, self.account_id, self.name)
    }

    /// (account, Region, name): the order in which topics are listed.
    pub fn key(&self) -> (String, String, String) {
        (self.account_id.clone(), self.region.clone(), self.name.clone())
    }
}

/// A subscription named by its ARN: the topic's ARN and `:<subscription id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRef {
    pub topic: TopicRef,
    pub id: String,
}

impl SubscriptionRef {
    pub fn parse(arn: &str) -> Result<SubscriptionRef, SnsError> {
        let parts = arn_parts(arn, "SubscriptionArn")?;
        match parts.as_slice() {
            [_, _, _, region, account, name, id] if is_topic_name(name) && is_account(account) && !id.is_empty() => {
                Ok(SubscriptionRef {
                    topic: TopicRef {
                        region: (*region).to_owned(),
                        account_id: (*account).to_owned(),
                        name: (*name).to_owned(),
                    },
                    id: (*id).to_owned(),
                })
            }
            _ => Err(SnsError::invalid("Invalid parameter: SubscriptionArn")),
        }
    }

    pub fn arn(&self) -> String {
        format!("{}:{}", self.topic.arn(), self.id)
    }
}

fn arn_parts<'a>(arn: &'a str, parameter: &str) -> Result<Vec<&'a str>, SnsError> {
    if !arn.starts_with("arn:") {
        return Err(SnsError::invalid(format!("Invalid parameter: {parameter} Reason: {arn} does not start with arn")));
    }
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() < 6 {
        return Err(SnsError::invalid(format!(
            "Invalid parameter: {parameter} Reason: An ARN must have at least 6 elements, not {}",
            parts.len()
        )));
    }
    if parts[1] != "aws" || parts[2] != "sns" {
        return Err(SnsError::invalid(format!("Invalid parameter: {parameter}")));
    }
    Ok(parts)
}

fn is_account(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// SNS's rule for standard topic names: 1 to 256 ASCII letters, digits, `_` and `-`.
pub fn is_topic_name(name: &str) -> bool {
    (1..=256).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Http,
    Https,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Https => "https",
        }
    }
}

pub fn parse_protocol(protocol: &str) -> Result<Protocol, SnsError> {
    match protocol {
        "http" => Ok(Protocol::Http),
        "https" => Ok(Protocol::Https),
        "email" | "email-json" | "sms" | "sqs" | "application" | "lambda" | "firehose" => {
            Err(SnsError::invalid(format!(
                "Invalid parameter: Protocol Reason: {protocol} subscriptions are not supported by this endpoint; use http or https"
            )))
        }
        other => Err(SnsError::invalid(format!(
            "Invalid parameter: Amazon SNS does not support this protocol string: {other}"
        ))),
    }
}

pub fn check_endpoint(protocol: Protocol, endpoint: &str) -> Result<(), SnsError> {
    let prefix = format!("{}://", protocol.as_str());
    if !endpoint.get(..prefix.len()).is_some_and(|start| start.eq_ignore_ascii_case(&prefix)) {
        return Err(SnsError::invalid("Invalid parameter: Endpoint must match the specified protocol"));
    }
    match reqwest::Url::parse(endpoint) {
        Ok(url) if url.host_str().is_some_and(|host| !host.is_empty()) => Ok(()),
        _ => Err(SnsError::invalid("Invalid parameter: Endpoint Reason: not a valid URL")),
    }
}

/// SNS's rule for `Subject`: UTF-8 without line breaks or control characters, under 100
/// characters.
pub fn check_subject(subject: &str) -> Result<(), SnsError> {
    if subject.is_empty() || subject.chars().count() >= 100 || subject.chars().any(char::is_control) {
        return Err(SnsError::invalid("Invalid parameter: Subject"));
    }
    Ok(())
}

pub fn check_attribute(attribute: &str, value: &str) -> Result<(), SnsError> {
    match attribute {
        "SignatureVersion" => {
            return Err(SnsError::invalid(
                "Invalid parameter: SignatureVersion Reason: this endpoint does not sign messages",
            ));
        }
        "FifoTopic" | "ContentBasedDeduplication" | "ArchivePolicy" => {
            return Err(SnsError::invalid(format!(
                "Invalid parameter: {attribute} Reason: FIFO topics are not supported by this endpoint"
            )));
        }
        _ if !SETTABLE_ATTRIBUTES.contains(&attribute) => {
            return Err(SnsError::invalid("Invalid parameter: AttributeName"));
        }
        _ => {}
    }
    let valid = match attribute {
        "Policy" | "DeliveryPolicy" => {
            value.is_empty()
                || matches!(serde_json::from_str::<serde_json::Value>(value), Ok(serde_json::Value::Object(_)))
        }
        "MaximumMessageSize" => {
            value.is_empty() || value.parse::<usize>().is_ok_and(|size| (1024..=1_048_576).contains(&size))
        }
        "TracingConfig" => value.is_empty() || value == "PassThrough" || value == "Active",
        "DisplayName" => value.chars().count() <= 100,
        _ => true,
    };
    if valid { Ok(()) } else { Err(SnsError::invalid(format!("Invalid parameter: {attribute}"))) }
}

pub fn check_tags(tags: &[Tag]) -> Result<(), SnsError> {
    if tags.len() > MAX_TAGS {
        return Err(SnsError::TagLimitExceeded);
    }
    for (index, tag) in tags.iter().enumerate() {
        if tags[..index].iter().any(|earlier| earlier.key == tag.key) {
            return Err(SnsError::invalid("Invalid parameter: Duplicated keys are not allowed."));
        }
        if tag.key.is_empty() || tag.key.chars().count() > 128 || tag.value.chars().count() > 256 {
            return Err(SnsError::invalid("Invalid parameter: Tags"));
        }
    }
    Ok(())
}

pub fn same_tags(stored: &[Tag], asked: &[Tag]) -> bool {
    stored.len() == asked.len() && asked.iter().all(|tag| stored.contains(tag))
}

/// The access policy SNS gives a topic that has none of its own.
pub fn default_policy(topic: &TopicRef) -> String {
    serde_json::json!({
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [{
            "Sid": "__default_statement_ID",
            "Effect": "Allow",
            "Principal": { "AWS": "*" },
            "Action": [
                "SNS:GetTopicAttributes",
                "SNS:SetTopicAttributes",
                "SNS:AddPermission",
                "SNS:RemovePermission",
                "SNS:DeleteTopic",
                "SNS:Subscribe",
                "SNS:ListSubscriptionsByTopic",
                "SNS:Publish"
            ],
            "Resource": topic.arn(),
            "Condition": { "StringEquals": { "AWS:SourceOwner": topic.account_id } }
        }]
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_sns_rules() {
        assert!(is_topic_name("a"));
        assert!(is_topic_name("Audit_Log-2024"));
        assert!(is_topic_name(&"x".repeat(256)));
        assert!(!is_topic_name(""));
        assert!(!is_topic_name(&"x".repeat(257)));
        assert!(!is_topic_name("has space"));
        assert!(!is_topic_name("dot.fifo"));
        assert!(!is_topic_name("ünï"));
    }

    #[test]
    fn arns_are_parsed_with_sns_messages() {
        let topic = TopicRef::parse("arn:aws:sns:eu-west-1:123456789012:alerts", "TopicArn").unwrap();
        assert_eq!(
            topic,
            TopicRef { region: "eu-west-1".into(), account_id: "123456789012".into(), name: "alerts".into() }
        );
        assert_eq!(topic.arn(), "arn:aws:sns:eu-west-1:123456789012:alerts");
        assert_eq!(
            TopicRef::parse("fake_topic", "TopicArn").unwrap_err(),
            SnsError::invalid("Invalid parameter: TopicArn Reason: fake_topic does not start with arn")
        );
        assert_eq!(
            TopicRef::parse("arn:aws:sns", "TopicArn").unwrap_err(),
            SnsError::invalid("Invalid parameter: TopicArn Reason: An ARN must have at least 6 elements, not 3")
        );
        assert!(TopicRef::parse("arn:aws:sqs:us-east-1:123456789012:q", "TopicArn").is_err());
        assert!(TopicRef::parse("arn:aws:sns:us-east-1:123456789012:a:b", "TopicArn").is_err());
        let subscription = SubscriptionRef::parse("arn:aws:sns:us-east-1:123456789012:alerts:0f-1").unwrap();
        assert_eq!(subscription.id, "0f-1");
        assert_eq!(subscription.arn(), "arn:aws:sns:us-east-1:123456789012:alerts:0f-1");
        assert!(SubscriptionRef::parse("arn:aws:sns:us-east-1:123456789012:alerts").is_err());
    }

    #[test]
    fn attributes_and_subjects_are_checked() {
        assert!(check_attribute("DisplayName", "Audit").is_ok());
        assert!(check_attribute("TracingConfig", "Sometimes").is_err());
        assert!(check_attribute("SignatureVersion", "2").unwrap_err().to_string().contains("does not sign"));
        assert!(check_subject("Log delivered").is_ok());
        assert!(check_subject("").is_err());
        assert!(check_subject("tab\there").is_err());
    }
}
