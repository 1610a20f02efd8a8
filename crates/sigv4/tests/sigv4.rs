//! The crate's one integration-test binary: AWS's published example, requests signed by
//! botocore (`vectors/botocore.rs`, made by `vectors/generate_botocore.py`), every error AWS
//! would return, tampering, and sign→verify round trips as property tests.

#[path = "vectors/botocore.rs"]
mod botocore;

use proptest::prelude::*;
use trailkeeper_sigv4::{
    Authorization, DecodedPayload, RequestParts, SigV4Error, SigningParams, decode_streaming_payload,
    parse_authorization, presign, sha256_hex, sign, signing_details, verify,
};

/// One request signed by botocore, exactly as it went on the wire.
pub struct BotocoreVector {
    pub name: &'static str,
    pub signed_by: &'static str,
    pub service: &'static str,
    pub region: &'static str,
    pub method: &'static str,
    pub path: &'static str,
    pub query: &'static str,
    pub headers: &'static [(&'static str, &'static str)],
    pub body: &'static [u8],
    pub presigned: bool,
    pub canonical_request: &'static str,
}

/// An owned request, so tests can tamper with it and then borrow it as [`RequestParts`].
#[derive(Clone, Debug)]
struct OwnedRequest {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl OwnedRequest {
    fn from_vector(vector: &BotocoreVector) -> OwnedRequest {
        OwnedRequest {
            method: vector.method.to_owned(),
            path: vector.path.to_owned(),
            query: vector.query.to_owned(),
            headers: vector
                .headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.as_bytes().to_vec()))
                .collect(),
            body: vector.body.to_vec(),
        }
    }

    fn header_refs(&self) -> Vec<(&str, &[u8])> {
        self.headers.iter().map(|(name, value)| (name.as_str(), value.as_slice())).collect()
    }

    fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.as_bytes().to_vec()));
    }

    fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
    }

    /// Parses and verifies in one go, as the server does once it has found the secret.
    fn check(&self, secret: &str, now: i64) -> Result<Authorization, SigV4Error> {
        let headers = self.header_refs();
        let parts = self.parts(&headers);
        let authorization = parse_authorization(&parts)?;
        verify(&parts, &authorization, secret, now)?;
        Ok(authorization)
    }

    fn parse(&self) -> Result<Authorization, SigV4Error> {
        let headers = self.header_refs();
        parse_authorization(&self.parts(&headers))
    }

    fn parts<'a>(&'a self, headers: &'a [(&'a str, &'a [u8])]) -> RequestParts<'a> {
        RequestParts { method: &self.method, path: &self.path, query: &self.query, headers, body: &self.body }
    }
}

fn vector(name: &str) -> &'static BotocoreVector {
    botocore::VECTORS.iter().find(|vector| vector.name == name).expect("vector exists")
}

fn error_of(result: Result<Authorization, SigV4Error>) -> SigV4Error {
    result.expect_err("request must be refused")
}

// ---------------------------------------------------------------------------------------
// AWS's published example: IAM ListUsers, 2015-08-30T12:36:00Z.
// ---------------------------------------------------------------------------------------

const AWS_EXAMPLE_ACCESS_KEY: &str = "AKIDEXAMPLE";
const AWS_EXAMPLE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const AWS_EXAMPLE_NOW: i64 = 1_440_938_160;
const AWS_EXAMPLE_SIGNATURE: &str = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
const AWS_EXAMPLE_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

fn aws_example_params() -> SigningParams<'static> {
    SigningParams {
        access_key_id: AWS_EXAMPLE_ACCESS_KEY,
        secret_access_key: AWS_EXAMPLE_SECRET,
        region: "us-east-1",
        service: "iam",
        now_unix_seconds: AWS_EXAMPLE_NOW,
        include_content_sha256: false,
    }
}

fn aws_example_request() -> OwnedRequest {
    OwnedRequest {
        method: "GET".to_owned(),
        path: "/".to_owned(),
        query: "Action=ListUsers&Version=2010-05-08".to_owned(),
        headers: vec![
            ("Content-Type".to_owned(), AWS_EXAMPLE_CONTENT_TYPE.as_bytes().to_vec()),
            ("Host".to_owned(), b"iam.amazonaws.com".to_vec()),
            ("X-Amz-Date".to_owned(), b"20150830T123600Z".to_vec()),
            (
                "Authorization".to_owned(),
                format!(
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
                     SignedHeaders=content-type;host;x-amz-date, Signature={AWS_EXAMPLE_SIGNATURE}"
                )
                .into_bytes(),
            ),
        ],
        body: Vec::new(),
    }
}

#[test]
fn aws_documentation_example_is_reproduced_by_sign() {
    let added = sign(
        "GET",
        "/",
        "Action=ListUsers&Version=2010-05-08",
        &[("Content-Type", AWS_EXAMPLE_CONTENT_TYPE), ("Host", "iam.amazonaws.com")],
        b"",
        &aws_example_params(),
    );
    assert_eq!(
        added,
        vec![
            ("x-amz-date", "20150830T123600Z".to_owned()),
            (
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
                     SignedHeaders=content-type;host;x-amz-date, Signature={AWS_EXAMPLE_SIGNATURE}"
                )
            ),
        ]
    );
}

