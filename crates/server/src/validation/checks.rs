//! The checks of one digest file and one log file, with the AWS CLI's verdicts and reasons.
//!
//! The AWS CLI is Python: it inflates a digest in one call (a truncated stream is an error,
//! bytes after the end are ignored) and a log file as a stream (a truncated stream just
//! yields less, bytes after the end are "unexpected data"); it verifies with python-rsa,
//! which takes the signature modulo the key's modulus; and a value of an unexpected JSON
//! type fails with Python's `TypeError` text. Each is followed
//! here, so that a tampered file gets the same line from both tools.

use flate2::{Decompress, FlushDecompress, Status};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::signing;

/// The members the AWS CLI requires before it looks at a digest's contents.
pub(super) const REQUIRED_DIGEST_MEMBERS: [&str; 6] = [
    "digestPublicKeyFingerprint",
    "digestS3Bucket",
    "digestS3Object",
    "previousDigestSignature",
    "digestEndTime",
    "digestStartTime",
];

/// How a gzip stream ended.
struct Inflated {
    /// The stream's end was reached.
    complete: bool,
    /// Bytes after the end of the stream.
    trailing: usize,
}

/// Inflates one gzip member, handing each piece of output to `sink`. A truncated stream is
/// not an error here; a damaged one (header, data or checksum) is.
fn inflate(body: &[u8], mut sink: impl FnMut(&[u8])) -> Result<Inflated, flate2::DecompressError> {
    let mut inflater = Decompress::new_gzip(15);
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let consumed = usize::try_from(inflater.total_in()).unwrap_or(body.len()).min(body.len());
        let produced_before = inflater.total_out();
        let status = inflater.decompress(&body[consumed..], &mut buffer, FlushDecompress::None)?;
        let produced = usize::try_from(inflater.total_out() - produced_before).unwrap_or(0);
        sink(&buffer[..produced]);
        let consumed_now = usize::try_from(inflater.total_in()).unwrap_or(body.len()).min(body.len());
        if status == Status::StreamEnd {
            return Ok(Inflated { complete: true, trailing: body.len() - consumed_now });
        }
        if consumed_now == consumed && produced == 0 {
            // No input left to make progress with: a truncated stream.
            return Ok(Inflated { complete: false, trailing: 0 });
        }
    }
}

/// A digest's bytes inside its gzip, as `zlib.decompress` gives them: `None` when the stream
/// is damaged or truncated; anything after its end is ignored.
pub(super) fn inflate_digest(body: &[u8]) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(body.len() * 4);
    let inflated = inflate(body, |piece| bytes.extend_from_slice(piece)).ok()?;
    inflated.complete.then_some(bytes)
}

/// A digest's JSON, as `json.loads(bytes.decode())` reads it.
pub(super) fn parse_digest_json(bytes: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(bytes).ok()?;
    serde_json::from_str(text).ok()
}

/// What Python says when the AWS CLI stores the signature into a digest that is not a JSON
/// object (`digest_data['_signature'] = ...`).
pub(super) fn not_an_object_reason(value: &Value) -> String {
    match value {
        Value::Array(_) => "list indices must be integers or slices, not str".to_owned(),
        other => format!("'{}' object does not support item assignment", python_type(other)),
    }
}

fn python_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(number) if number.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// A JSON value as Python's `str()` prints it, for the values that reach the CLI's messages.
pub(super) fn python_str(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(number) => match number.as_f64() {
            Some(float) if number.is_f64() && float.fract() == 0.0 && float.abs() < 1e16 => format!("{float:.1}"),
            _ => number.to_string(),
        },
        other => other.to_string(),
    }
}

/// The fingerprint as a dictionary key: Python cannot hash a list or an object.
pub(super) fn fingerprint_lookup(value: &Value) -> Result<Option<&str>, String> {
    match value {
        Value::String(text) => Ok(Some(text)),
        Value::Array(_) | Value::Object(_) => Err(format!("unhashable type: '{}'", python_type(value))),
        _ => Ok(None),
    }
}

