//! Signing keys: one RSA-2048 key pair per Region at a time, as CloudTrail signs digest
//! files, rotated on a schedule. Retired keys stay, so that whatever a key signed still
//! verifies after the rotation, and `ListPublicKeys` can answer for any time range.
//!
//! Keys live in `<data_dir>/signing-keys/<region>/<valid_from_ms>.pk8`: the PKCS#8 DER
//! private key, in a directory only the server's user may open (0700) and a file only it
//! may read (0600). A key file is written once and never changed: a key's validity starts
//! at the time in its name and ends where the next key of its Region starts, or, for the
//! newest key, one rotation period later.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, UnparsedPublicKey};
use md5::{Digest, Md5};

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("signing key store {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("signing key {path} is not a usable RSA private key")]
    BadKey { path: PathBuf },
    #[error("RSA key generation or signing failed")]
    Crypto,
    #[error("no signing key of Region {region} has fingerprint {fingerprint}")]
    UnknownKey { region: String, fingerprint: String },
}

/// One key pair and the time it started to sign.
pub struct SigningKey {
    pair: KeyPair,
    public_key_der: Vec<u8>,
    fingerprint: String,
    valid_from_ms: i64,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("fingerprint", &self.fingerprint)
            .field("valid_from_ms", &self.valid_from_ms)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    fn new(pair: KeyPair, valid_from_ms: i64) -> SigningKey {
        let public_key_der = pair.public_key().as_ref().to_vec();
        let fingerprint = fingerprint(&public_key_der);
        SigningKey { pair, public_key_der, fingerprint, valid_from_ms }
    }