#[test]
fn aws_documentation_example_is_accepted_by_verify_with_the_documented_intermediate_values() {
    let request = aws_example_request();
    let authorization = request.check(AWS_EXAMPLE_SECRET, AWS_EXAMPLE_NOW).expect("the documented request verifies");
    assert_eq!(authorization.access_key_id, "AKIDEXAMPLE");
    assert_eq!(authorization.date, "20150830");
    assert_eq!(authorization.region, "us-east-1");
    assert_eq!(authorization.service, "iam");
    assert_eq!(authorization.signed_headers, ["content-type", "host", "x-amz-date"]);
    assert!(!authorization.presigned);

    let headers = request.header_refs();
    let details = signing_details(&request.parts(&headers), &authorization).expect("details");
    assert_eq!(
        details.canonical_request,
        "GET\n/\nAction=ListUsers&Version=2010-05-08\n\
         content-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\n\
         x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        details.string_to_sign,
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n\
         f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
    );
}

#[test]
fn aws_documentation_example_fails_with_the_wrong_secret() {
    let error = error_of(aws_example_request().check("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ", AWS_EXAMPLE_NOW));
    assert_eq!(error, SigV4Error::SignatureDoesNotMatch);
    assert_eq!(error.code(), "InvalidSignatureException");
    assert_eq!(
        error.to_string(),
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret \
         Access Key and signing method. Consult the service documentation for details."
    );
    assert_eq!(error.s3_code(), "SignatureDoesNotMatch");
}

// ---------------------------------------------------------------------------------------
// Requests signed by botocore.
// ---------------------------------------------------------------------------------------

fn authorization_header_of(vector: &BotocoreVector) -> &'static str {
    vector.headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("authorization")).expect("signed").1
}

fn botocore_params(vector: &BotocoreVector, include_content_sha256: bool) -> SigningParams<'static> {
    SigningParams {
        access_key_id: botocore::ACCESS_KEY_ID,
        secret_access_key: botocore::SECRET_ACCESS_KEY,
        region: vector.region,
        service: vector.service,
        now_unix_seconds: botocore::NOW_UNIX_SECONDS,
        include_content_sha256,
    }
}

#[test]
fn verify_accepts_every_botocore_vector_and_agrees_on_the_canonical_request() {
    assert!(botocore::VECTORS.len() >= 9);
    for vector in botocore::VECTORS {
        let request = OwnedRequest::from_vector(vector);
        let authorization = request
            .check(botocore::SECRET_ACCESS_KEY, botocore::NOW_UNIX_SECONDS)
            .unwrap_or_else(|error| panic!("{} ({}): {error}", vector.name, vector.signed_by));
        assert_eq!(authorization.presigned, vector.presigned, "{}", vector.name);
        assert_eq!(authorization.service, vector.service, "{}", vector.name);
        authorization.check_scope(vector.region, vector.service).expect("scope matches");
        let headers = request.header_refs();
        let details = signing_details(&request.parts(&headers), &authorization).expect("details");
        assert_eq!(details.canonical_request, vector.canonical_request, "{}", vector.name);
    }
}

#[test]
fn sign_reproduces_every_botocore_authorization_header() {
    // sign() always dates a request with x-amz-date; botocore switches to the Date header when
    // the caller set one, so that vector is only for verify().
    let header_signed =
        |vector: &&BotocoreVector| !vector.presigned && vector.name != "date_header_and_repeated_header";
    for vector in botocore::VECTORS.iter().filter(header_signed) {
        let expected = authorization_header_of(vector);
        let signed_list =
            expected.split("SignedHeaders=").nth(1).and_then(|rest| rest.split(',').next()).expect("list");
        let signed: Vec<&str> = signed_list.split(';').collect();
        // Pass the headers botocore signed, less the ones sign() adds itself.
        let headers: Vec<(&str, &str)> = vector
            .headers
            .iter()
            .filter(|(name, _)| {
                let name = name.to_ascii_lowercase();
                signed.contains(&name.as_str()) && name != "x-amz-date"
            })
            .copied()
            .collect();
        let added =
            sign(vector.method, vector.path, vector.query, &headers, vector.body, &botocore_params(vector, false));
        let authorization = added.iter().find(|(name, _)| *name == "authorization").expect("authorization added");
        assert_eq!(authorization.1, expected, "{}", vector.name);
    }
}

#[test]
fn sign_can_add_the_content_sha256_header_botocore_adds_for_s3() {
    let vector = vector("s3_get_object_s3sigv4auth");
    let added = sign(
        vector.method,
        vector.path,
        vector.query,
        &[("Range", "bytes=0-9"), ("Host", "s3.amazonaws.com")],
        vector.body,
        &botocore_params(vector, true),
    );
    assert_eq!(added[0], ("x-amz-date", "20240315T101500Z".to_owned()));
    assert_eq!(added[1], ("x-amz-content-sha256", sha256_hex(b"")));
    assert_eq!(added[2].1, authorization_header_of(vector));
}

