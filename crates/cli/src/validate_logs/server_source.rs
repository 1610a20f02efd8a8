//! [`ServerSource`]: validation against a running server over its APIs, the calls the AWS
//! CLI makes: CloudTrail DescribeTrails and ListPublicKeys (AWS JSON 1.1), S3
//! GetBucketLocation, ListObjects (v1, `encoding-type=url`) and GetObject (path-style); and
//! Trailkeeper's digest-chains call for the newest digest. All are signed with SigV4 with
//! the credentials of the AWS environment variables. Failures are
//! worded as botocore words them: `An error occurred (Code) when calling the Op operation: ...`.
//!
//! The validation itself is synchronous; each call runs on a current-thread runtime.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::{Value, json};
use trailkeeper_server::validation::{DigestLocation, DigestSource, Fetched, PublicKey, SourceError, SourceObject};

const CLOUDTRAIL_TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.";

/// A trail as DescribeTrails shows it: where its files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailBucket {
    pub bucket: String,
    pub prefix: Option<String>,
}

/// Reads digests, log files and public keys from a server's APIs.
pub struct ServerSource {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    /// The endpoint without a trailing slash, and its `host[:port]` for signing.
    endpoint: String,
    host: String,
    access_key_id: String,
    secret_access_key: String,
    /// The source Region: DescribeTrails and GetBucketLocation are signed for it.
    region: String,
    /// Each bucket's Region (GetBucketLocation), which its S3 calls are signed for.
    bucket_regions: HashMap<String, String>,
}

/// One HTTP answer.
struct Answer {
    status: reqwest::StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl ServerSource {
    /// A source for the server at `endpoint`, signing CloudTrail calls for `region`, with
    /// the credentials in `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    pub fn new(endpoint: &str, region: &str) -> anyhow::Result<ServerSource> {
        let (Ok(access_key_id), Ok(secret_access_key)) =
            (std::env::var("AWS_ACCESS_KEY_ID"), std::env::var("AWS_SECRET_ACCESS_KEY"))
        else {
            // botocore's words when it finds no credentials.
            anyhow::bail!("Unable to locate credentials. You can configure credentials by running \"aws configure\".");
        };
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let url = reqwest::Url::parse(&endpoint).with_context(|| format!("invalid endpoint {endpoint}"))?;
        let host = match (url.host_str(), url.port()) {
            (Some(name), Some(port)) => format!("{name}:{port}"),
            (Some(name), None) => name.to_owned(),
            _ => anyhow::bail!("invalid endpoint {endpoint}"),
        };
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .context("cannot create the HTTP client")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        Ok(ServerSource {
            runtime,
            client,
            endpoint,
            host,
            access_key_id,
            secret_access_key,
            region: region.to_owned(),
            bucket_regions: HashMap::new(),
        })
    }

    /// The bucket and prefix of the trail with this exact ARN among the trails
    /// DescribeTrails lists in the source Region, shadow trails included.
    pub fn find_trail(&mut self, arn: &str) -> Result<Option<TrailBucket>, SourceError> {
        let trails = self.cloudtrail("DescribeTrails", &self.region, &json!({}))?;
        let found = trails["trailList"].as_array().into_iter().flatten().find(|trail| trail["TrailARN"] == arn);
        Ok(found.map(|trail| TrailBucket {
            bucket: trail["S3BucketName"].as_str().unwrap_or_default().to_owned(),
            prefix: trail["S3KeyPrefix"].as_str().map(str::to_owned),
        }))
    }