/// Verifies a digest as the AWS CLI does: loads the PKCS#1 key, builds the string to sign
/// from the digest's own members and the hash of its bytes, decodes the hex signature, and
/// checks it with python-rsa's rules. The error is the reason that follows `INVALID: `.
pub(super) fn verify_digest(
    public_key_der: &[u8],
    digest: &serde_json::Map<String, Value>,
    inflated: &[u8],
    signature_hex: &str,
) -> Result<(), String> {
    let member = |name: &str| digest.get(name).map(python_str).unwrap_or_default();
    let Some(key) = Pkcs1PublicKey::parse(public_key_der) else {
        return Err(format!("Unable to load PKCS #1 key with fingerprint {}", member("digestPublicKeyFingerprint")));
    };
    let previous_signature = match digest.get("previousDigestSignature") {
        None | Some(Value::Null) => "null".to_owned(),
        Some(value) => python_str(value),
    };
    let to_sign = format!(
        "{}\n{}/{}\n{}\n{previous_signature}",
        member("digestEndTime"),
        member("digestS3Bucket"),
        member("digestS3Object"),
        hex::encode(Sha256::digest(inflated)),
    );
    let signature = unhexlify(signature_hex)?;
    if key.verify(to_sign.as_bytes(), &signature) { Ok(()) } else { Err("signature verification failed".to_owned()) }
}

/// `binascii.unhexlify` with its error messages.
fn unhexlify(text: &str) -> Result<Vec<u8>, String> {
    if !text.is_ascii() {
        return Err("string argument should contain only ASCII characters".to_owned());
    }
    if text.len() % 2 == 1 {
        return Err("Odd-length string".to_owned());
    }
    hex::decode(text).map_err(|_| "Non-hexadecimal digit found".to_owned())
}

/// An RSA public key as DER PKCS#1 `RSAPublicKey` (SEQUENCE { modulus, publicExponent }).
struct Pkcs1PublicKey<'a> {
    /// The DER of the SEQUENCE alone; bytes after it are ignored, as python-rsa ignores them.
    der: &'a [u8],
    /// The modulus, big-endian, without leading zero bytes.
    modulus: &'a [u8],
}

impl<'a> Pkcs1PublicKey<'a> {
    fn parse(der: &'a [u8]) -> Option<Pkcs1PublicKey<'a>> {
        let (tag, content, sequence_length) = read_tlv(der)?;
        if tag != 0x30 {
            return None;
        }
        let (modulus_tag, modulus, modulus_length) = read_tlv(content)?;
        let (exponent_tag, exponent, exponent_length) = read_tlv(&content[modulus_length..])?;
        let negative = |integer: &[u8]| integer.first().is_none_or(|&first| first & 0x80 != 0);
        if modulus_tag != 0x02
            || exponent_tag != 0x02
            || modulus_length + exponent_length != content.len()
            || negative(modulus)
            || negative(exponent)
        {
            return None;
        }
        Some(Pkcs1PublicKey { der: &der[..sequence_length], modulus: strip_leading_zeros(modulus) })
    }

    /// python-rsa's `verify`: the signature must be exactly as long as the modulus, and is
    /// taken modulo the modulus before it is checked (python-rsa computes `s^e mod n` for
    /// any `s`), so a signature plus the modulus verifies as the signature does.
    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        if signature.len() != self.modulus.len() {
            return false;
        }
        let reduced = reduce(signature, self.modulus);
        signing::verify(self.der, message, &reduced)
    }
}

/// `value mod modulus`, for a value as long as the (non-zero) modulus, big-endian and as
/// long as the modulus. The value is less than 256 times the modulus, and less than twice
/// it for any real RSA key (whose top bit is set), so subtracting is quick.
fn reduce(value: &[u8], modulus: &[u8]) -> Vec<u8> {
    let mut value = value.to_vec();
    while value.as_slice() >= modulus {
        let mut borrow = 0i16;
        for index in (0..value.len()).rev() {
            let mut digit = i16::from(value[index]) - i16::from(modulus[index]) - borrow;
            borrow = i16::from(digit < 0);
            if digit < 0 {
                digit += 256;
            }
            value[index] = digit as u8;
        }
    }
    value
}

/// One DER element at the start of `bytes`: its tag, its contents, and its whole length.
fn read_tlv(bytes: &[u8]) -> Option<(u8, &[u8], usize)> {
    let tag = *bytes.first()?;
    let first = *bytes.get(1)?;
    let (length, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let length = bytes.get(2..2 + count)?.iter().fold(0usize, |total, &byte| (total << 8) | usize::from(byte));
        (length, 2 + count)
    };
    let content = bytes.get(header..header.checked_add(length)?)?;
    Some((tag, content, header + length))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let zeros = bytes.iter().take_while(|&&byte| byte == 0).count();
    &bytes[zeros..]
}

