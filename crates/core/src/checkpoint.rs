//! Checkpoints: Trailkeeper's signed statement that the Merkle tree of one (account,
//! Region) had a given size and root hash at a given time. A verifier who holds a
//! checkpoint and the signing key's public half can check an inclusion proof for any
//! event in it, and a consistency proof to any later checkpoint.
//!
//! The signature covers [`Checkpoint::signing_string`], seven lines of ASCII, each `name
//! value` and ended by a line feed, in this order:
//!
//! ```text
//! trailkeeper-checkpoint v1
//! account 123456789012
//! region us-east-1
//! tree-size 1234
//! root-hash 5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328
//! time 2026-11-21T15:54:54.123Z
//! key 0a1b2c3d4e5f60718293a4b5c6d7e8f9
//! ```
//!
//! `tree-size` is decimal without leading zeros, `root-hash` the RFC 9162 root in lower-case
//! hex, `time` UTC with milliseconds, `key` the signing key's fingerprint (lower-case hex
//! MD5 of its DER public key, as CloudTrail names keys). No value may hold a space or a line
//! feed, so the text reads back one way only.

use crate::merkle::{HASH_BYTES, Hash};
use crate::time::format_event_time;

/// The first line of every version-1 signing string.
pub const CHECKPOINT_HEADER: &str = "trailkeeper-checkpoint v1";

/// One tree's size and root hash at a time, and the key that signs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub account_id: String,
    pub region: String,
    pub tree_size: u64,
    pub root_hash: Hash,
    pub time_ms: i64,
    pub key_fingerprint: String,
}

/// A checkpoint field that cannot be written into the signing string unambiguously.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("checkpoint field {field} has a value that cannot be signed: {value:?}")]
pub struct UnsignableField {
    pub field: &'static str,
    pub value: String,
}

impl Checkpoint {
    /// The exact bytes the signature covers (see the module documentation).
    pub fn signing_string(&self) -> Result<String, UnsignableField> {
        let checked = |field: &'static str, value: &str, allowed: fn(u8) -> bool| {
            if !value.is_empty() && value.len() <= 64 && value.bytes().all(allowed) {
                Ok(())
            } else {
                Err(UnsignableField { field, value: value.to_owned() })
            }
        };
        let name_byte = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_';
        checked("account", &self.account_id, name_byte)?;
        checked("region", &self.region, name_byte)?;
        checked("key", &self.key_fingerprint, |byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))?;
        Ok(format!(
            "{CHECKPOINT_HEADER}\naccount {}\nregion {}\ntree-size {}\nroot-hash {}\ntime {}\nkey {}\n",
            self.account_id,
            self.region,
            self.tree_size,
            hash_to_hex(&self.root_hash),
            format_checkpoint_time(self.time_ms),
            self.key_fingerprint,
        ))
    }
}

/// A checkpoint's time as it is signed and sent: `2026-11-21T15:54:54.123Z`.
pub fn format_checkpoint_time(ms: i64) -> String {
    let seconds = format_event_time(ms);
    let without_zone = seconds.strip_suffix('Z').unwrap_or(&seconds);
    format!("{without_zone}.{:03}Z", ms.rem_euclid(1000))
}

/// A hash in lower-case hex, as checkpoints and proofs carry it.
pub fn hash_to_hex(hash: &Hash) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(HASH_BYTES * 2);
    for byte in hash {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// A hash from 64 hex digits (either case); `None` for anything else.
pub fn hash_from_hex(text: &str) -> Option<Hash> {
    let bytes = text.as_bytes();
    if bytes.len() != HASH_BYTES * 2 {
        return None;
    }
    let digit = |byte: u8| char::from(byte).to_digit(16).map(|value| value as u8);
    let mut hash = [0u8; HASH_BYTES];
    for (index, byte) in hash.iter_mut().enumerate() {
        *byte = digit(bytes[index * 2])? << 4 | digit(bytes[index * 2 + 1])?;
    }
    Some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::leaf_hash;
    use crate::time::parse_event_time;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            tree_size: 1234,
            root_hash: leaf_hash(b""),
            time_ms: 1_795_276_494_123,
            key_fingerprint: "0a1b2c3d4e5f60718293a4b5c6d7e8f9".into(),
        }
    }

    #[test]
    fn writes_the_documented_signing_string() {
        assert_eq!(
            checkpoint().signing_string().unwrap(),
            "trailkeeper-checkpoint v1\naccount 123456789012\nregion us-east-1\ntree-size 1234\n\
             root-hash 6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d\n\
             time 2026-11-21T15:54:54.123Z\nkey 0a1b2c3d4e5f60718293a4b5c6d7e8f9\n"
        );
    }

    #[test]
    fn refuses_values_that_would_make_the_text_ambiguous() {
        for (field, change) in [
            ("account", (|c: &mut Checkpoint| c.account_id = "1\nregion x".into()) as fn(&mut Checkpoint)),
            ("region", |c| c.region = "us east".into()),
            ("region", |c| c.region = String::new()),
            ("key", |c| c.key_fingerprint = "0A1B".into()),
        ] {
            let mut changed = checkpoint();
            change(&mut changed);
            assert_eq!(changed.signing_string().unwrap_err().field, field);
        }
    }

    #[test]
    fn times_and_hashes_read_back() {
        for ms in [0, 999, 1_795_276_494_123, 1_795_276_494_000] {
            let text = format_checkpoint_time(ms);
            assert_eq!(parse_event_time(&text), Ok(ms), "{text}");
        }
        let hash = leaf_hash(b"x");
        assert_eq!(hash_from_hex(&hash_to_hex(&hash)), Some(hash));
        assert_eq!(hash_from_hex(&hash_to_hex(&hash).to_uppercase()), Some(hash));
        assert_eq!(hash_from_hex("00"), None);
        assert_eq!(hash_from_hex(&"g".repeat(64)), None);
    }
}
