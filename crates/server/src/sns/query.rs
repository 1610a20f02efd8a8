//! The AWS query protocol as SNS speaks it (API version 2010-03-31): form-encoded
//! parameters in, XML out, errors as `<ErrorResponse>` with AWS's codes and statuses.
//!
//! Only the wire lives here: reading parameters (flat, `X.entry.N.key/value` maps and
//! `X.member.N.Field` lists), writing escaped XML, and turning every failure into SNS's
//! error shape. Nothing here decides what an operation does.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::rules::{ErrorKind, SnsError};
use crate::api::ApiError;
use crate::xml::XmlWriter;

pub const API_VERSION: &str = "2010-03-31";
pub const XML_NAMESPACE: &str = "http://sns.amazonaws.com/doc/2010-03-31/";

/// The parameters of one request, in the order they came.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    /// Parses `application/x-www-form-urlencoded` bytes (a body or a query string). Invalid
    /// UTF-8 and stray `%` are decoded lossily, as form decoders do; nothing here fails.
    pub fn parse(bytes: &[u8]) -> Form {
        Form {
            pairs: form_urlencoded::parse(bytes).map(|(name, value)| (name.into_owned(), value.into_owned())).collect(),
        }
    }

    /// The first value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// A parameter the operation cannot do without, with SNS's message when it is absent.
    pub fn required(&self, name: &str) -> Result<&str, SnsError> {
        self.get(name).ok_or_else(|| {
            SnsError::invalid(format!("Invalid parameter: {name} Reason: no value for required parameter"))
        })
    }

    /// A boolean parameter (`true`/`false`, any case); absent is `None`.
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, SnsError> {
        match self.get(name) {
            None => Ok(None),
            Some(value) if value.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(value) if value.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(_) => Err(SnsError::invalid(format!("Invalid parameter: {name}"))),
        }
    }

    /// A map serialized as `<prefix>.entry.N.key` / `<prefix>.entry.N.value`, in N order.
    /// An entry without a key is an error; one without a value has the empty value.
    pub fn map(&self, prefix: &str) -> Result<Vec<(String, String)>, SnsError> {
        let members = self.indexed(&format!("{prefix}.entry."));
        members
            .into_iter()
            .map(|(_, fields)| {
                let key = fields.iter().find(|(field, _)| *field == "key").map(|(_, value)| value.to_string());
                let value = fields.iter().find(|(field, _)| *field == "value").map(|(_, value)| value.to_string());
                match key {
                    Some(key) => Ok((key, value.unwrap_or_default())),
                    None => Err(SnsError::invalid(format!("Invalid parameter: {prefix} Reason: an entry has no key"))),
                }
            })
            .collect()
    }

    /// A list of structures serialized as `<prefix>.member.N.<Field>`, in N order: each
    /// member as its (field, value) pairs.
    pub fn members(&self, prefix: &str) -> Vec<Vec<(&str, &str)>> {
        self.indexed(&format!("{prefix}.member.")).into_iter().map(|(_, fields)| fields).collect()
    }

    /// Whether any parameter starts with `prefix.` (a map or list was given at all).
    pub fn has_nested(&self, prefix: &str) -> bool {
        let start = format!("{prefix}.");
        self.pairs.iter().any(|(key, _)| key.starts_with(&start))
    }

    /// Groups `<start>N.<field>=value` by N, ordered by N.
    fn indexed(&self, start: &str) -> Vec<(u32, Vec<(&str, &str)>)> {
        let mut groups: Vec<(u32, Vec<(&str, &str)>)> = Vec::new();
        for (key, value) in &self.pairs {
            let Some(rest) = key.strip_prefix(start) else { continue };
            let Some((index, field)) = rest.split_once('.') else { continue };
            let Ok(index) = index.parse::<u32>() else { continue };
            match groups.iter_mut().find(|(existing, _)| *existing == index) {
                Some((_, fields)) => fields.push((field, value.as_str())),
                None => groups.push((index, vec![(field, value.as_str())])),
            }
        }
        groups.sort_by_key(|(index, _)| *index);
        groups
    }

    /// The parameters as CloudTrail writes `requestParameters`: lower-camel-case names,
    /// maps as objects, lists as arrays of objects. `Action` and `Version` are left out.
    pub fn request_parameters(&self) -> Value {
        let mut object = Map::new();
        for (key, value) in &self.pairs {
            if key == "Action" || key == "Version" {
                continue;
            }
            let Some((top, rest)) = key.split_once('.') else {
                object.insert(lower_camel(key), Value::String(value.clone()));
                continue;
            };
            let name = lower_camel(top);
            if object.contains_key(&name) {
                continue;
            }
            let nested = if rest.starts_with("entry.") {
                let entries = self.map(top).unwrap_or_default();
                Value::Object(entries.into_iter().map(|(key, value)| (key, Value::String(value))).collect())
            } else {
                Value::Array(
                    self.members(top)
                        .into_iter()
                        .map(|fields| {
                            Value::Object(
                                fields
                                    .into_iter()
                                    .map(|(field, value)| (lower_camel(field), Value::String(value.to_owned())))
                                    .collect(),
                            )
                        })
                        .collect(),
                )
            };
            object.insert(name, nested);
        }
        Value::Object(object)
    }
}

fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Escapes text for an XML element or attribute value.
pub fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot carry most control characters even escaped as entities; CR and
            // TAB survive only as character references.
            '\r' => out.push_str("&#xD;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// A writer for SNS's documents.
pub fn writer() -> XmlWriter {
    XmlWriter::new(escape_into)
}

/// A map as the query protocol writes it: `<entry><key/><value/></entry>` per pair.
pub fn map(xml: &mut XmlWriter, tag: &str, pairs: &[(String, String)]) {
    xml.open(tag);
    for (key, value) in pairs {
        xml.open("entry").element("key", key).element("value", value).close("entry");
    }
    xml.close(tag);
}

/// The whole response document of `action`: `<ActionResponse>` with the result (if the
/// operation has one) and the request ID.
pub fn response_document(action: &str, result: Option<&str>, request_id: &str) -> String {
    let mut xml = writer();
    xml.raw(&format!("<{action}Response xmlns=\"{XML_NAMESPACE}\">"));
    if let Some(result) = result {
        xml.open(&format!("{action}Result"));
        xml.raw(result);
        xml.close(&format!("{action}Result"));
    }
    xml.open("ResponseMetadata").element("RequestId", request_id).close("ResponseMetadata");
    xml.close(&format!("{action}Response"));
    format!("<?xml version=\"1.0\"?>\n{}\n", xml.finish())
}

/// An HTTP 200 with an XML document.
pub fn xml_response(status: StatusCode, document: String, request_id: &str) -> Response {
    let mut response = (status, document).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", value);
    }
    response
}

/// SNS's `<ErrorResponse>`: `Sender` for client faults, `Receiver` for the service's own.
pub fn error_response(error: &ApiError, request_id: &str) -> Response {
    let fault = if error.status.is_server_error() { "Receiver" } else { "Sender" };
    let mut xml = writer();
    xml.raw(&format!("<ErrorResponse xmlns=\"{XML_NAMESPACE}\">"));
    xml.open("Error")
        .element("Type", fault)
        .element("Code", error.code)
        .element("Message", &error.message)
        .close("Error");
    xml.element("RequestId", request_id);
    xml.close("ErrorResponse");
    xml_response(error.status, format!("<?xml version=\"1.0\"?>\n{}\n", xml.finish()), request_id)
}

/// The one place that maps SNS's error kinds to its codes and statuses.
pub fn api_error(error: &SnsError) -> ApiError {
    let message = error.to_string();
    match error.kind() {
        ErrorKind::NotFound => ApiError::new("NotFound", message, StatusCode::NOT_FOUND),
        ErrorKind::InvalidParameter => ApiError::client("InvalidParameter", message),
        ErrorKind::AuthorizationError => ApiError::new("AuthorizationError", message, StatusCode::FORBIDDEN),
        ErrorKind::TopicLimitExceeded => ApiError::new("TopicLimitExceeded", message, StatusCode::FORBIDDEN),
        ErrorKind::TagLimitExceeded => ApiError::client("TagLimitExceeded", message),
        ErrorKind::Internal => {
            tracing::error!(%error, "SNS operation failed");
            internal_error()
        }
    }
}

pub fn internal_error() -> ApiError {
    ApiError::new(
        "InternalError",
        "The request processing has failed because of an unknown error, exception or failure.",
        StatusCode::INTERNAL_SERVER_ERROR,
    )
}

pub fn throttled() -> ApiError {
    ApiError::new("Throttled", "Rate exceeded", StatusCode::TOO_MANY_REQUESTS)
}

