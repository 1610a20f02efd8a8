//! The CloudTrail record as Trailkeeper keeps it: the JSON text exactly as sent (minified),
//! plus the handful of fields that partition, order, deduplicate and look events up.
//!
//! A record is kept byte for byte; the only edits Trailkeeper ever makes are to insert
//! `eventID` and `recipientAccountId` when a record arrives without them, and to drop
//! insignificant whitespace. Unknown fields are kept. Field values of unexpected types
//! never reject a record unless the field is one CloudTrail requires.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::json::minify;
use crate::lookup::{Category, FieldValues, LookupFields, Resource};
use crate::time::parse_event_time;

/// CloudTrail's limit on one event: 256 KB.
pub const MAX_RECORD_BYTES: usize = 256 * 1024;

/// What the ingest path knows about a record before reading it.
#[derive(Debug, Clone, Copy)]
pub struct RecordDefaults<'a> {
    /// `recipientAccountId` for a record that has none: the caller's account.
    pub account_id: &'a str,
    /// The Region of a record without `awsRegion`: the Region the request was signed for.
    pub region: &'a str,
}

/// A record that passed validation, ready to be appended to the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRecord {
    /// The record's JSON text as it will be stored and returned in `CloudTrailEvent`.
    pub json: Bytes,
    /// `eventTime` in epoch milliseconds.
    pub event_time_ms: i64,
    pub category: Category,
    /// The eventID, `recipientAccountId` (the account whose history holds the event),
    /// `awsRegion` (or the default Region when the record has none) and the lookup fields.
    pub fields: LookupFields,
}

