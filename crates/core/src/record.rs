//! The CloudTrail record as Trailkeeper keeps it: the JSON text exactly as sent (minified),
//! plus the handful of fields that partition, order, deduplicate and look events up.
//!
//! A record is kept byte for byte; the only edits Trailkeeper ever makes are to insert
//! `eventID` and `recipientAccountId` when a record arrives without them, and to drop
//! insignificant whitespace. Unknown fields are kept. Field values of unexpected types
//! never reject a record unless the field is one CloudTrail requires.

use std::borrow::Cow;

use bytes::Bytes;

use crate::json::{self, minify};
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
    /// Where in `json` the [`ID_MEMBERS`] hold plain strings: [`id_values`] of `json`,
    /// found while parsing, so that the store moves them into columns of their own
    /// without reading the record again.
    pub id_values: IdValues,
}

/// The members whose values a parsed record locates: random IDs, which the store keeps
/// apart from the rest of the record.
pub const ID_MEMBERS: [&str; 2] = ["eventID", "requestID"];

/// For each of [`ID_MEMBERS`], the range of its value in a record's text, quotes included.
pub type IdValues = [Option<std::ops::Range<u32>>; ID_MEMBERS.len()];

/// Where the first top-level member named each of [`ID_MEMBERS`] (written without escapes)
/// holds a string written without escapes, in a compact record.
pub fn id_values(json: &[u8]) -> IdValues {
    json::first_plain_strings(json, &ID_MEMBERS).map(narrow)
}

/// A range within a record: a record is at most [`MAX_RECORD_BYTES`], so it fits 32 bits.
fn narrow(range: Option<std::ops::Range<usize>>) -> Option<std::ops::Range<u32>> {
    range.map(|range| range.start as u32..range.end as u32)
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
    // JSON is UTF-8 text, and a stored record must be, or no segment could hold it: the
    // whole text is checked once, and the scanner then checks the grammar alone.
    let text = std::str::from_utf8(raw)
        .map_err(|error| RecordError::NotJson(format!("not UTF-8 text at byte {}", error.valid_up_to())))?;
    let mut visitor = RecordVisitor {
        text,
        record: Slots::new(&RECORD_MEMBERS),
        insight: Slots::new(&INSIGHT_MEMBERS),
        identity: Slots::new(&IDENTITY_MEMBERS),
        resources: Vec::new(),
        ids_in_raw: json::FirstPlainStrings::new(&ID_MEMBERS),
    };
    let compact = json::visit_members(raw, &mut visitor).map_err(not_json)?;
    let RecordVisitor { record, insight, identity, resources: resource_elements, ids_in_raw, .. } = visitor;
    let [
        event_time,
        event_source,
        event_name,
        event_id,
        recipient_account_id,
        aws_region,
        event_category,
        event_type,
        management_event,
        read_only,
        // Read through the visitor; their slots refuse a record that gives one twice.
        _user_identity,
        _resources,
        _insight_details,
    ] = record.values()?;

    let event_time = required(event_time, "eventTime")?;
    let event_time_ms = parse_event_time(&event_time)?;
    // Insights records name the API they are about inside insightDetails, not at the top.
    let [insight_source, insight_name] = insight.values()?;
    let event_source = required(event_source.or(insight_source), "eventSource")?;
    let event_name = required(event_name.or(insight_name), "eventName")?;

    let mut insert = String::new();
    let event_id = match event_id {
        Some(value) => {
            let id = string_of(value, "eventID")?;
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
    let account_id = match recipient_account_id {
        Some(value) => string_of(value, "recipientAccountId")?,
        None => {
            insert.push_str(&format!("\"recipientAccountId\":{},", quote(defaults.account_id)));
            Cow::Borrowed(defaults.account_id)
        }
    };
    check_partition_value("recipientAccountId", &account_id)?;
    let region = match aws_region {
        Some(value) => string_of(value, "awsRegion")?,
        None => Cow::Borrowed(defaults.region),
    };
    check_partition_value("awsRegion", &region)?;

    let category = Category::of_record(
        optional_string(event_category)?.as_deref(),
        lenient_bool(management_event)?,
        optional_string(event_type)?.as_deref(),
    );
    let identity = identity.values()?;
    let username = username(identity)?;
    let access_key_id = optional_string(identity[3])?;
    let mut resource_texts = Vec::new();
    // Only an object is a resource.
    for element in resource_elements.into_iter().filter(|element| element.starts_with('{')) {
        let [resource_type, arn] = read_members(element, &RESOURCE_MEMBERS)?;
        resource_texts.push((optional_string(resource_type)?, optional_string(arn)?));
    }
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
        read_only: lenient_bool(read_only)?,
        username: username.as_deref(),
        access_key_id: access_key_id.as_deref(),
        resources: &resources,
    });

    let minified = if compact { Cow::Borrowed(raw) } else { minify(raw) };
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
    // A record kept as written has its members where the parser saw them.
    let id_values = if compact && insert.is_empty() { ids_in_raw.found().map(narrow) } else { id_values(&json) };
    Ok(ParsedRecord { json, event_time_ms, category, fields, id_values })
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

/// The record members the parser reads, in the order `parse` takes them apart.
const RECORD_MEMBERS: [&str; 13] = [
    "eventTime",
    "eventSource",
    "eventName",
    "eventID",
    "recipientAccountId",
    "awsRegion",
    "eventCategory",
    "eventType",
    "managementEvent",
    "readOnly",
    "userIdentity",
    "resources",
    "insightDetails",
];
const INSIGHT_MEMBERS: [&str; 2] = ["eventSource", "eventName"];
const IDENTITY_MEMBERS: [&str; 4] = ["type", "userName", "arn", "accessKeyId"];
const RESOURCE_MEMBERS: [&str; 2] = ["type", "ARN"];

/// What one pass over a record reads: its members named in [`RECORD_MEMBERS`], those of
/// its `insightDetails` and `userIdentity` objects, and the elements of its `resources`
/// array. Nested values are read as the record is checked, not scanned a second time
/// (`userIdentity` is about a quarter of a typical record).
struct RecordVisitor<'t> {
    text: &'t str,
    record: Slots<'t, { RECORD_MEMBERS.len() }>,
    insight: Slots<'t, { INSIGHT_MEMBERS.len() }>,
    identity: Slots<'t, { IDENTITY_MEMBERS.len() }>,
    resources: Vec<&'t str>,
    ids_in_raw: json::FirstPlainStrings<'static, { ID_MEMBERS.len() }>,
}