/// The authentication failures of [`crate::api::authenticate`], renamed as query-protocol
/// services (SNS, STS, IAM) name them.
pub fn auth_error(error: ApiError) -> ApiError {
    let (code, status) = match error.code {
        "UnrecognizedClientException" => ("InvalidClientTokenId", StatusCode::FORBIDDEN),
        "InvalidSignatureException" => ("SignatureDoesNotMatch", StatusCode::FORBIDDEN),
        "IncompleteSignatureException" => ("IncompleteSignature", StatusCode::BAD_REQUEST),
        "MissingAuthenticationTokenException" => ("MissingAuthenticationToken", StatusCode::FORBIDDEN),
        _ => return error,
    };
    ApiError::new(code, error.message, status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flat_map_and_list_parameters() {
        let form = Form::parse(
            b"Action=CreateTopic&Name=my-topic&Attributes.entry.2.key=Policy&Attributes.entry.2.value=%7B%7D\
              &Attributes.entry.1.key=DisplayName&Attributes.entry.1.value=Hello+World\
              &Tags.member.1.Key=team&Tags.member.1.Value=audit&Version=2010-03-31",
        );
        assert_eq!(form.get("Name"), Some("my-topic"));
        assert_eq!(form.get("Missing"), None);
        assert_eq!(
            form.map("Attributes").unwrap(),
            vec![("DisplayName".to_owned(), "Hello World".to_owned()), ("Policy".to_owned(), "{}".to_owned())]
        );
        assert_eq!(form.members("Tags"), vec![vec![("Key", "team"), ("Value", "audit")]]);
        assert!(form.has_nested("Tags"));
        assert!(!form.has_nested("Name"));
    }

    #[test]
    fn reports_missing_and_malformed_parameters() {
        let form = Form::parse(b"Flag=maybe&Attributes.entry.1.value=x");
        assert_eq!(
            form.required("TopicArn").unwrap_err(),
            SnsError::invalid("Invalid parameter: TopicArn Reason: no value for required parameter")
        );
        assert!(form.boolean("Flag").is_err());
        assert_eq!(form.boolean("Absent").unwrap(), None);
        assert!(form.map("Attributes").is_err());
    }

    #[test]
    fn bad_encoding_never_fails() {
        let form = Form::parse(b"Name=%ZZ%&%FF=\xff\xfe&&=");
        assert_eq!(form.get("Name"), Some("%ZZ%"));
    }

    #[test]
    fn writes_request_parameters_as_cloudtrail_does() {
        let form = Form::parse(
            b"Action=CreateTopic&Version=2010-03-31&Name=t&Attributes.entry.1.key=DisplayName\
              &Attributes.entry.1.value=D&Tags.member.1.Key=k&Tags.member.1.Value=v",
        );
        assert_eq!(
            form.request_parameters(),
            serde_json::json!({"name": "t", "attributes": {"DisplayName": "D"}, "tags": [{"key": "k", "value": "v"}]})
        );
    }

    fn escape(text: &str) -> String {
        let mut out = String::new();
        escape_into(text, &mut out);
        out
    }

    #[test]
    fn escapes_xml() {
        assert_eq!(escape("a<b>&\"c\"'d'"), "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;");
        assert_eq!(escape("line\nnext\r\u{1}"), "line\nnext&#xD;\u{FFFD}");
        assert_eq!(escape("ünïcödé"), "ünïcödé");
    }

    #[test]
    fn writes_response_and_error_documents() {
        let mut result = writer();
        result.element("TopicArn", "arn:aws:sns:us-east-1:123456789012:a&b");
        let document = response_document("CreateTopic", Some(&result.finish()), "req-1");
        assert!(document.contains(
            "<CreateTopicResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><CreateTopicResult>\
             <TopicArn>arn:aws:sns:us-east-1:123456789012:a&amp;b</TopicArn></CreateTopicResult>\
             <ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></CreateTopicResponse>"
        ));
        let error = api_error(&SnsError::NotFound("Topic does not exist"));
        assert_eq!((error.code, error.status), ("NotFound", StatusCode::NOT_FOUND));
        let mut xml = writer();
        map(&mut xml, "Attributes", &[("k".to_owned(), "<v>".to_owned())]);
        assert_eq!(xml.finish(), "<Attributes><entry><key>k</key><value>&lt;v&gt;</value></entry></Attributes>");
    }
}