/// Why a record was refused. The message is the per-record reason returned to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record is {size} bytes, over the limit of {MAX_RECORD_BYTES} bytes")]
    TooLarge { size: usize },
    #[error("record is not a JSON object: {0}")]
    NotJson(String),
    #[error("record has no {0}")]
    MissingField(&'static str),
    #[error("{field} must be a string")]
    NotAString { field: &'static str },
    #[error("invalid eventTime: {0}")]
    BadTime(#[from] crate::time::TimeParseError),
    #[error("invalid {field} {value:?}: expected 1 to 64 letters, digits, '-' or '_'")]
    BadPartitionValue { field: &'static str, value: String },
    #[error("invalid eventID {0:?}: expected 1 to 128 printable characters")]
    BadEventId(String),
}

/// Generates an `eventID` for a record that has none. The core never reads a random
/// source itself, so the caller supplies one (a UUID v4 in the server).
pub trait EventIdSource {
    fn next_event_id(&mut self) -> String;
}

impl<F: FnMut() -> String> EventIdSource for F {
    fn next_event_id(&mut self) -> String {
        self()
    }
}

/// Validates one record and prepares it for storage.
pub fn parse_record(
    raw: &[u8],
    defaults: RecordDefaults<'_>,
    ids: &mut dyn EventIdSource,
) -> Result<ParsedRecord, RecordError> {
    parse(raw, defaults, ids, Bytes::copy_from_slice)
}

/// [`parse_record`] for a record `raw` that lies within `body`, a request's buffer: a record
/// kept as written (already compact, nothing filled in) shares `body` instead of being
/// copied, so a request's events hold one buffer between them rather than one each. The
/// buffer lives as long as any of its events does (until they are sealed).
pub fn parse_record_in(
    body: &Bytes,
    raw: &[u8],
    defaults: RecordDefaults<'_>,
    ids: &mut dyn EventIdSource,
) -> Result<ParsedRecord, RecordError> {
    let within = body.as_ptr_range();
    let shared = |text: &[u8]| {
        let range = text.as_ptr_range();
        if within.start <= range.start && range.end <= within.end {
            body.slice_ref(text)
        } else {
            Bytes::copy_from_slice(text)
        }
    };
    parse(raw, defaults, ids, shared)
}

/// Parses and checks a record; `keep` makes the stored text of a record kept as written.
fn parse(
    raw: &[u8],
    defaults: RecordDefaults<'_>,
    ids: &mut dyn EventIdSource,
    keep: impl FnOnce(&[u8]) -> Bytes,
) -> Result<ParsedRecord, RecordError> {
    if raw.len() > MAX_RECORD_BYTES * 4 {
        // Whitespace could shrink it, but not by this much; refuse before parsing.
        return Err(RecordError::TooLarge { size: raw.len() });
    }
    let minified = minify(raw);
    if minified.first() != Some(&b'{') {
        return Err(RecordError::NotJson("expected a JSON object".to_owned()));
    }
    // Parsing bytes checks only the strings it reads; bytes in members it skips could be
    // any. JSON is UTF-8 text, and a stored record must be, or no segment could hold it: the
    // whole text is checked once, and parsed as text, which checks no string again.
    let text = std::str::from_utf8(&minified)
        .map_err(|error| RecordError::NotJson(format!("not UTF-8 text at byte {}", error.valid_up_to())))?;
    let view: RecordView<'_> = serde_json::from_str(text).map_err(|err| RecordError::NotJson(err.to_string()))?;

    let event_time = view.event_time.ok_or(RecordError::MissingField("eventTime"))?.required_str("eventTime")?;
    let event_time_ms = parse_event_time(&event_time)?;
    // Insights records name the API they are about inside insightDetails, not at the top.
    let insight = view.insight_details.unwrap_or_default();
    let event_source = view
        .event_source
        .or(insight.event_source)
        .ok_or(RecordError::MissingField("eventSource"))?
        .required_str("eventSource")?;
    let event_name = view
        .event_name
        .or(insight.event_name)
        .ok_or(RecordError::MissingField("eventName"))?
        .required_str("eventName")?;

    let mut insert = String::new();
    let event_id = match view.event_id {
        Some(value) => {
            let id = value.required_str("eventID")?;
            if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
                return Err(RecordError::BadEventId(id.into_owned()));
            }
            id
        }
        None => {
            let id = ids.next_event_id();
            insert.push_str(&format!("\"eventID\":{},", quote(&id)));
            Cow::Owned(id)
        }
    };
    let account_id = match view.recipient_account_id {
        Some(value) => value.required_str("recipientAccountId")?,
        None => {
            insert.push_str(&format!("\"recipientAccountId\":{},", quote(defaults.account_id)));
            Cow::Borrowed(defaults.account_id)
        }
    };
    check_partition_value("recipientAccountId", &account_id)?;
    let region = match view.aws_region {
        Some(value) => value.required_str("awsRegion")?,
        None => Cow::Borrowed(defaults.region),
    };
    check_partition_value("awsRegion", &region)?;

    let category = Category::of_record(
        view.event_category.and_then(Lenient::into_str).as_deref(),
        view.management_event,
        view.event_type.and_then(Lenient::into_str).as_deref(),
    );
    let identity = view.user_identity.unwrap_or_default();
    let username = identity.username();
    let access_key_id = identity.access_key_id.and_then(Lenient::into_str);
    let resource_texts: Vec<_> = view
        .resources
        .map(|list| {
            list.0
                .into_iter()
                .map(|resource| {
                    (resource.resource_type.and_then(Lenient::into_str), resource.arn.and_then(Lenient::into_str))
                })
                .collect()
        })
        .unwrap_or_default();
    let resources: Vec<Resource<'_>> = resource_texts
        .iter()
        .map(|(resource_type, name)| Resource {
            resource_type: resource_type.as_deref(),
            resource_name: name.as_deref(),
        })
        .collect();
    let fields = LookupFields::from(FieldValues {
        event_id: &event_id,
        account_id: &account_id,
        region: &region,
        event_name: &event_name,
        event_source: &event_source,
        read_only: view.read_only.and_then(|flag| flag.0),
        username: username.as_deref(),
        access_key_id: access_key_id.as_deref(),
        resources: &resources,
    });

    let json = if insert.is_empty() {
        match minified {
            Cow::Borrowed(text) => keep(text),
            Cow::Owned(text) => Bytes::from(text),
        }
    } else {
        let mut json = Vec::with_capacity(minified.len() + insert.len());
        json.push(b'{');
        json.extend_from_slice(insert.as_bytes());
        let rest = &minified[1..];
        if rest == b"}" {
            // An object with no other member: drop the trailing comma of the insert.
            json.pop();
        }
        json.extend_from_slice(rest);
        Bytes::from(json)
    };
    if json.len() > MAX_RECORD_BYTES {
        return Err(RecordError::TooLarge { size: json.len() });
    }
    Ok(ParsedRecord { json, event_time_ms, category, fields })
}

/// Account IDs and Regions name folders on disk, so they are held to a safe alphabet.
fn check_partition_value(field: &'static str, value: &str) -> Result<(), RecordError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(RecordError::BadPartitionValue { field, value: value.chars().take(80).collect() }) }
}

fn quote(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// The fields the parser reads; everything else is validated as JSON and skipped.
#[derive(Deserialize)]
struct RecordView<'a> {
    #[serde(rename = "eventTime", borrow, default)]
    event_time: Option<Lenient<'a>>,
    #[serde(rename = "eventSource", borrow, default)]
    event_source: Option<Lenient<'a>>,
    #[serde(rename = "eventName", borrow, default)]
    event_name: Option<Lenient<'a>>,
    #[serde(rename = "eventID", borrow, default)]
    event_id: Option<Lenient<'a>>,
    #[serde(rename = "recipientAccountId", borrow, default)]
    recipient_account_id: Option<Lenient<'a>>,
    #[serde(rename = "awsRegion", borrow, default)]
    aws_region: Option<Lenient<'a>>,
    #[serde(rename = "eventCategory", borrow, default)]
    event_category: Option<Lenient<'a>>,
    #[serde(rename = "eventType", borrow, default)]
    event_type: Option<Lenient<'a>>,
    #[serde(rename = "managementEvent", default, deserialize_with = "lenient_bool")]
    management_event: Option<bool>,
    #[serde(rename = "readOnly", default)]
    read_only: Option<LenientBool>,
    #[serde(rename = "userIdentity", borrow, default)]
    user_identity: Option<IdentityView<'a>>,
    #[serde(borrow, default)]
    resources: Option<LenientList<ResourceView<'a>>>,
    #[serde(rename = "insightDetails", borrow, default)]
    insight_details: Option<InsightView<'a>>,
}

#[derive(Deserialize, Default)]
struct InsightView<'a> {
    #[serde(rename = "eventSource", borrow, default)]
    event_source: Option<Lenient<'a>>,
    #[serde(rename = "eventName", borrow, default)]
    event_name: Option<Lenient<'a>>,
}

#[derive(Deserialize, Default)]
struct IdentityView<'a> {
    #[serde(rename = "type", borrow, default)]
    identity_type: Option<Lenient<'a>>,
    #[serde(rename = "userName", borrow, default)]
    user_name: Option<Lenient<'a>>,
    #[serde(borrow, default)]
    arn: Option<Lenient<'a>>,
    #[serde(rename = "accessKeyId", borrow, default)]
    access_key_id: Option<Lenient<'a>>,
}