const INSIGHT: u8 = 0;
const IDENTITY: u8 = 1;
const RESOURCES: u8 = 2;

impl json::MemberVisitor for RecordVisitor<'_> {
    fn descend(&mut self, key: &[u8], key_escaped: bool) -> Option<u8> {
        let decoded;
        let name = if key_escaped {
            decoded = decode_name(key);
            decoded.as_bytes()
        } else {
            key
        };
        match name {
            b"insightDetails" => Some(INSIGHT),
            b"userIdentity" => Some(IDENTITY),
            b"resources" => Some(RESOURCES),
            _ => None,
        }
    }

    fn member(&mut self, member: json::CheckedMember) {
        self.ids_in_raw.see(self.text.as_bytes(), member.key.clone(), member.value.clone());
        self.record.take(self.text, &member);
    }

    fn inner_member(&mut self, tag: u8, member: json::CheckedMember) {
        match tag {
            INSIGHT => self.insight.take(self.text, &member),
            IDENTITY => self.identity.take(self.text, &member),
            // A `resources` object is no list of resources.
            _ => {}
        }
    }

    fn inner_element(&mut self, tag: u8, element: std::ops::Range<usize>) {
        if tag == RESOURCES {
            self.resources.push(&self.text[element]);
        }
    }
}

/// The values of one object's members named in `names`, by position. A member whose value
/// is `null` reads as absent. A member named twice refuses the record: which of two values
/// it meant is anyone's guess.
struct Slots<'t, const N: usize> {
    names: &'static [&'static str; N],
    values: [Option<&'t str>; N],
    seen: u32,
    duplicate: Option<&'static str>,
}

impl<'t, const N: usize> Slots<'t, N> {
    fn new(names: &'static [&'static str; N]) -> Self {
        Slots { names, values: [None; N], seen: 0, duplicate: None }
    }

    /// Takes in a member of the object, its ranges into `text`.
    fn take(&mut self, text: &'t str, member: &json::CheckedMember) {
        let key = &text[member.key.clone()];
        let name = if member.key_escaped { decode_name(key.as_bytes()) } else { Cow::Borrowed(key) };
        if let Some(slot) = self.names.iter().position(|wanted| *wanted == name) {
            if self.seen & (1 << slot) != 0 {
                self.duplicate.get_or_insert(self.names[slot]);
            }
            self.seen |= 1 << slot;
            let value = &text[member.value.clone()];
            self.values[slot] = (value != "null").then_some(value);
        }
    }

    fn values(self) -> Result<[Option<&'t str>; N], RecordError> {
        match self.duplicate {
            Some(name) => Err(RecordError::NotJson(format!("member {name:?} given more than once"))),
            None => Ok(self.values),
        }
    }
}