#[test]
fn presign_reproduces_botocore_presigned_urls() {
    for vector in botocore::VECTORS.iter().filter(|vector| vector.presigned) {
        let operation_query = vector.query.split("X-Amz-Algorithm=").next().expect("query").trim_end_matches('&');
        let expires: u32 = vector
            .query
            .split('&')
            .find_map(|pair| pair.strip_prefix("X-Amz-Expires="))
            .and_then(|value| value.parse().ok())
            .expect("expires");
        let query = presign(
            vector.method,
            vector.path,
            operation_query,
            vector.headers,
            &botocore_params(vector, false),
            expires,
        );
        assert_eq!(query, vector.query, "{}", vector.name);
    }
}

#[test]
fn presigned_urls_are_valid_until_they_expire() {
    let vector = vector("s3_presigned_get");
    let request = OwnedRequest::from_vector(vector);
    let signed_at = botocore::NOW_UNIX_SECONDS;
    request.check(botocore::SECRET_ACCESS_KEY, signed_at + 3600).expect("valid for its full hour");
    let error = error_of(request.check(botocore::SECRET_ACCESS_KEY, signed_at + 3601));
    assert!(matches!(error, SigV4Error::PresignedUrlExpired { expires_seconds: 3600, .. }), "{error:?}");
    assert_eq!(error.to_string(), "Request has expired");
    assert_eq!(error.s3_code(), "AccessDenied");
    let error = error_of(request.check(botocore::SECRET_ACCESS_KEY, signed_at - 901));
    assert!(matches!(error, SigV4Error::SignatureNotYetCurrent { .. }), "{error:?}");
}

#[test]
fn presigned_url_with_a_tampered_query_fails() {
    let mut request = OwnedRequest::from_vector(vector("iam_presigned_list_users"));
    request.query = request.query.replace("Action=ListUsers", "Action=DeleteUser");
    assert_eq!(
        error_of(request.check(botocore::SECRET_ACCESS_KEY, botocore::NOW_UNIX_SECONDS)),
        SigV4Error::SignatureDoesNotMatch
    );

    let mut request = OwnedRequest::from_vector(vector("s3_presigned_get"));
    request.query = request.query.replace("X-Amz-Expires=3600", "X-Amz-Expires=7200");
    assert_eq!(
        error_of(request.check(botocore::SECRET_ACCESS_KEY, botocore::NOW_UNIX_SECONDS)),
        SigV4Error::SignatureDoesNotMatch
    );
}

// ---------------------------------------------------------------------------------------
// Tampering with a signed request.
// ---------------------------------------------------------------------------------------

fn tampered(name: &str, change: impl FnOnce(&mut OwnedRequest)) -> SigV4Error {
    let mut request = OwnedRequest::from_vector(vector(name));
    change(&mut request);
    error_of(request.check(botocore::SECRET_ACCESS_KEY, botocore::NOW_UNIX_SECONDS))
}