impl<'a> IdentityView<'a> {
    /// `Event.Username` as Event History shows it: the IAM user name, the role session
    /// name of an assumed role, the federated user's name, or `root`.
    fn username(&self) -> Option<Cow<'a, str>> {
        if let Some(name) = self.user_name.clone().and_then(Lenient::into_str)
            && !name.is_empty()
        {
            return Some(name);
        }
        let identity_type = self.identity_type.clone().and_then(Lenient::into_str);
        let arn = self.arn.clone().and_then(Lenient::into_str);
        match identity_type.as_deref() {
            // The session or federated user name: what follows the ARN's last '/'.
            Some("AssumedRole" | "FederatedUser") => match arn? {
                Cow::Borrowed(arn) => arn.rsplit_once('/').map(|(_, name)| Cow::Borrowed(name)),
                Cow::Owned(arn) => arn.rsplit_once('/').map(|(_, name)| Cow::Owned(name.to_owned())),
            },
            Some("Root") => Some(Cow::Borrowed("root")),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct ResourceView<'a> {
    #[serde(rename = "type", borrow, default)]
    resource_type: Option<Lenient<'a>>,
    #[serde(rename = "ARN", borrow, default)]
    arn: Option<Lenient<'a>>,
}

/// Any JSON value, keeping it only when it is a string. Real records carry the odd
/// number or object where a string belongs; such a field reads as absent, not as an error.
#[derive(Clone)]
pub(crate) enum Lenient<'a> {
    Str(Cow<'a, str>),
    Other,
}

impl<'a> Lenient<'a> {
    pub(crate) fn into_str(self) -> Option<Cow<'a, str>> {
        match self {
            Lenient::Str(text) => Some(text),
            Lenient::Other => None,
        }
    }

