//! Any request line, headers and body through SigV4 parsing, verification and the decoding of
//! S3 streaming (`aws-chunked`) bodies: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trailkeeper_sigv4::{RequestParts, decode_streaming_payload, parse_authorization, verify};

fn text(field: Option<&[u8]>) -> &str {
    field.and_then(|f| std::str::from_utf8(f).ok()).unwrap_or("")
}

fuzz_target!(|data: &[u8]| {
    // Fields separated by newlines: method, path, query, then header lines "name:value", then the body.
    let mut fields = data.splitn(8, |&b| b == b'\n');
    let method = text(fields.next());
    let path = text(fields.next());
    let query = text(fields.next());
    let mut headers: Vec<(&str, &[u8])> = Vec::new();
    let mut body: &[u8] = b"";
    for (index, field) in fields.enumerate() {
        if index == 4 {
            body = field;
            break;
        }
        if let Some(colon) = field.iter().position(|&b| b == b':')
            && let Ok(name) = std::str::from_utf8(&field[..colon])
        {
            headers.push((name, &field[colon + 1..]));
        }
    }
    let request = RequestParts { method, path, query, headers: &headers, body };
    if let Ok(authorization) = parse_authorization(&request) {
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let _ = verify(&request, &authorization, secret, 1_700_000_000);
        // Decoding does not depend on the seed signature being right, so it runs on every
        // parsed request to reach the chunk parser.
        let _ = decode_streaming_payload(&request, &authorization, secret);
    }
});
