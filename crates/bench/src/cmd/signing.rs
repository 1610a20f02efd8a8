//! SigV4 signing of the benchmark's requests with `trailkeeper-sigv4`, using credentials
//! from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use trailkeeper_sigv4::SigningParams;

/// Requests are signed as CloudTrail calls in us-east-1.
pub const REGION: &str = "us-east-1";
pub const SERVICE: &str = "cloudtrail";

#[derive(Clone)]
pub struct Credentials {
    access_key_id: String,
    secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Credentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

impl Credentials {
    pub fn from_env() -> anyhow::Result<Credentials> {
        let read = |name: &str| std::env::var(name).with_context(|| format!("{name} must be set to sign requests"));
        Ok(Credentials { access_key_id: read("AWS_ACCESS_KEY_ID")?, secret_access_key: read("AWS_SECRET_ACCESS_KEY")? })
    }
}

/// The `host` header value reqwest will send for `url`: the host, and the port unless it
/// is the scheme's default.
pub fn host_header(url: &reqwest::Url) -> anyhow::Result<String> {
    let host = url.host_str().context("the endpoint has no host")?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// Signs a POST of `body` to `url` with `headers` (which must include `host`) and returns
/// every header to send: the given ones plus `x-amz-date` and `authorization`.
pub fn sign_post(
    credentials: &Credentials,
    url: &reqwest::Url,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<(String, String)> {
    sign_request(credentials, REGION, "POST", url, headers, body)
}

/// [`sign_post`] for any Region and method; the query string of `url` is signed as it will
/// be sent.
pub fn sign_request(
    credentials: &Credentials,
    region: &str,
    method: &str,
    url: &reqwest::Url,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<(String, String)> {
    let now_unix_seconds =
        SystemTime::now().duration_since(UNIX_EPOCH).map(|since| since.as_secs() as i64).unwrap_or(0);
    let params = SigningParams {
        access_key_id: &credentials.access_key_id,
        secret_access_key: &credentials.secret_access_key,
        region,
        service: SERVICE,
        now_unix_seconds,
        include_content_sha256: false,
    };
    let added = trailkeeper_sigv4::sign(method, url.path(), url.query().unwrap_or(""), headers, body, &params);
    headers
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("host"))
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .chain(added.into_iter().map(|(name, value)| (name.to_owned(), value)))
        .collect()
}