    fn required_str(self, field: &'static str) -> Result<Cow<'a, str>, RecordError> {
        self.into_str().ok_or(RecordError::NotAString { field })
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Lenient<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LenientVisitor;
        impl<'de> Visitor<'de> for LenientVisitor {
            type Value = Lenient<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Lenient::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Lenient::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Lenient::Str(Cow::Owned(v)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Lenient::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Lenient::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Lenient::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Lenient::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Lenient::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Lenient::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Lenient::Other)
            }
        }
        deserializer.deserialize_any(LenientVisitor)
    }
}

/// `readOnly` as a boolean, or the strings "true"/"false" some pipelines write.
pub(crate) struct LenientBool(pub(crate) Option<bool>);

impl<'de> Deserialize<'de> for LenientBool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Lenient::deserialize_bool_or_str(deserializer)?;
        Ok(LenientBool(value))
    }
}

pub(crate) fn lenient_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    Lenient::deserialize_bool_or_str(deserializer)
}

impl Lenient<'_> {
    fn deserialize_bool_or_str<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum BoolOrOther<'a> {
            Bool(bool),
            #[serde(borrow)]
            Other(Lenient<'a>),
        }
        Ok(match BoolOrOther::deserialize(deserializer)? {
            BoolOrOther::Bool(flag) => Some(flag),
            BoolOrOther::Other(Lenient::Str(text)) if text.eq_ignore_ascii_case("true") => Some(true),
            BoolOrOther::Other(Lenient::Str(text)) if text.eq_ignore_ascii_case("false") => Some(false),
            BoolOrOther::Other(_) => None,
        })
    }
}

