//! Configuration in two stages: the raw TOML file with `TRAILKEEPER_*` environment
//! variables laid over it, then a validated [`Config`] that the rest of the server uses.
//! Nothing outside this module sees the raw form.
//!
//! Every setting has an environment variable named after its path: `history.retention_days`
//! is `TRAILKEEPER_HISTORY_RETENTION_DAYS`. Unknown keys in the file are refused.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use trailkeeper_store::LogOptions;

use crate::identity::{Role, UserSpec};

/// The default account of a fresh installation, as in AWS's documentation examples.
pub const DEFAULT_ACCOUNT_ID: &str = "123456789012";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4600";
pub const DEFAULT_DATA_DIR: &str = "./trailkeeper-data";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config file {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("invalid value for {name}: {message}")]
    Env { name: String, message: String },
    #[error("invalid setting {setting}: {message}")]
    Invalid { setting: String, message: String },
}

fn invalid(setting: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { setting: setting.to_owned(), message: message.into() }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    account_id: Option<String>,
    root_access_key_id: Option<String>,
    root_secret_access_key: Option<String>,
    delivery_interval_seconds: Option<u64>,
    digest_interval_seconds: Option<u64>,
    signing_key_rotation_seconds: Option<u64>,
    checkpoint_interval_seconds: Option<u64>,
    max_trails_per_region: Option<u32>,
    #[serde(default)]
    history: RawHistory,
    #[serde(default)]
    buckets: RawBuckets,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    storage: RawStorage,
    tls: Option<RawTls>,
    #[serde(default)]
    users: Vec<RawUser>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHistory {
    retention_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    requests_per_second: Option<f64>,
    burst: Option<u32>,
    max_request_megabytes: Option<u32>,
    max_pending_megabytes: Option<u32>,
    max_inflight_megabytes: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    seal_after_seconds: Option<u64>,
    seal_after_megabytes: Option<u64>,
    sync: Option<bool>,
    page_cache_megabytes: Option<u64>,
    event_cache_megabytes: Option<u64>,
    index_cache_megabytes: Option<u64>,
    compact: Option<bool>,
    compact_settle_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuckets {
    retention_days: Option<u32>,
    domain: Option<String>,
    #[serde(default)]
    external: Vec<RawExternalBucket>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExternalBucket {
    name: String,
    endpoint: String,
    region: Option<String>,
    access_key_id: String,
    secret_access_key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: String,
    account_id: Option<String>,
    role: String,
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    accounts: Vec<String>,
}

/// Signing keys serve 30 days before the next one takes over.
const DEFAULT_KEY_ROTATION_SECONDS: u64 = 30 * 24 * 3600;

/// The settings that can come from the environment, by path, with how to read them.
const ENV_SETTINGS: &[(&str, ValueKind)] = &[
    ("listen", ValueKind::Text),
    ("data_dir", ValueKind::Text),
    ("account_id", ValueKind::Text),
    ("root_access_key_id", ValueKind::Text),
    ("root_secret_access_key", ValueKind::Text),
    ("delivery_interval_seconds", ValueKind::Integer),
    ("digest_interval_seconds", ValueKind::Integer),
    ("signing_key_rotation_seconds", ValueKind::Integer),
    ("checkpoint_interval_seconds", ValueKind::Integer),
    ("max_trails_per_region", ValueKind::Integer),
    ("buckets.retention_days", ValueKind::Integer),
    ("buckets.domain", ValueKind::Text),
    ("history.retention_days", ValueKind::Integer),
    ("limits.requests_per_second", ValueKind::Float),
    ("limits.burst", ValueKind::Integer),
    ("limits.max_request_megabytes", ValueKind::Integer),
    ("limits.max_pending_megabytes", ValueKind::Integer),
    ("limits.max_inflight_megabytes", ValueKind::Integer),
    ("storage.seal_after_seconds", ValueKind::Integer),
    ("storage.seal_after_megabytes", ValueKind::Integer),
    ("storage.sync", ValueKind::Boolean),
    ("storage.page_cache_megabytes", ValueKind::Integer),
    ("storage.event_cache_megabytes", ValueKind::Integer),
    ("storage.index_cache_megabytes", ValueKind::Integer),
    ("storage.compact", ValueKind::Boolean),
    ("storage.compact_settle_seconds", ValueKind::Integer),
    ("tls.cert", ValueKind::Text),
    ("tls.key", ValueKind::Text),
];

#[derive(Debug, Clone, Copy)]
enum ValueKind {
    Text,
    Integer,
    Float,
    Boolean,
}

/// The environment variable of a setting path: `history.retention_days` →
/// `TRAILKEEPER_HISTORY_RETENTION_DAYS`.
pub fn env_name(path: &str) -> String {
    format!("TRAILKEEPER_{}", path.replace('.', "_").to_ascii_uppercase())
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub account_id: String,
    /// Root credentials given in the configuration; None means "use or create the stored ones".
    pub root_credentials: Option<(String, String)>,
    pub history_retention: Duration,
    /// Requests per second each principal may make; None is unlimited.
    pub requests_per_second: Option<f64>,
    pub burst: u32,
    pub max_request_bytes: usize,
    pub max_pending_bytes: usize,
    /// Megabytes of ingest bodies (compressed and decompressed) held at once.
    pub max_inflight_megabytes: usize,
    pub seal_after: Duration,
    pub seal_after_bytes: usize,
    pub sync: bool,
    /// Bytes of decoded segment pages kept for lookups.
    pub page_cache_bytes: usize,
    /// Bytes of records kept whole for lookups.
    pub event_cache_bytes: usize,
    pub index_cache_bytes: usize,
    /// Merge small sealed segments in the background.
    pub compact: bool,
    /// How long a partition goes without a new segment before its small ones are merged.
    pub compact_settle: Duration,
    pub tls: Option<TlsPaths>,
    pub users: Vec<UserSpec>,
    /// How long a trail batches events before it writes a log file.
    pub delivery_interval: Duration,
    /// How long each digest file of a trail with log file validation covers.
    pub digest_interval: Duration,
    /// How long a Region's signing key signs before a new one takes over.
    pub signing_key_rotation: Duration,
    /// How often every Merkle tree that grew gets a new signed checkpoint.
    pub checkpoint_interval: Duration,
    /// CloudTrail's per-Region trail quota.
    pub max_trails_per_region: usize,
    pub buckets: BucketsConfig,
}

/// The built-in bucket store and the external buckets trails may deliver to.
#[derive(Debug, Clone)]
pub struct BucketsConfig {
    /// How long objects a trail writes stay locked (no overwrite, no delete).
    pub retention: Duration,
    /// The DNS suffix of virtual-hosted-style requests: `<bucket>.<domain>`.
    pub domain: Option<String>,
    pub external: Vec<ExternalBucket>,
}

/// A bucket name that lives on another S3-compatible service.
#[derive(Clone)]
pub struct ExternalBucket {
    pub name: String,
    /// `http(s)://host:port` of the service; requests are path-style.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for ExternalBucket {
    // By hand, so that printing the configuration never shows the secret key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalBucket")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"..")
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct TlsPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Overrides from the command line, which win over the environment and the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
}

impl Config {
    /// Reads the file (if any), lays the environment over it, then the command line.
    pub fn load(overrides: &Overrides, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let mut table = match &overrides.config_file {
            Some(path) => read_table(path)?,
            None => toml::Table::new(),
        };
        apply_env(&mut table, env)?;
        let origin = overrides.config_file.clone().unwrap_or_else(|| PathBuf::from("<environment>"));
        let mut raw: RawConfig = toml::Value::Table(table).try_into().map_err(|error: toml::de::Error| {
            ConfigError::Parse { path: origin, message: error.message().to_owned() }
        })?;
        if let Some(data_dir) = &overrides.data_dir {
            raw.data_dir = Some(data_dir.clone());
        }
        if let Some(listen) = &overrides.listen {
            raw.listen = Some(listen.clone());
        }
        validate(raw)
    }
}

fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    text.parse::<toml::Table>()
        .map_err(|error| ConfigError::Parse { path: path.to_owned(), message: error.to_string() })
}

fn apply_env(table: &mut toml::Table, env: impl IntoIterator<Item = (String, String)>) -> Result<(), ConfigError> {
    for (name, value) in env {
        let Some((path, kind)) = ENV_SETTINGS.iter().find(|(path, _)| env_name(path) == name) else {
            continue;
        };
        let parsed = match kind {
            ValueKind::Text => toml::Value::String(value),
            ValueKind::Integer => value.trim().parse::<i64>().map(toml::Value::Integer).map_err(|_| {
                ConfigError::Env { name: name.clone(), message: format!("expected a whole number, got {value:?}") }
            })?,
            ValueKind::Float => value.trim().parse::<f64>().map(toml::Value::Float).map_err(|_| ConfigError::Env {
                name: name.clone(),
                message: format!("expected a number, got {value:?}"),
            })?,
            ValueKind::Boolean => value.trim().parse::<bool>().map(toml::Value::Boolean).map_err(|_| {
                ConfigError::Env { name: name.clone(), message: format!("expected true or false, got {value:?}") }
            })?,
        };
        let mut node = &mut *table;
        let mut parts: Vec<&str> = path.split('.').collect();
        let leaf = parts.pop().unwrap_or(path);
        for part in parts {
            let entry = node.entry(part.to_owned()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(inner) = entry else {
                return Err(ConfigError::Env { name, message: format!("{part} is not a table in the config file") });
            };
            node = inner;
        }
        node.insert(leaf.to_owned(), parsed);
    }
    Ok(())
}

pub fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
    let listen_text = raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let listen = listen_text
        .parse::<SocketAddr>()
        .map_err(|_| invalid("listen", format!("{listen_text:?} is not an address like 127.0.0.1:4600")))?;
    let account_id = raw.account_id.unwrap_or_else(|| DEFAULT_ACCOUNT_ID.to_owned());
    if !is_account_id(&account_id) {
        return Err(invalid("account_id", format!("{account_id:?} is not a 12-digit account ID")));
    }
    let root_credentials = match (raw.root_access_key_id, raw.root_secret_access_key) {
        (Some(key), Some(secret)) => {
            check_access_key("root_access_key_id", &key)?;
            check_secret("root_secret_access_key", &secret)?;
            Some((key, secret))
        }
        (None, None) => None,
        _ => {
            return Err(invalid(
                "root_access_key_id",
                "root_access_key_id and root_secret_access_key must be set together",
            ));
        }
    };
    let retention_days = raw.history.retention_days.unwrap_or(90);
    if retention_days == 0 {
        return Err(invalid("history.retention_days", "must be at least 1"));
    }
    let requests_per_second = match raw.limits.requests_per_second {
        None => Some(1000.0),
        Some(0.0) => None,
        Some(rate) if rate.is_finite() && rate > 0.0 => Some(rate),
        Some(rate) => {
            return Err(invalid(
                "limits.requests_per_second",
                format!("{rate} is not a positive rate (0 means unlimited)"),
            ));
        }
    };
    let megabytes = |value: Option<u32>, default: u32, setting: &str| -> Result<usize, ConfigError> {
        let value = value.unwrap_or(default);
        if value == 0 {
            return Err(invalid(setting, "must be at least 1"));
        }
        Ok(value as usize * 1024 * 1024)
    };
    // A cache's budget may be 0 (no cache); unset, it is the store's default.
    let store_defaults = LogOptions::default();
    let cache_bytes = |value: Option<u64>, default_bytes: usize| {
        value.map_or(default_bytes, |megabytes| {
            usize::try_from(megabytes).unwrap_or(usize::MAX).saturating_mul(1024 * 1024)
        })
    };
    let seal_after_seconds = raw.storage.seal_after_seconds.unwrap_or(300);
    if seal_after_seconds == 0 {
        return Err(invalid("storage.seal_after_seconds", "must be at least 1"));
    }
    let tls = match raw.tls {
        None => None,
        Some(RawTls { cert: Some(cert), key: Some(key) }) => Some(TlsPaths { cert, key }),
        Some(_) => return Err(invalid("tls", "tls.cert and tls.key must be set together")),
    };
    let delivery_interval_seconds = raw.delivery_interval_seconds.unwrap_or(60);
    if !(1..=3600).contains(&delivery_interval_seconds) {
        return Err(invalid("delivery_interval_seconds", "must be between 1 and 3600"));
    }
    let digest_interval_seconds = raw.digest_interval_seconds.unwrap_or(3600);
    if !(1..=86_400).contains(&digest_interval_seconds) {
        return Err(invalid("digest_interval_seconds", "must be between 1 and 86400"));
    }
    let signing_key_rotation_seconds = raw.signing_key_rotation_seconds.unwrap_or(DEFAULT_KEY_ROTATION_SECONDS);
    if signing_key_rotation_seconds == 0 {
        return Err(invalid("signing_key_rotation_seconds", "must be at least 1"));
    }
    let checkpoint_interval_seconds = raw.checkpoint_interval_seconds.unwrap_or(3600);
    if !(1..=86_400).contains(&checkpoint_interval_seconds) {
        return Err(invalid("checkpoint_interval_seconds", "must be between 1 and 86400"));
    }
    let max_trails_per_region = raw.max_trails_per_region.unwrap_or(5);
    if max_trails_per_region == 0 {
        return Err(invalid("max_trails_per_region", "must be at least 1"));
    }
    let buckets = validate_buckets(raw.buckets)?;
    let mut users = Vec::with_capacity(raw.users.len());
    for user in raw.users {
        let setting = format!("users.{}", user.name);
        let role: Role = user
            .role
            .parse()
            .map_err(|()| invalid(&setting, format!("role {:?} is not admin, reader or writer", user.role)))?;
        let user_account = user.account_id.unwrap_or_else(|| account_id.clone());
        if !is_account_id(&user_account) {
            return Err(invalid(&setting, format!("account_id {user_account:?} is not a 12-digit account ID")));
        }
        if user.name.is_empty()
            || user.name.len() > 64
            || !user.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
        {
            return Err(invalid(&setting, "user names are 1 to 64 letters, digits and +=,.@_-"));
        }
        check_access_key(&setting, &user.access_key_id)?;
        check_secret(&setting, &user.secret_access_key)?;
        for account in &user.accounts {
            if account != "*" && !is_account_id(account) {
                return Err(invalid(
                    &setting,
                    format!("accounts entry {account:?} is neither \"*\" nor a 12-digit account ID"),
                ));
            }
        }
        users.push(UserSpec {
            name: user.name,
            account_id: user_account,
            role,
            access_key_id: user.access_key_id,
            secret_access_key: user.secret_access_key,
            accounts: user.accounts,
        });
    }
    Ok(Config {
        listen,
        data_dir: raw.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        account_id,
        root_credentials,
        history_retention: Duration::from_secs(u64::from(retention_days) * 86_400),
        requests_per_second,
        burst: raw.limits.burst.unwrap_or(2000).max(1),
        max_request_bytes: megabytes(raw.limits.max_request_megabytes, 32, "limits.max_request_megabytes")?,
        max_pending_bytes: megabytes(raw.limits.max_pending_megabytes, 128, "limits.max_pending_megabytes")?,
        max_inflight_megabytes: megabytes(raw.limits.max_inflight_megabytes, 1024, "limits.max_inflight_megabytes")?
            / (1024 * 1024),
        seal_after: Duration::from_secs(seal_after_seconds),
        seal_after_bytes: usize::try_from(raw.storage.seal_after_megabytes.unwrap_or(256))
            .unwrap_or(usize::MAX)
            .saturating_mul(1024 * 1024)
            .max(1024 * 1024),
        sync: raw.storage.sync.unwrap_or(true),
        page_cache_bytes: cache_bytes(raw.storage.page_cache_megabytes, store_defaults.page_cache_bytes),
        event_cache_bytes: cache_bytes(raw.storage.event_cache_megabytes, store_defaults.event_cache_bytes),
        index_cache_bytes: cache_bytes(raw.storage.index_cache_megabytes, store_defaults.index_cache_bytes),
        compact: raw.storage.compact.unwrap_or(true),
        compact_settle: Duration::from_secs(raw.storage.compact_settle_seconds.unwrap_or(120)),
        tls,
        users,
        delivery_interval: Duration::from_secs(delivery_interval_seconds),
        digest_interval: Duration::from_secs(digest_interval_seconds),
        signing_key_rotation: Duration::from_secs(signing_key_rotation_seconds),
        checkpoint_interval: Duration::from_secs(checkpoint_interval_seconds),
        max_trails_per_region: max_trails_per_region as usize,
        buckets,
    })
}

fn validate_buckets(raw: RawBuckets) -> Result<BucketsConfig, ConfigError> {
    let retention_days = raw.retention_days.unwrap_or(365);
    if retention_days == 0 {
        return Err(invalid("buckets.retention_days", "must be at least 1"));
    }
    if let Some(domain) = &raw.domain
        && (domain.is_empty() || domain.starts_with('.') || domain.contains(['/', ':']))
    {
        return Err(invalid("buckets.domain", format!("{domain:?} is not a DNS name like s3.localhost")));
    }
    let mut external = Vec::with_capacity(raw.external.len());
    for bucket in raw.external {
        let setting = format!("buckets.external.{}", bucket.name);
        if !crate::s3::is_valid_bucket_name(&bucket.name) {
            return Err(invalid(&setting, "bucket names are 3 to 63 lower-case letters, digits, dots and hyphens"));
        }
        if external.iter().any(|known: &ExternalBucket| known.name == bucket.name) {
            return Err(invalid(&setting, "the bucket is listed twice"));
        }
        let endpoint = bucket.endpoint.trim_end_matches('/').to_owned();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(invalid(&setting, format!("endpoint {endpoint:?} must start with http:// or https://")));
        }
        check_secret(&setting, &bucket.secret_access_key)?;
        if bucket.access_key_id.is_empty() {
            return Err(invalid(&setting, "access_key_id must not be empty"));
        }
        external.push(ExternalBucket {
            name: bucket.name,
            endpoint,
            region: bucket.region.unwrap_or_else(|| "us-east-1".to_owned()),
            access_key_id: bucket.access_key_id,
            secret_access_key: bucket.secret_access_key,
        });
    }
    Ok(BucketsConfig {
        retention: Duration::from_secs(u64::from(retention_days) * 86_400),
        domain: raw.domain,
        external,
    })
}

fn check_access_key(setting: &str, key: &str) -> Result<(), ConfigError> {
    if (16..=128).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(invalid(setting, "access key IDs are 16 to 128 letters and digits"))
    }
}