#[test]
fn tampering_with_any_signed_part_fails() {
    let json = "cloudtrail_describe_trails_client";
    let mismatch = SigV4Error::SignatureDoesNotMatch;
    assert_eq!(tampered(json, |request| request.body = br#"{"trailNameList": ["other"]}"#.to_vec()), mismatch);
    assert_eq!(tampered(json, |request| request.body.push(b' ')), mismatch);
    assert_eq!(
        tampered(json, |request| request
            .set_header("X-Amz-Target", "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.DeleteTrail")),
        mismatch
    );
    assert_eq!(tampered(json, |request| request.set_header("Host", "elsewhere.example.test")), mismatch);
    assert_eq!(tampered(json, |request| request.path = "/other".to_owned()), mismatch);
    assert_eq!(tampered(json, |request| request.query = "extra=1".to_owned()), mismatch);
    assert_eq!(tampered(json, |request| request.method = "PUT".to_owned()), mismatch);
    assert_eq!(
        tampered(json, |request| request.headers.push(("X-Amz-Target".to_owned(), b"second".to_vec()))),
        mismatch
    );
    assert_eq!(tampered(json, |request| request.remove_header("Content-Type")), mismatch);

    let rest = "rest_post_with_query";
    assert_eq!(tampered(rest, |request| request.query = request.query.replace("a=2", "a=3")), mismatch);
    assert_eq!(tampered(rest, |request| request.query.push_str("&new=1")), mismatch);
    assert_eq!(tampered(rest, |request| request.path = request.path.replace("items", "users")), mismatch);
    assert_eq!(tampered(rest, |request| request.set_header("X-Amz-Meta-Note", "one three")), mismatch);
}

#[test]
fn changes_the_signature_does_not_cover_are_accepted() {
    let mut request = OwnedRequest::from_vector(vector("cloudtrail_describe_trails_client"));
    request.set_header("User-Agent", "something else");
    request.set_header("Content-Length", "999");
    request.check(botocore::SECRET_ACCESS_KEY, botocore::NOW_UNIX_SECONDS).expect("unsigned headers may change");

    // Whitespace that canonicalisation collapses, and path segments it removes, do not matter.
    let mut request = OwnedRequest::from_vector(vector("rest_post_with_query"));
    request.set_header("X-Amz-Meta-Note", "one     two");
    request.path = request.path.replace("/prod//orders", "/prod/orders");
    request.query = "flag=&a=1&a=2&z=last&empty&sp%20ace=x%2By%20z&tilde=%7E_-.".to_owned();
    request.check(botocore::SECRET_ACCESS_KEY, botocore::NOW_UNIX_SECONDS).expect("canonically equal");
}

#[test]
fn an_s3_body_that_does_not_match_its_declared_hash_is_refused() {
    let error = tampered("s3_get_object_s3sigv4auth", |request| request.body = b"smuggled".to_vec());
    assert!(matches!(error, SigV4Error::ContentSha256Mismatch { .. }), "{error:?}");
    assert_eq!(error.s3_code(), "XAmzContentSHA256Mismatch");
    assert_eq!(error.to_string(), "The provided 'x-amz-content-sha256' header does not match what was computed.");
}

#[test]
fn s3_paths_are_signed_as_sent() {
    // botocore does not normalise S3 keys: "./" and "//" are part of the key.
    let error = tampered("s3_get_object_path_style_client", |request| request.path = request.path.replace("/./", "/"));
    assert_eq!(error, SigV4Error::SignatureDoesNotMatch);
}

// ---------------------------------------------------------------------------------------
// Every error AWS returns, with AWS's code and words.
// ---------------------------------------------------------------------------------------

fn signed_json_request(now: i64, extra_headers: &[(&str, &str)]) -> OwnedRequest {
    let params = SigningParams {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: AWS_EXAMPLE_SECRET,
        region: "us-east-1",
        service: "cloudtrail",
        now_unix_seconds: now,
        include_content_sha256: false,
    };
    let body = br#"{"trailNameList": []}"#;
    let mut headers = vec![
        ("Host", "cloudtrail.us-east-1.amazonaws.com"),
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.DescribeTrails"),
    ];
    headers.extend_from_slice(extra_headers);
    let added = sign("POST", "/", "", &headers, body, &params);
    let mut request = OwnedRequest {
        method: "POST".to_owned(),
        path: "/".to_owned(),
        query: String::new(),
        headers: headers.iter().map(|(name, value)| ((*name).to_owned(), value.as_bytes().to_vec())).collect(),
        body: body.to_vec(),
    };
    for (name, value) in added {
        request.set_header(name, &value);
    }
    request
}

const T0: i64 = 1_704_067_200; // 2024-01-01T00:00:00Z

#[test]
fn missing_authentication_token() {
    let mut request = signed_json_request(T0, &[]);
    request.remove_header("authorization");
    let error = error_of(request.check(AWS_EXAMPLE_SECRET, T0));
    assert_eq!(error, SigV4Error::MissingAuthenticationToken);
    assert_eq!(error.code(), "MissingAuthenticationTokenException");
    assert_eq!(error.to_string(), "Missing Authentication Token");
    assert_eq!(error.s3_code(), "AccessDenied");

    request.set_header("Authorization", "   ");
    assert_eq!(error_of(request.check(AWS_EXAMPLE_SECRET, T0)), SigV4Error::MissingAuthenticationToken);
}

#[test]
fn header_and_presigned_query_together_are_refused() {
    let mut request = signed_json_request(T0, &[]);
    request.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256".to_owned();
    let error = error_of(request.check(AWS_EXAMPLE_SECRET, T0));
    assert_eq!(error, SigV4Error::AuthorizationHeaderAndQuery);
    assert_eq!(
        error.to_string(),
        "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
    );
}

fn incomplete_message(authorization: &str, keep_date: bool) -> (String, &'static str) {
    let mut request = signed_json_request(T0, &[]);
    request.set_header("Authorization", authorization);
    if !keep_date {
        request.remove_header("x-amz-date");
    }
    let error = error_of(request.parse());
    assert!(matches!(error, SigV4Error::IncompleteSignature { presigned: false, .. }), "{error:?}");
    assert_eq!(error.code(), "IncompleteSignatureException");
    assert_eq!(error.s3_code(), "AuthorizationHeaderMalformed");
    (error.to_string(), error.code())
}

#[test]
fn malformed_authorization_headers_are_incomplete_signatures() {
    assert_eq!(
        incomplete_message("AWS4-HMAC-SHA256", false).0,
        "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. \
         Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either \
         a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256"
    );
    assert_eq!(
        incomplete_message("Bearer abc.def", true).0,
        "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. \
         Authorization header requires 'SignedHeaders' parameter. Authorization=Bearer abc.def"
    );
    let no_signature = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/cloudtrail/aws4_request, \
                        SignedHeaders=host;x-amz-date";
    assert_eq!(
        incomplete_message(no_signature, true).0,
        format!("Authorization header requires 'Signature' parameter. Authorization={no_signature}")
    );
    assert_eq!(
        incomplete_message(
            "AWS4-HMAC-SHA512 Credential=AKIDEXAMPLE/20240101/us-east-1/cloudtrail/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=abc",
            true
        )
        .0,
        "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'"
    );
    assert_eq!(
        incomplete_message(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1, SignedHeaders=host;x-amz-date, Signature=abc",
            true
        )
        .0,
        "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got \
         'AKIDEXAMPLE/20240101/us-east-1'"
    );
    assert_eq!(
        incomplete_message(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/cloudtrail/aws4_request, \
             SignedHeaders=content-type;x-amz-date, Signature=abc",
            true
        )
        .0,
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
    );
}

#[test]
fn a_request_time_that_is_not_iso8601_basic_is_incomplete() {
    let mut request = signed_json_request(T0, &[]);
    request.set_header("X-Amz-Date", "2024-01-01T00:00:00Z");
    let error = error_of(request.parse());
    assert_eq!(error.code(), "IncompleteSignatureException");
    assert_eq!(
        error.to_string(),
        "Date must be in ISO-8601 'basic format'. Got '2024-01-01T00:00:00Z'. See http://en.wikipedia.org/wiki/ISO_8601"
    );
}

#[test]
fn the_date_header_stands_in_for_x_amz_date() {
    // Signed by botocore with Date and no X-Amz-Date: see the vector. Here, that a Date
    // header the server gets is read when X-Amz-Date is absent, and X-Amz-Date wins otherwise.
    let request = OwnedRequest::from_vector(vector("date_header_and_repeated_header"));
    let authorization = request.parse().expect("parses");
    assert_eq!(authorization.request_time, "20240315T101500Z");
    let mut with_both = request.clone();
    with_both.headers.push(("X-Amz-Date".to_owned(), b"20240315T101501Z".to_vec()));
    assert_eq!(with_both.parse().expect("parses").request_time, "20240315T101501Z");
}

#[test]
fn credential_scope_mismatches_are_listed_together() {
    let mut request = signed_json_request(T0, &[]);
    let authorization = request.parse().expect("parses");
    let error = authorization.check_scope("eu-west-1", "cloudtrail").expect_err("wrong region");
    assert_eq!(error.code(), "InvalidSignatureException");
    assert_eq!(error.s3_code(), "AuthorizationHeaderMalformed");
    assert_eq!(error.to_string(), "Credential should be scoped to a valid region, not 'us-east-1'.");

    let header = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231231/us-east-2/dynamodb/aws5_request, \
                  SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=00";
    request.set_header("Authorization", header);
    let authorization = request.parse().expect("parses");
    assert_eq!(
        authorization.check_scope("us-east-1", "cloudtrail").expect_err("everything is wrong").to_string(),
        "Credential should be scoped to a valid region, not 'us-east-2'. Credential should be scoped to correct \
         service: 'cloudtrail'. Credential should be scoped with a valid terminator: 'aws4_request', not \
         'aws5_request'. Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
         '20231231' != '20240101', from '20240101T000000Z'."
    );
    // verify() itself checks what it can without knowing the server's region: terminator, date.
    assert_eq!(
        error_of(request.check(AWS_EXAMPLE_SECRET, T0)).to_string(),
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. Date in \
         Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20231231' != \
         '20240101', from '20240101T000000Z'."
    );
}

#[test]
fn requests_more_than_15_minutes_old_or_early_are_refused_with_aws_text() {
    let request = signed_json_request(T0, &[]);
    request.check(AWS_EXAMPLE_SECRET, T0 + 900).expect("15 minutes late is still fine");
    request.check(AWS_EXAMPLE_SECRET, T0 - 900).expect("15 minutes early is still fine");

    let error = error_of(request.check(AWS_EXAMPLE_SECRET, T0 + 1800));
    assert_eq!(error.code(), "InvalidSignatureException");
    assert_eq!(error.s3_code(), "RequestTimeTooSkewed");
    assert_eq!(
        error.to_string(),
        "Signature expired: 20240101T000000Z is now earlier than 20240101T001500Z (20240101T003000Z - 15 min.)"
    );

    let error = error_of(request.check(AWS_EXAMPLE_SECRET, T0 - 1800));
    assert_eq!(error.code(), "InvalidSignatureException");
    assert_eq!(
        error.to_string(),
        "Signature not yet current: 20240101T000000Z is still later than 20231231T234500Z (20231231T233000Z + 15 min.)"
    );
}

#[test]
fn unrecognized_client_has_awss_code_and_message() {
    let error = SigV4Error::UnrecognizedClient;
    assert_eq!(error.code(), trailkeeper_sigv4::UNRECOGNIZED_CLIENT_CODE);
    assert_eq!(error.code(), "UnrecognizedClientException");
    assert_eq!(error.to_string(), "The security token included in the request is invalid.");
    assert_eq!(error.s3_code(), "InvalidAccessKeyId");
}

fn presigned_request(query: &str) -> OwnedRequest {
    OwnedRequest {
        method: "GET".to_owned(),
        path: "/".to_owned(),
        query: query.to_owned(),
        headers: vec![("Host".to_owned(), b"iam.amazonaws.com".to_vec())],
        body: Vec::new(),
    }
}

#[test]
fn malformed_presigned_queries_are_refused() {
    let error = error_of(presigned_request("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20240101T000000Z").parse());
    assert_eq!(error.code(), "IncompleteSignatureException");
    assert_eq!(error.s3_code(), "AuthorizationQueryParametersError");
    assert_eq!(
        error.to_string(),
        "AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must include \
         'X-Amz-Signature'. AWS query-string parameters must include 'X-Amz-SignedHeaders'. Re-examine the \
         query-string parameters."
    );

    let base = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20240101%2Fus-east-1%2Fiam%2Faws4_request\
                &X-Amz-Date=20240101T000000Z&X-Amz-SignedHeaders=host&X-Amz-Signature=00";
    for (expires, message) in [
        ("604801", "X-Amz-Expires must be less than a week (in seconds) that is 604800"),
        ("-1", "X-Amz-Expires must be non-negative"),
        ("soon", "X-Amz-Expires should be a number"),
    ] {
        let error = error_of(presigned_request(&format!("{base}&X-Amz-Expires={expires}")).parse());
        assert_eq!(error.to_string(), message);
        assert_eq!(error.s3_code(), "AuthorizationQueryParametersError");
    }
    let week = presigned_request(&format!("{base}&X-Amz-Expires=604800")).parse().expect("a week is allowed");
    assert_eq!(week.expires_seconds, Some(604_800));
    assert!(week.presigned);
}

#[test]
fn payload_hash_header_rules() {
    // UNSIGNED-PAYLOAD is accepted: the body is then not covered.
    let mut request = signed_json_request(T0, &[("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD")]);
    request.check(AWS_EXAMPLE_SECRET, T0).expect("unsigned payload");
    request.body = b"anything".to_vec();
    request.check(AWS_EXAMPLE_SECRET, T0).expect("the body is not signed");

    let request = signed_json_request(T0, &[("X-Amz-Content-SHA256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")]);
    let error = error_of(request.check(AWS_EXAMPLE_SECRET, T0));
    assert!(matches!(error, SigV4Error::StreamingPayloadNotSupported { .. }), "{error:?}");
    assert!(error.to_string().contains("not supported"));
    assert_eq!(error.s3_code(), "NotImplemented");

    let request = signed_json_request(T0, &[("X-Amz-Content-SHA256", "not-a-hash")]);
    let error = error_of(request.check(AWS_EXAMPLE_SECRET, T0));
    assert!(matches!(error, SigV4Error::InvalidContentSha256 { .. }), "{error:?}");
    assert_eq!(error.s3_code(), "InvalidArgument");

    // A declared hash that is the body's verifies; one that is not is refused after the
    // signature (which covers the declared value) checks out.
    let body_hash = sha256_hex(br#"{"trailNameList": []}"#);
    signed_json_request(T0, &[("X-Amz-Content-SHA256", &body_hash)]).check(AWS_EXAMPLE_SECRET, T0).expect("matches");
    let wrong = sha256_hex(b"other");
    let error = error_of(signed_json_request(T0, &[("X-Amz-Content-SHA256", &wrong)]).check(AWS_EXAMPLE_SECRET, T0));
    assert!(matches!(error, SigV4Error::ContentSha256Mismatch { .. }), "{error:?}");
}

// ---------------------------------------------------------------------------------------
// S3 streaming uploads: AWS's published examples ("Transferring Payload in Multiple Chunks"
// and its trailer variant), 64 KiB + 1 KiB of `a`, signed 2013-05-24T00:00:00Z.
// ---------------------------------------------------------------------------------------

const STREAMING_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const STREAMING_NOW: i64 = 1_369_353_600;

/// The documented request; `trailer` picks the `-TRAILER` example with a CRC32C trailer.
fn aws_streaming_example(trailer: bool) -> OwnedRequest {
    let (mode, signed_headers, seed, chunk_signatures, trailer_lines) = if trailer {
        (
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
            "content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer",
            "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e",
            [
                "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
                "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
                "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
            ],
            "x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n",
        )
    } else {
        (
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
            "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
            [
                "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
                "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
                "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
            ],
            "",
        )
    };
    let mut body = Vec::new();
    body.extend_from_slice(format!("10000;chunk-signature={}\r\n", chunk_signatures[0]).as_bytes());
    body.extend_from_slice(&[b'a'; 65_536]);
    body.extend_from_slice(format!("\r\n400;chunk-signature={}\r\n", chunk_signatures[1]).as_bytes());
    body.extend_from_slice(&[b'a'; 1024]);
    body.extend_from_slice(format!("\r\n0;chunk-signature={}\r\n", chunk_signatures[2]).as_bytes());
    body.extend_from_slice(trailer_lines.as_bytes());
    body.extend_from_slice(b"\r\n");
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders={signed_headers},Signature={seed}"
    );
    let mut headers = vec![
        ("Host", "s3.amazonaws.com".to_owned()),
        ("x-amz-date", "20130524T000000Z".to_owned()),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY".to_owned()),
        ("Authorization", authorization),
        ("x-amz-content-sha256", mode.to_owned()),
        ("Content-Encoding", "aws-chunked".to_owned()),
        ("x-amz-decoded-content-length", "66560".to_owned()),
    ];
    if trailer {
        headers.push(("x-amz-trailer", "x-amz-checksum-crc32c".to_owned()));
    } else {
        assert_eq!(body.len(), 66_824, "the documented Content-Length");
        headers.push(("Content-Length", "66824".to_owned()));
    }
    OwnedRequest {
        method: "PUT".to_owned(),
        path: "/examplebucket/chunkObject.txt".to_owned(),
        query: String::new(),
        headers: headers.into_iter().map(|(name, value)| (name.to_owned(), value.into_bytes())).collect(),
        body,
    }
}

fn decode(request: &OwnedRequest) -> Result<Option<DecodedPayload>, SigV4Error> {
    let headers = request.header_refs();
    let parts = request.parts(&headers);
    let authorization = parse_authorization(&parts)?;
    verify(&parts, &authorization, STREAMING_SECRET, STREAMING_NOW)?;
    decode_streaming_payload(&parts, &authorization, STREAMING_SECRET)
}

#[test]
fn aws_streaming_examples_verify_and_decode() {
    let decoded = decode(&aws_streaming_example(false)).unwrap().expect("a streaming body");
    assert_eq!(decoded.body, vec![b'a'; 66_560]);
    assert!(decoded.trailers.is_empty());

    let decoded = decode(&aws_streaming_example(true)).unwrap().expect("a streaming body");
    assert_eq!(decoded.body.len(), 66_560);
    assert_eq!(decoded.trailers, vec![("x-amz-checksum-crc32c".to_owned(), "sOO8/Q==".to_owned())]);
}

#[test]
fn a_tampered_chunk_or_trailer_fails_its_signature() {
    for trailer in [false, true] {
        let mut request = aws_streaming_example(trailer);
        let first_data_byte = request.body.windows(2).position(|pair| pair == b"\r\n").unwrap() + 2;
        // Past the first 64 KiB chunk and the second chunk's header: inside the second chunk.
        request.body[first_data_byte + 65_536 + 90] = b'b';
        let error = decode(&request).unwrap_err();
        assert_eq!(error, SigV4Error::ChunkSignatureDoesNotMatch { chunk_index: 1 });
        assert_eq!((error.s3_code(), error.s3_http_status()), ("SignatureDoesNotMatch", 403));
    }
    let mut request = aws_streaming_example(true);
    let text = String::from_utf8_lossy(&request.body).replace("sOO8/Q==", "AAAAAA==");
    request.body = text.into_bytes();
    assert_eq!(decode(&request).unwrap_err(), SigV4Error::ChunkSignatureDoesNotMatch { chunk_index: 3 });
}

#[test]
fn a_streaming_body_must_be_whole_and_as_long_as_declared() {
    let mut cut = aws_streaming_example(false);
    cut.body.truncate(1000);
    assert!(matches!(decode(&cut).unwrap_err(), SigV4Error::IncompleteBody { .. }));

    let mut wrong_length = aws_streaming_example(false);
    wrong_length.set_header("x-amz-decoded-content-length", "66561");
    // The header is signed, so the seed signature fails first.
    assert_eq!(decode(&wrong_length).unwrap_err(), SigV4Error::SignatureDoesNotMatch);
    let headers = wrong_length.header_refs();
    let parts = wrong_length.parts(&headers);
    let authorization = parse_authorization(&parts).unwrap();
    let error = decode_streaming_payload(&parts, &authorization, STREAMING_SECRET).unwrap_err();
    assert!(error.to_string().contains("66561"), "{error}");
    assert_eq!(error.s3_code(), "IncompleteBody");

    let mut undeclared = aws_streaming_example(false);
    undeclared.remove_header("x-amz-decoded-content-length");
    let headers = undeclared.header_refs();
    let parts = undeclared.parts(&headers);
    let authorization = parse_authorization(&parts).unwrap();
    assert!(matches!(
        decode_streaming_payload(&parts, &authorization, STREAMING_SECRET).unwrap_err(),
        SigV4Error::IncompleteBody { .. }
    ));
}

#[test]
fn only_s3_takes_streaming_payloads_and_plain_bodies_are_not_decoded() {
    // The same mode on a JSON service is refused before anything else.
    let request = signed_json_request(T0, &[("X-Amz-Content-SHA256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")]);
    assert!(matches!(error_of(request.check(AWS_EXAMPLE_SECRET, T0)), SigV4Error::StreamingPayloadNotSupported { .. }));
    // ECDSA (SigV4a) streaming is not supported for S3 either.
    let mut ecdsa = aws_streaming_example(false);
    ecdsa.set_header("x-amz-content-sha256", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD");
    assert!(matches!(decode(&ecdsa).unwrap_err(), SigV4Error::StreamingPayloadNotSupported { .. }));

    let plain = signed_json_request(T0, &[]);
    let headers = plain.header_refs();
    let parts = plain.parts(&headers);
    let authorization = parse_authorization(&parts).unwrap();
    assert_eq!(decode_streaming_payload(&parts, &authorization, AWS_EXAMPLE_SECRET).unwrap(), None);
}

#[test]
fn secrets_never_show_in_debug_output_or_errors() {
    let params = aws_example_params();
    let debug = format!("{params:?}");
    assert!(!debug.contains(AWS_EXAMPLE_SECRET), "{debug}");
    assert!(debug.contains("<redacted>"));

    let request = aws_example_request();
    let wrong_secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ";
    for now in [AWS_EXAMPLE_NOW, AWS_EXAMPLE_NOW + 10_000] {
        let error = error_of(request.check(wrong_secret, now));
        for text in [error.to_string(), format!("{error:?}"), error.s3_message()] {
            assert!(!text.contains(wrong_secret) && !text.contains("EXAMPLEKEY"), "{text}");
        }
    }
    let authorization = request.parse().expect("parses");
    assert!(!format!("{authorization:?}").contains("EXAMPLEKEY"));
}

// ---------------------------------------------------------------------------------------
// Round trips.
// ---------------------------------------------------------------------------------------

/// A path segment as a client would put it on the wire: unreserved characters, escapes of
/// reserved and non-ASCII bytes, and the occasional dot segment.
fn path_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9._~-]{1,8}",
        "[a-z ]{1,4}( [a-zé€]{1,3})?".prop_map(|text| {
            let mut encoded = String::new();
            for byte in text.bytes() {
                if byte.is_ascii_alphanumeric() {
                    encoded.push(char::from(byte));
                } else {
                    encoded.push_str(&format!("%{byte:02X}"));
                }
            }
            encoded
        }),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just(String::new()),
    ]
}