    /// Sends a signed request and reads the whole answer.
    fn send(
        &self,
        (method, path, query): (reqwest::Method, &str, &str),
        (service, region): (&str, &str),
        headers: &[(&str, &str)],
        body: Vec<u8>,
        operation: &str,
    ) -> Result<Answer, SourceError> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs() as i64);
        let params = trailkeeper_sigv4::SigningParams {
            access_key_id: &self.access_key_id,
            secret_access_key: &self.secret_access_key,
            region,
            service,
            now_unix_seconds: now,
            include_content_sha256: service == "s3",
        };
        let mut signed_headers = vec![("host", self.host.as_str())];
        signed_headers.extend_from_slice(headers);
        let signature = trailkeeper_sigv4::sign(method.as_str(), path, query, &signed_headers, &body, &params);
        let url = if query.is_empty() {
            format!("{}{path}", self.endpoint)
        } else {
            format!("{}{path}?{query}", self.endpoint)
        };
        let mut request = self.client.request(method, url).body(body);
        for (name, value) in
            headers.iter().copied().chain(signature.iter().map(|(name, value)| (*name, value.as_str())))
        {
            request = request.header(name, value);
        }
        self.runtime.block_on(async {
            let response = request.send().await.map_err(|error| {
                SourceError::new(format!("Could not connect to the endpoint URL: \"{}\" ({error})", self.endpoint))
            })?;
            let (status, headers) = (response.status(), response.headers().clone());
            let body = response.bytes().await.map_err(|error| {
                SourceError::new(format!("An error occurred when calling the {operation} operation: {error}"))
            })?;
            Ok(Answer { status, headers, body: body.to_vec() })
        })
    }

    /// The newest digest the trail wrote in `region`, from Trailkeeper's integrity API
    /// (`GET /v1/integrity/digest-chains`, beyond CloudTrail's): what tells a deleted
    /// newest digest from the end of the chain.
    pub fn newest_digest(&self, arn: &str, region: &str) -> Result<Option<DigestLocation>, SourceError> {
        const OPERATION: &str = "GetDigestChains";
        let query = format!("trailArn={}", uri_encode(arn, false));
        let request = (reqwest::Method::GET, "/v1/integrity/digest-chains", query.as_str());
        let answer = self.send(request, ("cloudtrail", &self.region), &[], Vec::new(), OPERATION)?;
        let chains = json_answer(&answer, OPERATION)?;
        let chain = chains["chains"].as_array().into_iter().flatten().find(|chain| chain["region"] == region);
        Ok(chain.and_then(|chain| {
            Some(DigestLocation {
                bucket: chain["bucket"].as_str()?.to_owned(),
                key: chain["key"].as_str()?.to_owned(),
            })
        }))
    }

    /// One CloudTrail call (AWS JSON 1.1), signed for `region`.
    fn cloudtrail(&self, operation: &str, region: &str, input: &Value) -> Result<Value, SourceError> {
        let target = format!("{CLOUDTRAIL_TARGET_PREFIX}{operation}");
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target.as_str())];
        let request = (reqwest::Method::POST, "/", "");
        let answer = self.send(request, ("cloudtrail", region), &headers, input.to_string().into_bytes(), operation)?;
        json_answer(&answer, operation)
    }

    /// One S3 GET, path-style, signed for the bucket's Region.
    fn s3_get(&mut self, bucket: &str, key: Option<&str>, query: &str, operation: &str) -> Result<Answer, SourceError> {
        let region = self.bucket_region(bucket)?;
        let path = match key {
            Some(key) => format!("/{}/{}", uri_encode(bucket, true), uri_encode(key, true)),
            None => format!("/{}", uri_encode(bucket, true)),
        };
        self.send((reqwest::Method::GET, &path, query), ("s3", &region), &[], Vec::new(), operation)
    }

    /// The bucket's Region, asked once in the source Region, as the AWS CLI asks it.
    fn bucket_region(&mut self, bucket: &str) -> Result<String, SourceError> {
        if let Some(region) = self.bucket_regions.get(bucket) {
            return Ok(region.clone());
        }
        let path = format!("/{}", uri_encode(bucket, true));
        let request = (reqwest::Method::GET, path.as_str(), "location=");
        let answer = self.send(request, ("s3", &self.region), &[], Vec::new(), "GetBucketLocation")?;
        let text = String::from_utf8_lossy(&answer.body);
        if !answer.status.is_success() {
            return Err(s3_error(&text, "GetBucketLocation"));
        }
        let constraint = xml_elements(&text, "LocationConstraint").into_iter().next().unwrap_or_default();
        let region = if constraint.is_empty() { "us-east-1".to_owned() } else { constraint };
        self.bucket_regions.insert(bucket.to_owned(), region.clone());
        Ok(region)
    }
}

impl DigestSource for ServerSource {
    fn list_keys(&mut self, bucket: &str, prefix: &str, after: &str) -> Result<Vec<String>, SourceError> {
        // Parameters in canonical (sorted) order, encoded as SigV4 encodes them.
        let query =
            format!("encoding-type=url&marker={}&prefix={}", uri_encode(after, false), uri_encode(prefix, false));
        let answer = self.s3_get(bucket, None, &query, "ListObjects")?;
        let text = String::from_utf8_lossy(&answer.body);
        if !answer.status.is_success() {
            return Err(s3_error(&text, "ListObjects"));
        }
        Ok(xml_elements(&text, "Key").iter().map(|key| url_decode(key)).collect())
    }