fn check_secret(setting: &str, secret: &str) -> Result<(), ConfigError> {
    // Never echo the secret itself.
    if (8..=128).contains(&secret.len()) && secret.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(invalid(setting, "secret access keys are 8 to 128 printable characters"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(file: Option<&str>, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let config_file = file.map(|text| {
            let path = dir.path().join("trailkeeper.toml");
            std::fs::write(&path, text).unwrap();
            path
        });
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::load(&Overrides { config_file, ..Overrides::default() }, env)
    }

    #[test]
    fn defaults() {
        let config = load(None, &[]).unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.account_id, DEFAULT_ACCOUNT_ID);
        assert_eq!(config.history_retention, Duration::from_secs(90 * 86_400));
        assert_eq!(config.checkpoint_interval, Duration::from_secs(3600));
        assert!(config.root_credentials.is_none());
    }

    #[test]
    fn reads_the_checkpoint_interval() {
        let config = load(None, &[("TRAILKEEPER_CHECKPOINT_INTERVAL_SECONDS", "5")]).unwrap();
        assert_eq!(config.checkpoint_interval, Duration::from_secs(5));
        let config = load(Some("checkpoint_interval_seconds = 60\n"), &[]).unwrap();
        assert_eq!(config.checkpoint_interval, Duration::from_secs(60));
        assert!(load(None, &[("TRAILKEEPER_CHECKPOINT_INTERVAL_SECONDS", "0")]).is_err());
        assert!(load(None, &[("TRAILKEEPER_CHECKPOINT_INTERVAL_SECONDS", "86401")]).is_err());
    }

    #[test]
    fn environment_overrides_the_file() {
        let config = load(
            Some("[history]\nretention_days = 30\n"),
            &[("TRAILKEEPER_HISTORY_RETENTION_DAYS", "7"), ("TRAILKEEPER_BIN", "ignored")],
        )
        .unwrap();
        assert_eq!(config.history_retention, Duration::from_secs(7 * 86_400));
    }

    #[test]
    fn refuses_unknown_keys() {
        let error = load(Some("[history]\nretention_dayz = 30\n"), &[]).unwrap_err();
        assert!(error.to_string().contains("retention_dayz"), "{error}");
        assert!(load(Some("colour = 1\n"), &[]).is_err());
    }

    #[test]
    fn refuses_bad_values() {
        assert!(load(None, &[("TRAILKEEPER_HISTORY_RETENTION_DAYS", "ninety")]).is_err());
        assert!(load(None, &[("TRAILKEEPER_ACCOUNT_ID", "12345")]).is_err());
        assert!(load(None, &[("TRAILKEEPER_ROOT_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")]).is_err());
        assert!(load(Some("[[users]]\nname='a'\nrole='boss'\naccess_key_id='AKIAIOSFODNN7EXAMPLE'\nsecret_access_key='12345678'\n"), &[]).is_err());
    }

    #[test]
    fn reads_users() {
        let config = load(Some("[[users]]\nname='alice'\nrole='reader'\naccess_key_id='AKIAALICE00000000001'\nsecret_access_key='alice-secret'\naccounts=['*']\n"), &[]).unwrap();
        assert_eq!(config.users[0].role, Role::Reader);
        assert_eq!(config.users[0].account_id, DEFAULT_ACCOUNT_ID);
    }
}