/// A member name written with escapes, decoded. Escapes in a name are rare; one that does
/// not decode names nothing the parser reads.
fn decode_name(key: &[u8]) -> Cow<'static, str> {
    let mut quoted = Vec::with_capacity(key.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(key);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted).map(Cow::Owned).unwrap_or_default()
}

/// Checks that `text` is a JSON object and returns the text of each member named in
/// `names`, by position (as [`Slots`] reads them).
fn read_members<'t, const N: usize>(
    text: &'t str,
    names: &'static [&'static str; N],
) -> Result<[Option<&'t str>; N], RecordError> {
    let mut slots = Slots::new(names);
    json::object_members(text.as_bytes(), |member| slots.take(text, &member)).map_err(not_json)?;
    slots.values()
}

fn not_json(error: json::SyntaxError) -> RecordError {
    RecordError::NotJson(error.to_string())
}

/// The string a value's text holds, decoded; `None` when the value is not a string. Real
/// records carry the odd number or object where a string belongs; such a field reads as
/// absent, not as an error, unless the field is one CloudTrail requires.
fn string_value(value: &str) -> Result<Option<Cow<'_, str>>, RecordError> {
    let Some(inner) = value.strip_prefix('"').and_then(|rest| rest.strip_suffix('"')) else {
        return Ok(None);
    };
    if !inner.contains('\\') {
        return Ok(Some(Cow::Borrowed(inner)));
    }
    // The text is already checked JSON; only an escaped lone surrogate fails to decode.
    serde_json::from_str::<String>(value)
        .map(|decoded| Some(Cow::Owned(decoded)))
        .map_err(|error| RecordError::NotJson(error.to_string()))
}

fn optional_string(value: Option<&str>) -> Result<Option<Cow<'_, str>>, RecordError> {
    Ok(value.map(string_value).transpose()?.flatten())
}

/// A member CloudTrail requires: present, and a string.
fn required<'t>(value: Option<&'t str>, field: &'static str) -> Result<Cow<'t, str>, RecordError> {
    string_of(value.ok_or(RecordError::MissingField(field))?, field)
}

/// The string `field`'s value holds; any other value refuses the record.
fn string_of<'t>(value: &'t str, field: &'static str) -> Result<Cow<'t, str>, RecordError> {
    string_value(value)?.ok_or(RecordError::NotAString { field })
}

/// `readOnly` or `managementEvent`: a boolean, or the strings "true"/"false" some
/// pipelines write; anything else reads as absent.
fn lenient_bool(value: Option<&str>) -> Result<Option<bool>, RecordError> {
    Ok(match value {
        Some("true") => Some(true),
        Some("false") => Some(false),
        other => match optional_string(other)? {
            Some(text) if text.eq_ignore_ascii_case("true") => Some(true),
            Some(text) if text.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        },
    })
}