/// What the AWS CLI decides about one log file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LogVerdict {
    Valid,
    HashMismatch,
    TrailingData,
    InvalidFormat,
}

/// Inflates a log file as a stream, hashes what comes out, and compares it with the
/// digest's `hashValue` (`None` when the digest's entry has none).
pub(super) fn check_log_file(body: &[u8], expected_hash: Option<&Value>) -> LogVerdict {
    let mut hash = Sha256::new();
    let inflated = match inflate(body, |piece| hash.update(piece)) {
        Ok(inflated) => inflated,
        Err(_) => return LogVerdict::InvalidFormat,
    };
    if inflated.complete && inflated.trailing > 0 {
        return LogVerdict::TrailingData;
    }
    match expected_hash {
        None => LogVerdict::InvalidFormat,
        Some(Value::String(expected)) if *expected == hex::encode(hash.finalize()) => LogVerdict::Valid,
        Some(_) => LogVerdict::HashMismatch,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;
    use serde_json::json;

    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn inflates_digests_in_one_call_and_logs_as_a_stream() {
        let body = gzip(b"{\"Records\":[]}");
        assert_eq!(inflate_digest(&body).unwrap(), b"{\"Records\":[]}");
        let mut trailing = body.clone();
        trailing.extend_from_slice(b"extra");
        assert_eq!(inflate_digest(&trailing).unwrap(), b"{\"Records\":[]}", "zlib.decompress ignores it");
        assert_eq!(inflate_digest(&body[..body.len() - 3]), None, "truncated");
        assert_eq!(inflate_digest(b""), None);
        assert_eq!(inflate_digest(b"not gzip at all"), None);

        let hash = json!(hex::encode(Sha256::digest(b"{\"Records\":[]}")));
        assert_eq!(check_log_file(&body, Some(&hash)), LogVerdict::Valid);
        assert_eq!(check_log_file(&trailing, Some(&hash)), LogVerdict::TrailingData);
        assert_eq!(
            check_log_file(&body[..body.len() - 3], Some(&hash)),
            LogVerdict::Valid,
            "a cut trailer goes unseen"
        );
        assert_eq!(
            check_log_file(&body[..body.len() / 2], Some(&hash)),
            LogVerdict::HashMismatch,
            "a stream yields less"
        );
        assert_eq!(check_log_file(b"", Some(&hash)), LogVerdict::HashMismatch);
        assert_eq!(check_log_file(b"not gzip at all", Some(&hash)), LogVerdict::InvalidFormat);
        assert_eq!(check_log_file(&body, None), LogVerdict::InvalidFormat, "no hashValue: a KeyError");
        assert_eq!(check_log_file(&body, Some(&json!(5))), LogVerdict::HashMismatch);
        let mut bad_crc = body.clone();
        let at = bad_crc.len() - 6;
        bad_crc[at] ^= 0xff;
        assert_eq!(check_log_file(&bad_crc, Some(&hash)), LogVerdict::InvalidFormat);

        let big: Vec<u8> = (0..300_000u32).flat_map(|n| n.to_le_bytes()).collect();
        let hash = json!(hex::encode(Sha256::digest(&big)));
        assert_eq!(check_log_file(&gzip(&big), Some(&hash)), LogVerdict::Valid, "more than one output buffer");
    }

    #[test]
    fn words_type_errors_as_python() {
        assert_eq!(not_an_object_reason(&json!([1])), "list indices must be integers or slices, not str");
        assert_eq!(not_an_object_reason(&json!("s")), "'str' object does not support item assignment");
        assert_eq!(not_an_object_reason(&json!(null)), "'NoneType' object does not support item assignment");
        assert_eq!(not_an_object_reason(&json!(1.5)), "'float' object does not support item assignment");
        assert_eq!(not_an_object_reason(&json!(true)), "'bool' object does not support item assignment");
        assert_eq!(fingerprint_lookup(&json!(["a"])), Err("unhashable type: 'list'".to_owned()));
        assert_eq!(fingerprint_lookup(&json!({})), Err("unhashable type: 'dict'".to_owned()));
        assert_eq!(fingerprint_lookup(&json!(7)), Ok(None));
        assert_eq!(python_str(&json!(7)), "7");
        assert_eq!(python_str(&json!(2.0)), "2.0");
        assert_eq!(python_str(&json!(null)), "None");
        assert_eq!(unhexlify("abc"), Err("Odd-length string".to_owned()));
        assert_eq!(unhexlify("zz"), Err("Non-hexadecimal digit found".to_owned()));
        assert_eq!(unhexlify("é1"), Err("string argument should contain only ASCII characters".to_owned()));
        assert_eq!(unhexlify("0aFF"), Ok(vec![0x0a, 0xff]));
    }

    /// Big-endian `a + b` for equal lengths, one byte longer when it carries.
    fn add(a: &[u8], b: &[u8]) -> Vec<u8> {
        let mut sum = vec![0u8; a.len()];
        let mut carry = 0u16;
        for index in (0..a.len()).rev() {
            let digit = u16::from(a[index]) + u16::from(b[index]) + carry;
            sum[index] = (digit & 0xff) as u8;
            carry = digit >> 8;
        }
        if carry > 0 {
            sum.insert(0, 1);
        }
        sum
    }

    #[test]
    fn reduces_a_signature_as_python_rsa_does() {
        assert_eq!(reduce(&[0x12, 0x34], &[0x80, 0x00]), [0x12, 0x34], "below the modulus");
        assert_eq!(reduce(&[0x80, 0x00], &[0x80, 0x00]), [0x00, 0x00]);
        assert_eq!(reduce(&[0xff, 0x01], &[0x80, 0x02]), [0x7e, 0xff], "with a borrow");
        assert_eq!(reduce(&[0xff, 0xff], &[0x01, 0x00]), [0x00, 0xff], "many times the modulus");
    }

    #[test]
    fn verifies_with_python_rsa_rules() {
        let dir = tempfile::tempdir().unwrap();
        let keys = signing::SigningKeys::open(dir.path(), std::time::Duration::from_secs(3600)).unwrap();
        let key = keys.current("us-east-1", 0).unwrap();
        let public = Pkcs1PublicKey::parse(key.public_key_der()).unwrap();
        assert_eq!(public.modulus.len(), 256);
        let signature = key.sign(b"message").unwrap();
        assert!(public.verify(b"message", &signature));
        assert!(!public.verify(b"massage", &signature));
        let mut padded = vec![0u8];
        padded.extend_from_slice(&signature);
        assert!(!public.verify(b"message", &padded), "one byte longer than the modulus");
        assert!(!public.verify(b"message", &[0xff; 256]), "above the modulus: reduced, and wrong");
        // The same signature plus the modulus, when it fits in 256 bytes, is the same value
        // modulo the modulus: python-rsa accepts it.
        let plus_modulus = add(&signature, public.modulus);
        if plus_modulus.len() == 256 {
            assert!(public.verify(b"message", &plus_modulus));
        }
        assert!(Pkcs1PublicKey::parse(b"\x30\x03\x02\x01\x01").is_none(), "one integer only");
        assert!(Pkcs1PublicKey::parse(b"junk").is_none());

        let digest = json!({
            "digestEndTime": "2026-11-20T01:00:00Z",
            "digestS3Bucket": "b",
            "digestS3Object": "k",
            "previousDigestSignature": null,
            "digestPublicKeyFingerprint": key.fingerprint(),
        });
        let digest = digest.as_object().unwrap();
        let inflated = b"{}";
        let to_sign = format!("2026-11-20T01:00:00Z\nb/k\n{}\nnull", hex::encode(Sha256::digest(inflated)));
        let signature = hex::encode(key.sign(to_sign.as_bytes()).unwrap());
        assert_eq!(verify_digest(key.public_key_der(), digest, inflated, &signature), Ok(()));
        assert_eq!(
            verify_digest(key.public_key_der(), digest, b"{ }", &signature),
            Err("signature verification failed".to_owned())
        );
        assert_eq!(
            verify_digest(b"not a key", digest, inflated, &signature),
            Err(format!("Unable to load PKCS #1 key with fingerprint {}", key.fingerprint()))
        );
        assert_eq!(verify_digest(key.public_key_der(), digest, inflated, "0"), Err("Odd-length string".to_owned()));
    }
}
