//! The bodies and files that records come in, split into the records' texts: CloudTrail
//! log files (`{"Records":[...]}`, one or several back to back), a JSON array of records,
//! or NDJSON, one record per line. Each record is then parsed alone
//! ([`crate::record::parse_record_in`]), so one bad record never fails its neighbours. The
//! ingest API reads request bodies with this, and `trailkeeper ingest` files.

use crate::json;

/// Why a body is not records: only bodies that begin as an array or as a log file can be
/// wrong as a whole; NDJSON lines are judged one by one.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("The body is not a JSON array of records: {0}")]
    NotAnArray(json::SyntaxError),
    #[error(
        "The body begins as a CloudTrail log file but is not one or more of them back to back \
         ({{\"Records\":[...]}} and nothing else each): {0}"
    )]
    NotLogFiles(String),
}

/// The records of a body or a file, however many: CloudTrail log files (one, or several
/// back to back), a JSON array, or NDJSON.
pub fn split_records(text: &[u8]) -> Result<Vec<&[u8]>, BodyError> {
    let trimmed = text.trim_ascii();
    if trimmed.starts_with(b"[") {
        return array_items(trimmed).map_err(BodyError::NotAnArray);
    }
    if !is_log_file_start(trimmed) {
        return Ok(ndjson_lines(trimmed).collect());
    }
    log_file_records(trimmed).map_err(BodyError::NotLogFiles)
}

/// Whether `text` begins as a CloudTrail log file, `{"Records"`, which no record does.
pub fn is_log_file_start(text: &[u8]) -> bool {
    text.trim_ascii_start().strip_prefix(b"{").is_some_and(|rest| rest.trim_ascii_start().starts_with(br#""Records""#))
}

/// The records of NDJSON text: its lines without surrounding whitespace, blank ones skipped.
pub fn ndjson_lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', text)
        .chain([text.len()])
        .map(move |end| {
            let line = &text[start..end];
            start = end + 1;
            line.trim_ascii()
        })
        .filter(|line| !line.is_empty())
}

/// The elements of a JSON array, as written.
fn array_items(text: &[u8]) -> Result<Vec<&[u8]>, json::SyntaxError> {
    let mut items = Vec::new();
    json::array_elements(text, |item| items.push(&text[item]))?;
    Ok(items)
}

/// The records of CloudTrail log files back to back, each `{"Records":[...]}` and nothing
/// else, found in the pass that checks the text.
fn log_file_records(text: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut files = LogFiles { text, records: None, others: false, elements: Vec::new() };
    let whole = json::visit_objects(text, &mut files, LogFiles::file_read).map_err(|error| error.to_string())?;
    if !whole {
        let at = files.records.map_or(0, |records| records.start);
        return Err(format!("a file with other members than Records, or Records not an array, near byte {at}"));
    }
    Ok(files.elements.into_iter().map(|element| &text[element]).collect())
}

/// What [`log_file_records`] reads of the file it is in: its `Records` member and whether
/// there was any other; and the elements of every file's `Records` so far.
struct LogFiles<'t> {
    text: &'t [u8],
    records: Option<std::ops::Range<usize>>,
    others: bool,
    elements: Vec<std::ops::Range<usize>>,
}

impl LogFiles<'_> {
    /// Checks the file just read, and readies for the next; false stops the scan.
    fn file_read(&mut self) -> bool {
        let others = std::mem::take(&mut self.others);
        match self.records.take() {
            Some(records) if !others && self.text[records.clone()].starts_with(b"[") => true,
            // Kept for the error, which says where.
            records => {
                self.records = records;
                false
            }
        }
    }
}

impl json::MemberVisitor for LogFiles<'_> {
    fn descend(&mut self, key: &[u8], _key_escaped: bool) -> Option<u8> {
        (key == b"Records" && self.records.is_none()).then_some(0)
    }

    fn member(&mut self, member: json::CheckedMember) {
        if &self.text[member.key] == b"Records" && self.records.is_none() {
            self.records = Some(member.value);
        } else {
            self.others = true;
        }
    }

    fn inner_element(&mut self, _tag: u8, element: std::ops::Range<usize>) {
        self.elements.push(element);
    }
}

/// The size a gzip stream says its text has: the trailer of its last member (RFC 1952's
/// ISIZE, modulo 2^32). Exact for a single-member file such as a CloudTrail log file; only
/// a hint, since nothing checks it before the stream is read.
pub fn gzip_size_hint(gzip: &[u8]) -> Option<usize> {
    let trailer: [u8; 4] = gzip.get(gzip.len().checked_sub(4)?..)?.try_into().ok()?;
    (gzip.starts_with(&[0x1f, 0x8b]) && gzip.len() >= 18).then(|| u32::from_le_bytes(trailer) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_body_shape() {
        let file = br#"{"Records":[{"a":1},{"b":"x\ny"}]}"#;
        assert_eq!(split_records(file).unwrap(), vec![&br#"{"a":1}"#[..], br#"{"b":"x\ny"}"#]);
        let ndjson = b"{\"a\":1}\n\n{\"b\":2}\r\n";
        assert_eq!(split_records(ndjson).unwrap(), vec![&b"{\"a\":1}"[..], b"{\"b\":2}"]);
        let array = br#" [{"a":1}, {"b":2}] "#;
        assert_eq!(split_records(array).unwrap().len(), 2);
        // A bad line stays a record of its own, judged (and refused) alone.
        assert_eq!(split_records(b"{\"a\":1}\nnot json\n").unwrap().len(), 2);
        // Log files may come several back to back, pretty-printed or not: gzip files
        // concatenated as they are.
        let pretty = b"{ \"Records\" : [ {\"a\": [1, {\"b\":2}]} , {} ] }";
        assert_eq!(split_records(pretty).unwrap(), vec![&b"{\"a\": [1, {\"b\":2}]}"[..], b"{}"]);
        assert_eq!(split_records(br#"{"Records":[]}"#).unwrap(), Vec::<&[u8]>::new());
        let files = b"{\"Records\":[{\"a\":1}]}{\"Records\":[]}\n {\"Records\":[{\"b\":2},{\"c\":3}]}";
        assert_eq!(split_records(files).unwrap(), vec![&b"{\"a\":1}"[..], b"{\"b\":2}", b"{\"c\":3}"]);
        // What begins as a log file must be log files throughout.
        for other in [
            &br#"{"Records":[{"a":1}],"Records":[{"b":2}]}"#[..],
            br#"{"Records":[{"a":1}],"x":1}"#,
            br#"{"Records":{"a":1}}"#,
            br#"{"Records":[{"a":1},]}"#,
            br#"{"Records":[{"a":1}]}{"eventTime":"x"}"#,
            b"{\"Records\":[{\"a\":1}]}\n[]",
        ] {
            let error = split_records(other).unwrap_err();
            assert!(matches!(error, BodyError::NotLogFiles(_)), "{}", String::from_utf8_lossy(other));
        }
        // A record never begins so, and NDJSON is split by lines before any is parsed.
        let lines = b"{\"eventTime\":\"x\"}\n{\"Records\":[]}";
        assert_eq!(split_records(lines).unwrap().len(), 2);
    }
}