fn query_component() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Za-z0-9._~-]{0,6}", "[a-z]{1,3}%(20|2B|2F|3D|26|C3%A9)[a-z]{0,3}", "[a-z]{1,3}[*+!'()][a-z]{0,2}",]
}

fn spacing() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), Just(" ".to_owned()), Just("   ".to_owned()), Just("\t ".to_owned())]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn sign_then_verify_round_trips(
        method in prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("DELETE"), Just("HEAD"), Just("PATCH")],
        service in prop_oneof![Just("cloudtrail"), Just("s3"), Just("execute-api")],
        segments in prop::collection::vec(path_segment(), 0..5),
        trailing_slash in any::<bool>(),
        query_pairs in prop::collection::vec((query_component(), prop::option::of(query_component())), 0..5),
        header_words in prop::collection::vec("[A-Za-z0-9/;=,.-]{1,6}", 1..4),
        (lead, middle, tail) in (spacing(), spacing(), spacing()),
        body in prop::collection::vec(any::<u8>(), 0..64),
        include_content_sha256 in any::<bool>(),
        now in 946_684_800i64..4_102_444_800,
        skew in -900i64..=900,
    ) {
        let mut path = format!("/{}", segments.join("/"));
        if trailing_slash && !path.ends_with('/') {
            path.push('/');
        }
        let query = query_pairs
            .iter()
            .map(|(key, value)| match value {
                Some(value) => format!("{key}={value}"),
                None => key.clone(),
            })
            .collect::<Vec<_>>()
            .join("&");
        let signed_value = header_words.join(" ");
        let params = SigningParams {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: "round/trip+secret",
            region: "eu-central-1",
            service,
            now_unix_seconds: now,
            include_content_sha256,
        };
        let headers = [("Host", "trailkeeper.test:4566"), ("X-Custom", signed_value.as_str())];
        let added = sign(method, &path, &query, &headers, &body, &params);

        // The server sees the same header with different spacing, and a header nobody signed.
        let received_value = format!("{lead}{}{tail}", header_words.join(&format!(" {middle}")));
        let mut request = OwnedRequest {
            method: method.to_owned(),
            path: path.clone(),
            query: query.clone(),
            headers: vec![
                ("host".to_owned(), b"trailkeeper.test:4566".to_vec()),
                ("x-custom".to_owned(), received_value.into_bytes()),
                ("user-agent".to_owned(), b"proptest".to_vec()),
            ],
            body: body.clone(),
        };
        for (name, value) in &added {
            request.headers.push(((*name).to_owned(), value.clone().into_bytes()));
        }
        let authorization = request.check("round/trip+secret", now + skew);
        prop_assert!(authorization.is_ok(), "{:?} for {request:?}", authorization);
        prop_assert_eq!(
            request.check("round/trip+secreT", now).expect_err("wrong secret"),
            SigV4Error::SignatureDoesNotMatch
        );

        // Any change to the body is caught (by the signature, or by the declared hash).
        let mut tampered = request.clone();
        tampered.body.push(0);
        prop_assert!(tampered.check("round/trip+secret", now).is_err());
    }

    #[test]
    fn presign_then_verify_round_trips(
        service in prop_oneof![Just("s3"), Just("sts")],
        segments in prop::collection::vec("[A-Za-z0-9._~-]{1,8}", 0..4),
        query_pairs in prop::collection::vec((query_component(), query_component()), 0..4),
        expires in 1u32..=604_800,
        now in 946_684_800i64..4_102_444_800,
    ) {
        let path = format!("/{}", segments.join("/"));
        let query = query_pairs.iter().map(|(key, value)| format!("{key}={value}")).collect::<Vec<_>>().join("&");
        let params = SigningParams {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: "presign-secret",
            region: "us-east-1",
            service,
            now_unix_seconds: now,
            include_content_sha256: false,
        };
        let presigned_query = presign("GET", &path, &query, &[("host", "bucket.trailkeeper.test")], &params, expires);
        let request = OwnedRequest {
            method: "GET".to_owned(),
            path,
            query: presigned_query,
            headers: vec![("Host".to_owned(), b"bucket.trailkeeper.test".to_vec())],
            body: Vec::new(),
        };
        let authorization = request.check("presign-secret", now + i64::from(expires));
        prop_assert!(authorization.is_ok(), "{:?} for {request:?}", authorization);
        let expired = request.check("presign-secret", now + i64::from(expires) + 1).expect_err("expired");
        prop_assert!(matches!(expired, SigV4Error::PresignedUrlExpired { .. }), "{:?}", expired);
    }
}