/// `Event.Username` as Event History shows it, from `userIdentity`'s members in
/// [`IDENTITY_MEMBERS`] order: the IAM user name, the role session name of an assumed role,
/// the federated user's name, or `root`.
fn username<'t>(identity: [Option<&'t str>; 4]) -> Result<Option<Cow<'t, str>>, RecordError> {
    let [identity_type, user_name, arn, _] = identity;
    if let Some(name) = optional_string(user_name)?
        && !name.is_empty()
    {
        return Ok(Some(name));
    }
    Ok(match optional_string(identity_type)?.as_deref() {
        // The session or federated user name: what follows the ARN's last '/'.
        Some("AssumedRole" | "FederatedUser") => match optional_string(arn)? {
            Some(Cow::Borrowed(arn)) => arn.rsplit_once('/').map(|(_, name)| Cow::Borrowed(name)),
            Some(Cow::Owned(arn)) => arn.rsplit_once('/').map(|(_, name)| Cow::Owned(name.to_owned())),
            None => None,
        },
        Some("Root") => Some(Cow::Borrowed("root")),
        _ => None,
    })
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

    proptest::proptest! {
        /// The ID members' places found while parsing are where they are in the stored
        /// text, however the record was written: spaced, without an eventID, with names
        /// or values escaped, a requestID given twice.
        #[test]
        fn id_values_found_while_parsing_are_those_of_the_stored_text(
            members in proptest::collection::vec(
                (
                    proptest::sample::select(&["requestID", r"req\u0075estID", "eventID", "userAgent"][..]),
                    proptest::sample::select(&[r#""r-1""#, r#""a\"b""#, r#""""#, "null", r#"{"requestID":"x"}"#, "7"][..]),
                ),
                0..6,
            ),
            space in proptest::bool::ANY,
        ) {
            let separator = if space { ", " } else { "," };
            let mut body = vec![r#""eventTime":"2024-01-01T00:00:00Z","eventSource":"s","eventName":"X""#.to_owned()];
            body.extend(members.iter().map(|(key, value)| format!(r#""{key}":{value}"#)));
            let text = format!("{{{}}}", body.join(separator));
            if let Ok(record) = parse(&text) {
                proptest::prop_assert_eq!(&record.id_values, &id_values(&record.json), "{}", text);
                if let Some(range) = record.id_values[0].clone() {
                    let quoted = format!(r#""{}""#, record.fields.event_id());
                    proptest::prop_assert_eq!(&record.json[range.start as usize..range.end as usize], quoted.as_bytes());
                }
            }
        }
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
    fn reads_members_as_json_means_them() {
        // An escaped name is the same name; null is no value; an object where a string or
        // object belongs reads as absent.
        let text = r#"{"event\u0054ime":"2024-01-01T00:00:00Z","eventSource":"a","eventName":"b\u00e9","awsRegion":null,"userIdentity":"x","resources":[1,{"ARN":"arn:x"},null],"readOnly":{"v":true}}"#;
        let record = parse(text).unwrap();
        assert_eq!(record.event_time_ms, 1_704_067_200_000);
        assert_eq!(record.fields.event_name(), "bé");
        assert_eq!(record.fields.region(), "us-east-1");
        assert_eq!(record.fields.username(), None);
        assert_eq!(record.fields.read_only, None);
        let names: Vec<_> = record.fields.resources().map(|resource| resource.resource_name).collect();
        assert_eq!(names, [Some("arn:x")]);
        assert!(record.json.ends_with(&text.as_bytes()[1..]), "kept as written after the filled-in members");
    }

    #[test]
    fn refuses_a_member_it_reads_given_twice_and_text_that_is_not_json() {
        let twice = r#"{"eventTime":"2024-01-01T00:00:00Z","eventSource":"a","eventName":"b","eventName":"c"}"#;
        assert_eq!(parse(twice), Err(RecordError::NotJson(r#"member "eventName" given more than once"#.to_owned())));
        let other_twice = r#"{"eventTime":"2024-01-01T00:00:00Z","eventSource":"a","eventName":"b","x":1,"x":2}"#;
        assert!(parse(other_twice).is_ok(), "members not read are kept as written");
        // Whitespace inside a token is no whitespace to drop.
        let split_number = r#"{"eventTime":"2024-01-01T00:00:00Z","eventSource":"a","eventName":"b","n":1 2}"#;
        assert_eq!(parse(split_number), Err(RecordError::NotJson("expected ',' or '}' at byte 76".to_owned())));
        let lone_surrogate = r#"{"eventTime":"2024-01-01T00:00:00Z","eventSource":"a","eventName":"\ud800"}"#;
        assert!(matches!(parse(lone_surrogate), Err(RecordError::NotJson(_))));
    }

    #[test]
    fn reads_nested_members_as_it_reads_the_record_s_own() {
        let base = r#""eventTime":"2024-01-01T00:00:00Z","eventSource":"a","eventName":"b""#;
        // A nested object found under an escaped name, with an escaped member name of its own.
        let escaped = format!(
            r#"{{{base},"user\u0049dentity":{{"type":"IAMUser","user\u004eame":"alice","accessKeyId":null}}}}"#
        );
        let record = parse(&escaped).unwrap();
        assert_eq!(record.fields.username(), Some("alice"));
        assert_eq!(record.fields.access_key_id(), None);
        let twice = format!(
            r#"{{{base},"userIdentity":{{"userName":"a","sessionContext":{{"userName":"x"}},"userName":"b"}}}}"#
        );
        assert_eq!(parse(&twice), Err(RecordError::NotJson(r#"member "userName" given more than once"#.to_owned())));
        // Only a list holds resources, and only an object is an identity.
        let shapes = format!(
            r#"{{{base},"resources":{{"ARN":"arn:x","type":"T"}},"userIdentity":[{{"userName":"alice"}}],"insightDetails":{{"eventName":"c"}}}}"#
        );
        let record = parse(&shapes).unwrap();
        assert_eq!(record.fields.resources().len(), 0);
        assert_eq!(record.fields.username(), None);
        assert_eq!(record.fields.event_name(), "b", "a record's own eventName comes before its insight's");
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