    /// Lower-case hex MD5 of the DER public key, as CloudTrail names its keys.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The public key as DER PKCS#1 `RSAPublicKey`, the form `ListPublicKeys` returns.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_key_der
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`. Deterministic: the same message and
    /// key always give the same signature.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let mut signature = vec![0; self.pair.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature).map_err(|_| SigningError::Crypto)?;
        Ok(signature)
    }
}

/// A public key and when it signed, for `ListPublicKeys` and offline verifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyInfo {
    pub der: Vec<u8>,
    pub fingerprint: String,
    pub valid_from_ms: i64,
    pub valid_until_ms: i64,
}

/// Every Region's signing keys, oldest first per Region.
pub struct SigningKeys {
    dir: PathBuf,
    rotation: Duration,
    regions: Mutex<BTreeMap<String, Vec<Arc<SigningKey>>>>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys").field("dir", &self.dir).field("rotation", &self.rotation).finish_non_exhaustive()
    }
}

impl SigningKeys {
    /// Opens (creating if needed) the key store under `data_dir` and loads every key.
    pub fn open(data_dir: &Path, rotation: Duration) -> Result<SigningKeys, SigningError> {
        let dir = data_dir.join("signing-keys");
        create_private_dir(&dir)?;
        let mut regions = BTreeMap::new();
        for region_dir in read_dir(&dir)? {
            let Some(region) = region_dir.file_name().and_then(|name| name.to_str()).map(str::to_owned) else {
                continue;
            };
            let keys = load_region(&region_dir)?;
            if !keys.is_empty() {
                regions.insert(region, keys.into_iter().map(Arc::new).collect());
            }
        }
        Ok(SigningKeys { dir, rotation, regions: Mutex::new(regions) })
    }

    /// The key that signs in `region` at `now_ms`: the newest one, or a new one when the
    /// Region has none or its newest has served a full rotation period. Generating a key
    /// takes a fraction of a second; call this from a blocking context.
    pub fn current(&self, region: &str, now_ms: i64) -> Result<Arc<SigningKey>, SigningError> {
        let mut regions = self.regions.lock().unwrap_or_else(PoisonError::into_inner);
        let keys = regions.entry(region.to_owned()).or_default();
        if let Some(newest) = keys.last()
            && now_ms < newest.valid_from_ms.saturating_add(self.rotation_ms())
        {
            return Ok(Arc::clone(newest));
        }
        // A clock that went back must not start a key before the one it replaces.
        let valid_from_ms = keys.last().map_or(now_ms, |newest| now_ms.max(newest.valid_from_ms + 1));
        let key = Arc::new(self.generate(region, valid_from_ms)?);
        keys.push(Arc::clone(&key));
        tracing::info!(region, fingerprint = key.fingerprint(), "new signing key");
        Ok(key)
    }

    /// The key of `region` with this fingerprint, retired or not.
    pub fn by_fingerprint(&self, region: &str, fingerprint: &str) -> Result<Arc<SigningKey>, SigningError> {
        let regions = self.regions.lock().unwrap_or_else(PoisonError::into_inner);
        regions
            .get(region)
            .and_then(|keys| keys.iter().find(|key| key.fingerprint == fingerprint))
            .cloned()
            .ok_or_else(|| SigningError::UnknownKey { region: region.to_owned(), fingerprint: fingerprint.to_owned() })
    }

    /// The public keys of `region` whose validity overlaps `[start_ms, end_ms]`, oldest first.
    pub fn public_keys(&self, region: &str, start_ms: i64, end_ms: i64) -> Vec<PublicKeyInfo> {
        let regions = self.regions.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(keys) = regions.get(region) else { return Vec::new() };
        keys.iter()
            .enumerate()
            .map(|(index, key)| PublicKeyInfo {
                der: key.public_key_der.clone(),
                fingerprint: key.fingerprint.clone(),
                valid_from_ms: key.valid_from_ms,
                valid_until_ms: keys
                    .get(index + 1)
                    .map_or(key.valid_from_ms.saturating_add(self.rotation_ms()), |next| next.valid_from_ms),
            })
            .filter(|info| info.valid_from_ms <= end_ms && start_ms <= info.valid_until_ms)
            .collect()
    }

    fn rotation_ms(&self) -> i64 {
        i64::try_from(self.rotation.as_millis()).unwrap_or(i64::MAX)
    }

    fn generate(&self, region: &str, valid_from_ms: i64) -> Result<SigningKey, SigningError> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| SigningError::Crypto)?;
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).map_err(|_| SigningError::Crypto)?;
        let region_dir = self.dir.join(region);
        create_private_dir(&region_dir)?;
        write_private(&region_dir.join(format!("{valid_from_ms}.pk8")), der.as_ref())?;
        Ok(SigningKey::new(pair, valid_from_ms))
    }
}

/// The public keys of `region` stored under `data_dir`, oldest first, read without creating
/// or changing anything: for verifiers that read a data directory offline. A key's validity
/// ends where the next one starts; the newest key's end is open (`i64::MAX`), because its
/// rotation period is the running server's setting and it signs until a newer key exists.
/// A Region (or a data directory) without keys has none.
pub fn stored_public_keys(data_dir: &Path, region: &str) -> Result<Vec<PublicKeyInfo>, SigningError> {
    let region_dir = data_dir.join("signing-keys").join(region);
    if !region_dir.is_dir() {
        return Ok(Vec::new());
    }
    let keys = load_region(&region_dir)?;
    Ok(keys
        .iter()
        .enumerate()
        .map(|(index, key)| PublicKeyInfo {
            der: key.public_key_der.clone(),
            fingerprint: key.fingerprint.clone(),
            valid_from_ms: key.valid_from_ms,
            valid_until_ms: keys.get(index + 1).map_or(i64::MAX, |next| next.valid_from_ms),
        })
        .collect())
}

/// Every key file of one Region's folder, oldest first. Other files are ignored.
fn load_region(region_dir: &Path) -> Result<Vec<SigningKey>, SigningError> {
    let mut keys = Vec::new();
    for path in read_dir(region_dir)? {
        let Some(valid_from_ms) = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".pk8"))
            .and_then(|stem| stem.parse::<i64>().ok())
        else {
            continue;
        };
        let der = fs::read(&path).map_err(|source| SigningError::Io { path: path.clone(), source })?;
        let pair = KeyPair::from_pkcs8(&der).map_err(|_| SigningError::BadKey { path: path.clone() })?;
        keys.push(SigningKey::new(pair, valid_from_ms));
    }
    keys.sort_by_key(|key| key.valid_from_ms);
    Ok(keys)
}

/// Lower-case hex MD5 of a DER public key: CloudTrail's key fingerprint.
pub fn fingerprint(public_key_der: &[u8]) -> String {
    hex::encode(Md5::digest(public_key_der))
}

/// Whether `signature` is a valid RSASSA-PKCS1-v1_5 SHA-256 signature of `message` by the
/// DER PKCS#1 `RSAPublicKey` `public_key_der`.
pub fn verify(public_key_der: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key_der).verify(message, signature).is_ok()
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, SigningError> {
    let entries = fs::read_dir(dir).map_err(|source| SigningError::Io { path: dir.to_owned(), source })?;
    let mut paths = Vec::new();
    for entry in entries {
        paths.push(entry.map_err(|source| SigningError::Io { path: dir.to_owned(), source })?.path());
    }
    Ok(paths)
}

fn create_private_dir(dir: &Path) -> Result<(), SigningError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let io = |source| SigningError::Io { path: dir.to_owned(), source };
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)
}

/// Writes a new key file readable by the owner only, durably: temporary file, fsync,
/// rename, fsync of the directory.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SigningError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| SigningError::Io { path: path.to_owned(), source };
    let temporary = path.with_extension("tmp");
    let mut file =
        fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temporary).map_err(io)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io)?;
    drop(file);
    fs::rename(&temporary, path).map_err(io)?;
    trailkeeper_store::fsutil::sync_dir(path.parent().unwrap_or(Path::new(".")))
        .map_err(|error| SigningError::Io { path: path.to_owned(), source: std::io::Error::other(error.to_string()) })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const HOUR_MS: i64 = 3_600_000;

    #[test]
    fn signs_verifiably_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let keys = SigningKeys::open(dir.path(), Duration::from_secs(3600)).unwrap();
        let key = keys.current("us-east-1", 1_000).unwrap();
        let signature = key.sign(b"message").unwrap();
        assert_eq!(signature.len(), 256, "RSA-2048");
        assert_eq!(key.sign(b"message").unwrap(), signature, "PKCS#1 v1.5 is deterministic");
        assert!(verify(key.public_key_der(), b"message", &signature));
        assert!(!verify(key.public_key_der(), b"massage", &signature));
        assert_eq!(key.fingerprint().len(), 32);
        assert_eq!(&key.public_key_der()[..4], &[0x30, 0x82, 0x01, 0x0a], "DER PKCS#1 RSAPublicKey");

        let reopened = SigningKeys::open(dir.path(), Duration::from_secs(3600)).unwrap();
        let again = reopened.current("us-east-1", 2_000).unwrap();
        assert_eq!(again.fingerprint(), key.fingerprint());
        assert_eq!(again.sign(b"message").unwrap(), signature);

        use std::os::unix::fs::PermissionsExt;
        let file = dir.path().join("signing-keys/us-east-1/1000.pk8");
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        let folder = dir.path().join("signing-keys");
        assert_eq!(fs::metadata(&folder).unwrap().permissions().mode() & 0o777, 0o700);
    }

    #[test]
    fn rotates_and_keeps_retired_keys_listable() {
        let dir = tempfile::tempdir().unwrap();
        let keys = SigningKeys::open(dir.path(), Duration::from_secs(3600)).unwrap();
        let first = keys.current("eu-west-1", 0).unwrap();
        assert_eq!(keys.current("eu-west-1", HOUR_MS - 1).unwrap().fingerprint(), first.fingerprint());
        let second = keys.current("eu-west-1", HOUR_MS + 5).unwrap();
        assert_ne!(second.fingerprint(), first.fingerprint());

        let all = keys.public_keys("eu-west-1", 0, 10 * HOUR_MS);
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].valid_from_ms, all[0].valid_until_ms), (0, HOUR_MS + 5));
        assert_eq!((all[1].valid_from_ms, all[1].valid_until_ms), (HOUR_MS + 5, 2 * HOUR_MS + 5));
        assert_eq!(keys.public_keys("eu-west-1", 2 * HOUR_MS, 3 * HOUR_MS).len(), 1);
        assert_eq!(keys.public_keys("eu-west-1", 0, 10).len(), 1);
        assert!(keys.public_keys("us-west-2", 0, 10 * HOUR_MS).is_empty(), "keys are per Region");

        assert_eq!(keys.by_fingerprint("eu-west-1", first.fingerprint()).unwrap().fingerprint(), first.fingerprint());
        assert!(keys.by_fingerprint("us-west-2", first.fingerprint()).is_err());
        assert_eq!(fingerprint(first.public_key_der()), first.fingerprint());

        let stored = stored_public_keys(dir.path(), "eu-west-1").unwrap();
        assert_eq!(stored.len(), 2);
        assert_eq!((stored[0].fingerprint.as_str(), stored[0].valid_until_ms), (first.fingerprint(), HOUR_MS + 5));
        assert_eq!(stored[1].der, second.public_key_der());
        assert_eq!(stored[1].valid_until_ms, i64::MAX, "the newest key's end is open offline");
        assert!(stored_public_keys(dir.path(), "us-west-2").unwrap().is_empty());
        let empty = tempfile::tempdir().unwrap();
        assert!(stored_public_keys(empty.path(), "eu-west-1").unwrap().is_empty());
        assert!(!empty.path().join("signing-keys").exists(), "reading creates nothing");
    }
}