/// A list whose elements are objects of interest; anything else in its place reads as empty.
struct LenientList<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for LenientList<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum ListOrOther<T> {
            List(Vec<T>),
            Other(IgnoredAny),
        }
        Ok(match ListOrOther::<T>::deserialize(deserializer)? {
            ListOrOther::List(items) => LenientList(items),
            ListOrOther::Other(_) => LenientList(Vec::new()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: RecordDefaults<'static> = RecordDefaults { account_id: "123456789012", region: "us-east-1" };

    fn parse(text: &str) -> Result<ParsedRecord, RecordError> {
        let mut ids = || "00000000-0000-4000-8000-000000000001".to_owned();
        parse_record(text.as_bytes(), DEFAULTS, &mut ids)
    }

    #[test]
    fn a_record_kept_as_written_shares_its_request_s_buffer_and_any_other_is_its_own() {
        let complete = r#"{"eventTime":"2024-01-01T00:00:00Z","eventSource":"s","eventName":"X","eventID":"1","recipientAccountId":"1"}"#;
        let spaced = r#"{"eventTime": "2024-01-01T00:00:00Z","eventSource":"s","eventName":"X","eventID":"2","recipientAccountId":"1"}"#;
        let without_id =
            r#"{"eventTime":"2024-01-01T00:00:00Z","eventSource":"s","eventName":"X","recipientAccountId":"1"}"#;
        let body = Bytes::from(format!("{complete}\n{spaced}\n{without_id}\n"));
        let lines: Vec<&[u8]> = body.split(|&byte| byte == b'\n').filter(|line| !line.is_empty()).collect();
        let mut ids = || "00000000-0000-4000-8000-000000000001".to_owned();
        let parsed: Vec<ParsedRecord> =
            lines.iter().map(|line| parse_record_in(&body, line, DEFAULTS, &mut ids).unwrap()).collect();
        let within = |json: &Bytes| body.as_ptr_range().contains(&json.as_ptr());

        assert_eq!(parsed[0].json, complete.as_bytes());
        assert!(within(&parsed[0].json), "a compact, complete record is a slice of the body");
        assert_eq!(parsed[1].json, spaced.replace(": ", ":").as_bytes());
        assert!(!within(&parsed[1].json), "a minified record is its own text");
        assert_eq!(parsed[2].json, parse(without_id).unwrap().json);
        assert!(!within(&parsed[2].json), "a record given an eventID is its own text");
        // Text that is not within the body is copied, never sliced out of it.
        let elsewhere = parse_record_in(&body, complete.as_bytes(), DEFAULTS, &mut ids).unwrap();
        assert_eq!(elsewhere.json, complete.as_bytes());
        assert!(!within(&elsewhere.json));
    }

    #[test]
    fn keeps_a_complete_record_byte_for_byte() {
        let text = r#"{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","userName":"alice","accessKeyId":"AKIAEXAMPLE"},"eventTime":"2024-07-30T21:31:21Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"eu-west-1","readOnly":false,"eventID":"e1","recipientAccountId":"111122223333","eventCategory":"Management","resources":[{"ARN":"arn:aws:ec2:eu-west-1:111122223333:instance/i-1","type":"AWS::EC2::Instance","accountId":"111122223333"}],"unknownField":{"kept":[1,2.50,"x"]}}"#;
        let record = parse(text).unwrap();
        assert_eq!(record.json, text.as_bytes());
        assert_eq!(record.fields.event_id(), "e1");
        assert_eq!(record.fields.account_id(), "111122223333");
        assert_eq!(record.fields.region(), "eu-west-1");
        assert_eq!(record.category, Category::Management);
        assert_eq!(record.fields.username(), Some("alice"));
        assert_eq!(record.fields.access_key_id(), Some("AKIAEXAMPLE"));
        assert_eq!(record.fields.read_only, Some(false));
        assert_eq!(record.fields.resources().next().and_then(|r| r.resource_type), Some("AWS::EC2::Instance"));
    }

    #[test]
    fn fills_event_id_and_account_when_absent() {
        let record =
            parse(r#"{"eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject"}"#)
                .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&record.json).unwrap();
        assert_eq!(value["eventID"], "00000000-0000-4000-8000-000000000001");
        assert_eq!(value["recipientAccountId"], "123456789012");
        assert_eq!(value["eventName"], "GetObject");
        assert_eq!(record.fields.region(), "us-east-1");
    }

    #[test]
    fn minifies_pretty_printed_records() {
        let record = parse("{\n  \"eventTime\": \"2024-01-01T00:00:00Z\",\n  \"eventSource\": \"a b\",\n  \"eventName\": \"X\", \"eventID\": \"1\", \"recipientAccountId\": \"1\"\n}").unwrap();
        assert_eq!(&record.json[..], br#"{"eventTime":"2024-01-01T00:00:00Z","eventSource":"a b","eventName":"X","eventID":"1","recipientAccountId":"1"}"#);
    }

    #[test]
    fn refuses_records_without_required_fields() {
        assert_eq!(parse(r#"{"eventSource":"a","eventName":"b"}"#), Err(RecordError::MissingField("eventTime")));
        assert_eq!(
            parse(r#"{"eventTime":"2024-01-01T00:00:00Z","eventName":"b"}"#),
            Err(RecordError::MissingField("eventSource"))
        );
        assert_eq!(
            parse(r#"{"eventTime":"2024-01-01T00:00:00Z","eventSource":"a"}"#),
            Err(RecordError::MissingField("eventName"))
        );
        assert!(matches!(parse("[1]"), Err(RecordError::NotJson(_))));
        assert!(matches!(parse(r#"{"eventTime":"#), Err(RecordError::NotJson(_))));
        assert!(matches!(
            parse(r#"{"eventTime":"soon","eventSource":"a","eventName":"b"}"#),
            Err(RecordError::BadTime(_))
        ));
    }

    #[test]
    fn refuses_bytes_that_are_not_utf8_even_where_no_field_is_read() {
        let text =
            b"{\"eventTime\":\"2024-01-01T00:00:00Z\",\"eventSource\":\"a\",\"eventName\":\"b\",\"x\":{\"k\xff\":1}}";
        let refused = parse_record(text, DEFAULTS, &mut || "id".to_owned());
        assert_eq!(refused, Err(RecordError::NotJson("not UTF-8 text at byte 77".to_owned())));
    }

    #[test]
    fn refuses_accounts_that_cannot_name_a_folder() {
        let text =
            r#"{"eventTime":"2024-01-01T00:00:00Z","eventSource":"a","eventName":"b","recipientAccountId":"../x"}"#;
        assert!(matches!(parse(text), Err(RecordError::BadPartitionValue { .. })));
    }

    #[test]
    fn refuses_oversized_records() {
        let big = "x".repeat(MAX_RECORD_BYTES);
        let text = format!(r#"{{"eventTime":"2024-01-01T00:00:00Z","eventSource":"a","eventName":"b","p":"{big}"}}"#);
        assert!(matches!(parse(&text), Err(RecordError::TooLarge { .. })));
    }

    #[test]
    fn reads_odd_shapes_leniently() {
        let text = r#"{"eventTime":"2022-12-11 19:42:55","eventSource":"a","eventName":"b","readOnly":"True","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/r/session-7","userName":5},"resources":"none"}"#;
        let record = parse(text).unwrap();
        assert_eq!(record.fields.read_only, Some(true));
        assert_eq!(record.fields.username(), Some("session-7"));
        assert_eq!(record.fields.resources().len(), 0);
    }

    #[test]
    fn reads_insights_records_by_their_insight_details() {
        let text = r#"{"eventVersion":"1.07","eventTime":"2019-11-14T00:51:00Z","awsRegion":"us-east-1","eventID":"e","eventType":"AwsCloudTrailInsight","recipientAccountId":"123456789012","insightDetails":{"state":"Start","eventSource":"ssm.amazonaws.com","eventName":"UpdateInstanceInformation"},"eventCategory":"Insight"}"#;
        let record = parse(text).unwrap();
        assert_eq!(record.category, Category::Insight);
        assert_eq!(record.fields.event_source(), "ssm.amazonaws.com");
        assert_eq!(record.fields.event_name(), "UpdateInstanceInformation");
        assert_eq!(record.json, text.as_bytes());
    }

    #[test]
    fn classifies_categories() {
        let with = |extra: &str| {
            parse(&format!(r#"{{"eventTime":"2024-01-01T00:00:00Z","eventSource":"a","eventName":"b"{extra}}}"#))
                .unwrap()
                .category
        };
        assert_eq!(with(""), Category::Management);
        assert_eq!(with(r#","managementEvent":false"#), Category::Data);
        assert_eq!(with(r#","eventCategory":"Insight""#), Category::Insight);
        assert_eq!(with(r#","eventType":"AwsCloudTrailInsight""#), Category::Insight);
        assert_eq!(with(r#","eventCategory":"NetworkActivity""#), Category::NetworkActivity);
    }
}