    fn get_object(&mut self, bucket: &str, key: &str) -> Result<Fetched, SourceError> {
        let answer = self.s3_get(bucket, Some(key), "", "GetObject")?;
        if !answer.status.is_success() {
            let text = String::from_utf8_lossy(&answer.body);
            if xml_elements(&text, "Code").first().map(String::as_str) == Some("NoSuchKey") {
                return Ok(Fetched::NotFound);
            }
            return Err(s3_error(&text, "GetObject"));
        }
        let metadata: BTreeMap<String, String> = answer
            .headers
            .iter()
            .filter_map(|(name, value)| {
                let name = name.as_str().to_ascii_lowercase();
                let short = name.strip_prefix("x-amz-meta-")?;
                Some((short.to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            })
            .collect();
        Ok(Fetched::Object(SourceObject { body: answer.body, metadata }))
    }

    fn public_keys(&mut self, region: &str, start_ms: i64, end_ms: i64) -> Result<Vec<PublicKey>, SourceError> {
        // The server answers with the keys of the Region the call is signed for.
        let input = json!({ "StartTime": start_ms as f64 / 1000.0, "EndTime": end_ms as f64 / 1000.0 });
        let answer = self.cloudtrail("ListPublicKeys", region, &input)?;
        let mut keys = Vec::new();
        for key in answer["PublicKeyList"].as_array().into_iter().flatten() {
            let der = base64::engine::general_purpose::STANDARD
                .decode(key["Value"].as_str().unwrap_or_default())
                .map_err(|error| SourceError::new(error.to_string()))?;
            keys.push(PublicKey { fingerprint: key["Fingerprint"].as_str().unwrap_or_default().to_owned(), der });
        }
        Ok(keys)
    }
}

/// A JSON answer's body, or its `{"__type", "message"}` error as botocore words it.
fn json_answer(answer: &Answer, operation: &str) -> Result<Value, SourceError> {
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    if answer.status.is_success() {
        return Ok(body);
    }
    let code = body["__type"].as_str().map_or("Unknown", |kind| kind.rsplit('#').next().unwrap_or(kind));
    let message = body["message"].as_str().or(body["Message"].as_str()).unwrap_or_default();
    Err(client_error(code, message, operation))
}

fn client_error(code: &str, message: &str, operation: &str) -> SourceError {
    SourceError::new(format!("An error occurred ({code}) when calling the {operation} operation: {message}"))
}

/// An S3 `<Error>` document as botocore words it.
fn s3_error(document: &str, operation: &str) -> SourceError {
    let code = xml_elements(document, "Code").into_iter().next().unwrap_or_else(|| "Unknown".to_owned());
    let message = xml_elements(document, "Message").into_iter().next().unwrap_or_default();
    client_error(&code, &message, operation)
}

/// The text of every `<name ...>...</name>` element (empty for `<name .../>`), unescaped.
/// S3's documents are flat enough for this: no element it reads nests one of the same name.
fn xml_elements(document: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}"), format!("</{name}>"));
    let mut found = Vec::new();
    let mut rest = document;
    while let Some(start) = rest.find(&open) {
        let tag = &rest[start + open.len()..];
        let Some(tag_end) = tag.find('>') else { break };
        if !(tag.starts_with('>') || tag.starts_with(char::is_whitespace) || tag.starts_with('/')) {
            // Another element whose name starts with this one.
            rest = &tag[tag_end + 1..];
            continue;
        }
        let content = &tag[tag_end + 1..];
        if tag[..tag_end].ends_with('/') {
            found.push(String::new());
            rest = content;
            continue;
        }
        let Some(end) = content.find(&close) else { break };
        found.push(xml_unescape(&content[..end]));
        rest = &content[end + close.len()..];
    }
    found
}

fn xml_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let entity_end = rest[at..].find(';').map(|end| at + end);
        let decoded = entity_end.and_then(|end| {
            let entity = &rest[at + 1..end];
            let character = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity
                    .strip_prefix("#x")
                    .map(|hex| u32::from_str_radix(hex, 16))
                    .or_else(|| entity.strip_prefix('#').map(str::parse::<u32>))
                    .and_then(Result::ok)
                    .and_then(char::from_u32),
            };
            character.map(|character| (character, end))
        });
        match decoded {
            Some((character, end)) => {
                out.push(character);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Percent-encodes as SigV4 and S3 expect: every byte but `A-Za-z0-9-_.~` (and `/` when
/// `keep_slash`).
fn uri_encode(text: &str, keep_slash: bool) -> String {
    let mut encoded = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') || (keep_slash && byte == b'/') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Undoes `encoding-type=url` as botocore does (`unquote_plus`).
fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes.get(index + 1..index + 3).and_then(|pair| std::str::from_utf8(pair).ok());
        match (bytes[index], hex.and_then(|pair| u8::from_str_radix(pair, 16).ok())) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (b'+', _) => {
                decoded.push(b' ');
                index += 1;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_s3_documents() {
        let listing = "<ListBucketResult><Name>b</Name><Contents><Key>AWSLogs/a%20b%2Bc.json.gz</Key></Contents>\
                       <Contents><Key>x&amp;y</Key></Contents></ListBucketResult>";
        let keys: Vec<String> = xml_elements(listing, "Key").iter().map(|key| url_decode(key)).collect();
        assert_eq!(keys, ["AWSLogs/a b+c.json.gz", "x&y"]);
        assert_eq!(xml_unescape("a&#x1F;b&#65;&bogus;"), "a\u{1f}bA&bogus;");
        let error = "<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>";
        assert_eq!(
            s3_error(error, "ListObjects").message,
            "An error occurred (NoSuchBucket) when calling the ListObjects operation: The specified bucket does not exist"
        );
        let location = "<?xml version=\"1.0\"?><LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>";
        assert_eq!(xml_elements(location, "LocationConstraint"), [""]);
        let location = "<LocationConstraint xmlns=\"x\">eu-west-1</LocationConstraint>";
        assert_eq!(xml_elements(location, "LocationConstraint"), ["eu-west-1"]);
        assert_eq!(xml_elements("<KeyCount>2</KeyCount><Key>k</Key>", "Key"), ["k"], "not KeyCount");
        assert_eq!(uri_encode("AWSLogs/1 2_ü", true), "AWSLogs/1%202_%C3%BC");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
    }
}
