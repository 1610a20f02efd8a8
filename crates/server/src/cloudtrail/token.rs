//! `NextToken` of `LookupEvents`: the position of the last event returned, bound to the
//! parameters of the call that produced it and signed with the server's token key, so
//! that a token is refused when it is forged or comes back with other parameters.
//!
//! Layout before base64url: version u8 | time_ms i64 | seq u64 | tag (16 bytes of
//! HMAC-SHA256 over the rest and the binding).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use trailkeeper_store::EventKey;

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
const RAW_LEN: usize = 1 + 8 + 8 + TAG_LEN;

fn tag(key: &[u8; 32], body: &[u8], binding: &[u8]) -> [u8; TAG_LEN] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("hmac takes any key length"));
    mac.update(body);
    mac.update(binding);
    let full = mac.finalize().into_bytes();
    let mut tag = [0; TAG_LEN];
    tag.copy_from_slice(&full[..TAG_LEN]);
    tag
}

pub fn encode(key: &[u8; 32], position: EventKey, binding: &[u8]) -> String {
    let mut raw = Vec::with_capacity(RAW_LEN);
    raw.push(VERSION);
    raw.extend_from_slice(&position.time_ms.to_be_bytes());
    raw.extend_from_slice(&position.seq.to_be_bytes());
    let tag = tag(key, &raw, binding);
    raw.extend_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(raw)
}

/// The position in a token, if the token is one this server issued for these parameters.
pub fn decode(key: &[u8; 32], token: &str, binding: &[u8]) -> Option<EventKey> {
    let raw = URL_SAFE_NO_PAD.decode(token.as_bytes()).ok()?;
    if raw.len() != RAW_LEN || raw[0] != VERSION {
        return None;
    }
    let (body, given) = raw.split_at(RAW_LEN - TAG_LEN);
    let expected = tag(key, body, binding);
    // Constant-time comparison: the tag is a secret-keyed MAC.
    if expected.iter().zip(given).fold(0u8, |acc, (a, b)| acc | (a ^ b)) != 0 {
        return None;
    }
    let time_ms = i64::from_be_bytes(body[1..9].try_into().ok()?);
    let seq = u64::from_be_bytes(body[9..17].try_into().ok()?);
    Some(EventKey { time_ms, seq })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_only_with_the_same_binding_and_key() {
        let key = [7; 32];
        let position = EventKey { time_ms: 1_700_000_000_123, seq: 42 };
        let token = encode(&key, position, b"params-a");
        assert_eq!(decode(&key, &token, b"params-a"), Some(position));
        assert_eq!(decode(&key, &token, b"params-b"), None);
        assert_eq!(decode(&[8; 32], &token, b"params-a"), None);
        assert_eq!(decode(&key, "garbage", b"params-a"), None);
        let mut tampered = token.into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        assert_eq!(decode(&key, std::str::from_utf8(&tampered).unwrap(), b"params-a"), None);
    }
}
