//! `trailkeeper ingest`: reads CloudTrail records from files, directories (a CloudTrail log
//! tree included) or stdin and sends them to a server's ingest API in signed batches,
//! retrying what the server pushes back.
//!
//! A reader thread turns files into request bodies while up to `--concurrency` requests are
//! in flight. The channel between them holds a few bodies, so memory stays bounded by the
//! largest file however large the tree is, and reading overlaps sending. Gzip log files
//! (what a CloudTrail log tree holds) go out as they are, gzip-encoded and several to a
//! request, for the server to decompress: gzip members concatenated are one gzip stream,
//! and the server reads log files back to back. This command then neither inflates them
//! nor hashes their text to sign it. Other files (plain, NDJSON, large, stdin) are split
//! into records, which go out as NDJSON batches of `--batch-size` records that may span
//! files.

use std::collections::VecDeque;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use trailkeeper_core::body::{gzip_size_hint, is_log_file_start, ndjson_lines, split_records};
use trailkeeper_server::ingest::MAX_INFLATION;

#[derive(Args)]
pub struct IngestArgs {
    /// Files or directories to send; `-` reads stdin. A file that cannot be read or parsed
    /// is reported and the rest of it skipped (the records of a large NDJSON file before the
    /// damage are sent), and the command then exits non-zero.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The server [env: TRAILKEEPER_ENDPOINT_URL, then AWS_ENDPOINT_URL; default http://127.0.0.1:4600].
    #[arg(long)]
    endpoint_url: Option<String>,
    /// The Region to sign for; records without awsRegion are stored in it.
    #[arg(long, env = "AWS_REGION")]
    region: Option<String>,
    /// Records per request, for records sent as NDJSON.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Files larger than this, and stdin, are read a chunk of this size at a time.
const CHUNK_BYTES: usize = 8 << 20;
/// Gzip log files are packed into one request until their text comes to this much, about
/// as much as a batch of a thousand records ...
const BUNDLE_TEXT_BYTES: usize = 2 << 20;
/// ... or their gzip bytes to this much. A file larger than this is split here instead: the
/// server sets aside [`MAX_INFLATION`] times a gzip body's size while it holds it (256 MiB
/// here) and by default refuses bodies over 32 MiB. Gzip files the server refuses anyway
/// are split here and sent again.
const BUNDLE_MAX_BYTES: usize = 4 << 20;

/// `count` records of `source` from its record `first` (counted from 0): where a body's
/// records came from, so that a rejection names its file and record.
struct Part {
    source: Arc<str>,
    first: usize,
    /// `usize::MAX` for a whole file until its records are counted.
    count: usize,
    /// Where a whole file's gzip bytes are in the body.
    gzip: std::ops::Range<usize>,
}

/// One request body.
struct Body {
    parts: Vec<Part>,
    bytes: Bytes,
    /// Whole gzip files, sent as they are.
    whole_files: bool,
}

impl Body {
    /// A body of what `parts` and `bytes` hold, which are left empty.
    fn take(parts: &mut Vec<Part>, bytes: &mut Vec<u8>, whole_files: bool) -> Body {
        Body { parts: std::mem::take(parts), bytes: Bytes::from(std::mem::take(bytes)), whole_files }
    }

    /// Counts the records of each whole file of the body, so that [`Body::locate`] can tell
    /// which holds a record. Only needed (and paid for) when one is rejected.
    fn count_records(&mut self) {
        for part in &mut self.parts {
            let mut text = Vec::new();
            let counted = flate2::read::MultiGzDecoder::new(&self.bytes[part.gzip.clone()]).read_to_end(&mut text);
            part.count = counted.ok().and_then(|_| split_records(&text).ok()).map_or(0, |records| records.len());
        }
    }

    /// The file and record number (counted from 1, like lines) of the body's record `index`.
    fn locate(&self, mut index: usize) -> (&str, usize) {
        for part in &self.parts {
            if index < part.count {
                return (&part.source, part.first + index + 1);
            }
            index -= part.count;
        }
        ("?", index + 1)
    }
}

/// What the reader hands the senders.
enum Item {
    Body(Body),
    /// A file that could not be read or split into records.
    Failed(String),
}

/// Packs records of any number of files into NDJSON bodies of `batch_size` records.
struct Batcher {
    batch_size: usize,
    parts: Vec<Part>,
    bytes: Vec<u8>,
    records: usize,
}

impl Batcher {
    fn new(batch_size: usize) -> Batcher {
        Batcher { batch_size, parts: Vec::new(), bytes: Vec::new(), records: 0 }
    }

    /// Adds records of `source` numbered from `first`, handing each full body to `send`,
    /// which says whether to go on; returns what it last said.
    fn add_records<'a>(
        &mut self,
        source: &Arc<str>,
        first: usize,
        records: impl IntoIterator<Item = &'a [u8]>,
        send: &mut impl FnMut(Body) -> bool,
    ) -> bool {
        for (index, record) in (first..).zip(records) {
            match self.parts.last_mut() {
                Some(part) if Arc::ptr_eq(&part.source, source) => part.count += 1,
                _ => self.parts.push(Part { source: Arc::clone(source), first: index, count: 1, gzip: 0..0 }),
            }
            if self.bytes.is_empty() {
                self.bytes.reserve(self.batch_size * (record.len() + 1));
            }
            self.bytes.extend_from_slice(record);
            self.bytes.push(b'\n');
            self.records += 1;
            if self.records == self.batch_size
                && let Some(body) = self.take()
                && !send(body)
            {
                return false;
            }
        }
        true
    }

    /// The body of the records added since the last one, if any.
    fn take(&mut self) -> Option<Body> {
        if self.records == 0 {
            return None;
        }
        self.records = 0;
        Some(Body::take(&mut self.parts, &mut self.bytes, false))
    }
}

/// Packs whole gzip log files into bodies, as they are.
#[derive(Default)]
struct Bundler {
    parts: Vec<Part>,
    bytes: Vec<u8>,
    text_bytes: usize,
}

impl Bundler {
    /// Adds a gzip log file whose text is `text_bytes` long; returns a body once there is
    /// enough for one.
    fn add(&mut self, source: &Arc<str>, raw: &[u8], text_bytes: usize) -> Option<Body> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(raw);
        self.parts.push(Part {
            source: Arc::clone(source),
            first: 0,
            count: usize::MAX,
            gzip: start..self.bytes.len(),
        });
        self.text_bytes += text_bytes;
        (self.text_bytes >= BUNDLE_TEXT_BYTES || self.bytes.len() >= BUNDLE_MAX_BYTES).then(|| self.take()).flatten()
    }

    fn take(&mut self) -> Option<Body> {
        if self.parts.is_empty() {
            return None;
        }
        self.text_bytes = 0;
        Some(Body::take(&mut self.parts, &mut self.bytes, true))
    }
}

#[derive(Default)]
struct Totals {
    accepted: u64,
    duplicates: u64,
    rejected: u64,
    failed_files: u64,
}

/// The signing identity and where requests go.
struct Target {
    access_key_id: String,
    secret_access_key: String,
    region: String,
    host: String,
    url: String,
}

pub fn run(args: IngestArgs) -> anyhow::Result<()> {
    let endpoint = args
        .endpoint_url
        .clone()
        .or_else(|| std::env::var("TRAILKEEPER_ENDPOINT_URL").ok())
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .unwrap_or_else(|| "http://127.0.0.1:4600".to_owned());
    let region = args
        .region
        .clone()
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .unwrap_or_else(|| "us-east-1".to_owned());
    let access_key_id = std::env::var("AWS_ACCESS_KEY_ID").context("AWS_ACCESS_KEY_ID is not set")?;
    let secret_access_key = std::env::var("AWS_SECRET_ACCESS_KEY").context("AWS_SECRET_ACCESS_KEY is not set")?;
    if args.batch_size == 0 || args.concurrency == 0 {
        bail!("--batch-size and --concurrency must be at least 1");
    }
    let url = format!("{}/v1/records", endpoint.trim_end_matches('/'));
    let parsed = reqwest::Url::parse(&url).with_context(|| format!("invalid endpoint {endpoint}"))?;
    let host = match (parsed.host_str(), parsed.port()) {
        (Some(name), Some(port)) => format!("{name}:{port}"),
        (Some(name), None) => name.to_owned(),
        _ => bail!("invalid endpoint {endpoint}"),
    };
    let target = Arc::new(Target { access_key_id, secret_access_key, region, host, url });

    let files = collect_files(&args.paths)?;
    let progress = progress_bar(&files, args.quiet);
    let (tx, rx) = mpsc::channel(args.concurrency);
    let batch_size = args.batch_size;
    let read = progress.clone();
    let reader = std::thread::Builder::new()
        .name("ingest-reader".into())
        .spawn(move || read_files(&files, batch_size, &tx, &read))
        .context("cannot start the reader thread")?;

    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .context("cannot create the HTTP client")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let sent = runtime.block_on(send_all(client, target, rx, args.concurrency, batch_size, &progress));
    // Dropping the receiver (on an error above) lets the reader stop at its next body.
    let _ = reader.join();
    progress.finish_and_clear();
    let totals = sent?;
    println!("accepted {}, duplicates {}, rejected {}", totals.accepted, totals.duplicates, totals.rejected);
    if totals.failed_files > 0 {
        bail!("{} file(s) could not be read to their end; see the errors above", totals.failed_files);
    }
    Ok(())
}

fn progress_bar(files: &[PathBuf], quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let sizes: Option<u64> = files
        .iter()
        .map(|file| (file.as_os_str() != "-").then(|| std::fs::metadata(file).map_or(0, |meta| meta.len())))
        .sum();
    let (bar, template) = match sizes {
        Some(total) => (ProgressBar::new(total), "{bar:40} {bytes}/{total_bytes} {msg} eta {eta}"),
        None => (ProgressBar::no_length(), "{spinner} {bytes} {msg}"),
    };
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar
}

/// The reader thread: every file, in order, as bodies on `tx`; the progress bar counts the
/// bytes read. Stops early if the senders have gone.
fn read_files(files: &[PathBuf], batch_size: usize, tx: &mpsc::Sender<Item>, progress: &ProgressBar) {
    let mut send = |body: Body| tx.blocking_send(Item::Body(body)).is_ok();
    let mut batcher = Batcher::new(batch_size);
    let mut bundler = Bundler::default();
    for file in files {
        let source: Arc<str> = Arc::from(file.display().to_string());
        let small =
            file.as_os_str() != "-" && std::fs::metadata(file).is_ok_and(|meta| meta.len() <= CHUNK_BYTES as u64);
        let read = if small {
            read_raw(file).and_then(|raw| {
                progress.inc(raw.len() as u64);
                if let Some(text_bytes) = log_file_text_bytes(&raw) {
                    if let Some(body) = bundler.add(&source, &raw, text_bytes) {
                        send(body);
                    }
                    return Ok(());
                }
                split_input(&raw[..], text_capacity(&raw), &source, &mut batcher, &mut send)
            })
        } else {
            stream_file(file, &source, &mut batcher, &mut send, progress)
        };
        if let Err(error) = read
            && tx.blocking_send(Item::Failed(format!("{source}: {error}"))).is_err()
        {
            return;
        }
        if tx.is_closed() {
            return;
        }
    }
    for body in [batcher.take(), bundler.take()].into_iter().flatten() {
        send(body);
    }
}

/// Reads a large file, or stdin, for `batcher` a chunk at a time; the progress bar counts
/// its bytes as they are read.
fn stream_file(
    file: &Path,
    source: &Arc<str>,
    batcher: &mut Batcher,
    send: &mut impl FnMut(Body) -> bool,
    progress: &ProgressBar,
) -> Result<(), String> {
    let raw: Box<dyn Read> = if file.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(file).map_err(|error| format!("cannot read it: {error}"))?)
    };
    let input = std::io::BufReader::with_capacity(1 << 20, progress.wrap_read(raw));
    split_input(input, CHUNK_BYTES, source, batcher, send)
}

/// The first buffer's size for the text of a file held in memory: what its gzip trailer
/// says, or its own size, up to a chunk.
fn text_capacity(raw: &[u8]) -> usize {
    gzip_size_hint(raw).unwrap_or(raw.len()).min(CHUNK_BYTES)
}

/// Splits what `input` holds (gzip or not) into records for `batcher`, reading
/// [`CHUNK_BYTES`] at a time into a buffer that starts at `capacity`. NDJSON is split a
/// chunk at a time, so memory holds a chunk however long the input is; a log file or a JSON
/// array is one value and is read whole.
fn split_input(
    mut input: impl BufRead,
    capacity: usize,
    source: &Arc<str>,
    batcher: &mut Batcher,
    send: &mut impl FnMut(Body) -> bool,
) -> Result<(), String> {
    let gzip = input.fill_buf().map_err(|error| format!("cannot read it: {error}"))?.starts_with(&[0x1f, 0x8b]);
    let mut input: Box<dyn Read + '_> =
        if gzip { Box::new(flate2::read::MultiGzDecoder::new(input)) } else { Box::new(input) };
    let mut read_chunk = |text: &mut Vec<u8>| {
        (&mut input)
            .take(CHUNK_BYTES as u64)
            .read_to_end(text)
            .map_err(|error| if gzip { format!("not valid gzip: {error}") } else { format!("cannot read it: {error}") })
    };
    let mut text = Vec::with_capacity(capacity);
    read_chunk(&mut text)?;
    if !is_ndjson(&text) {
        while read_chunk(&mut text)? > 0 {}
        let records = split_records(&text).map_err(|error| error.to_string())?;
        batcher.add_records(source, 0, records, send);
        return Ok(());
    }
    let mut first = 0;
    loop {
        let more = read_chunk(&mut text)? > 0;
        // Whole lines only, until the end, when what is left is the last line.
        let end = if more { memchr::memrchr(b'\n', &text).map_or(0, |at| at + 1) } else { text.len() };
        let lines: Vec<&[u8]> = ndjson_lines(&text[..end]).collect();
        let count = lines.len();
        if !batcher.add_records(source, first, lines, send) {
            return Ok(());
        }
        first += count;
        text.drain(..end);
        if !more {
            return Ok(());
        }
    }
}

/// Whether text that starts a file is NDJSON rather than one JSON value (a log file's
/// `{"Records": [...]}` or an array), as `split_records` would tell for the whole file.
fn is_ndjson(start: &[u8]) -> bool {
    !(start.trim_ascii_start().starts_with(b"[") || is_log_file_start(start))
}

/// The length of the text of a gzip log file that goes to the server as it is: one whose
/// trailer puts its text within what the server allows, and whose text begins as a log
/// file (inflating the first bytes tells).
fn log_file_text_bytes(raw: &[u8]) -> Option<usize> {
    if raw.len() > BUNDLE_MAX_BYTES {
        return None;
    }
    let text_bytes = gzip_size_hint(raw).filter(|&text| text <= raw.len().saturating_mul(MAX_INFLATION))?;
    let mut start = Vec::with_capacity(64);
    flate2::read::GzDecoder::new(raw).take(64).read_to_end(&mut start).ok()?;
    is_log_file_start(&start).then_some(text_bytes)
}

/// Sends every body the reader produces, `concurrency` at a time, and adds up the answers.
async fn send_all(
    client: reqwest::Client,
    target: Arc<Target>,
    mut rx: mpsc::Receiver<Item>,
    concurrency: usize,
    batch_size: usize,
    progress: &ProgressBar,
) -> anyhow::Result<Totals> {
    let mut totals = Totals::default();
    let mut in_flight: JoinSet<anyhow::Result<(Body, Answer)>> = JoinSet::new();
    // Bodies split here from whole files the server would not take.
    let mut split: VecDeque<Body> = VecDeque::new();
    let mut reading = true;
    let mut records = 0u64;
    loop {
        if in_flight.len() < concurrency
            && let Some(body) = split.pop_front()
        {
            in_flight.spawn(send_body(client.clone(), Arc::clone(&target), body));
            continue;
        }
        tokio::select! {
            item = rx.recv(), if reading && in_flight.len() < concurrency => match item {
                Some(Item::Body(body)) => {
                    in_flight.spawn(send_body(client.clone(), Arc::clone(&target), body));
                }
                Some(Item::Failed(message)) => {
                    progress.suspend(|| eprintln!("{message}"));
                    totals.failed_files += 1;
                }
                None => reading = false,
            },
            Some(done) = in_flight.join_next() => {
                let (body, answer) = done.context("a sending task failed")??;
                match answer {
                    Answer::Accepted(response) => {
                        records += tally(body, &response, &mut totals, progress);
                        progress.set_message(format!("{records} records sent"));
                    }
                    Answer::Refused(reason) if body.whole_files => {
                        // Too large, too many records for one request, or a damaged file:
                        // split each file here.
                        let mut batcher = Batcher::new(batch_size);
                        let mut push = |split_body: Body| {
                            split.push_back(split_body);
                            true
                        };
                        for part in &body.parts {
                            let raw = &body.bytes[part.gzip.clone()];
                            if let Err(error) = split_input(raw, text_capacity(raw), &part.source, &mut batcher, &mut push) {
                                progress.suspend(|| eprintln!("{}: {error} (sent as whole files, its request was refused: {reason})", part.source));
                                totals.failed_files += 1;
                            }
                        }
                        split.extend(batcher.take());
                    }
                    Answer::Refused(reason) => bail!("{}: the server refused the batch: {reason}", body.locate(0).0),
                }
            },
            else => break,
        }
    }
    Ok(totals)
}

/// Adds one answer to the totals, prints the reason of each rejected record, and returns
/// how many records the answer covers.
fn tally(mut body: Body, response: &serde_json::Value, totals: &mut Totals, progress: &ProgressBar) -> u64 {
    let count = |name: &str| response[name].as_u64().unwrap_or(0);
    totals.accepted += count("accepted");
    totals.duplicates += count("duplicates");
    totals.rejected += count("rejected");
    if count("rejected") > 0 && body.whole_files && body.parts.len() > 1 {
        body.count_records();
    }
    for result in response["results"].as_array().into_iter().flatten() {
        if result["status"] == "rejected" {
            let (source, number) = body.locate(result["index"].as_u64().unwrap_or(0) as usize);
            let reason = result["reason"].as_str().unwrap_or("");
            progress.suspend(|| eprintln!("{source} record {number}: rejected: {reason}"));
        }
    }
    count("accepted") + count("duplicates") + count("rejected")
}

/// The server's answer to one body.
enum Answer {
    /// The per-record results.
    Accepted(serde_json::Value),
    /// Refused as a whole for a reason a retry would not change.
    Refused(String),
}

/// Sends one body, retrying throttling, server errors and broken connections with
/// exponential back-off. Records are deduplicated by eventID, so a retry stores nothing twice.
async fn send_body(client: reqwest::Client, target: Arc<Target>, body: Body) -> anyhow::Result<(Body, Answer)> {
    let mut delay = Duration::from_millis(200);
    let content_type = if body.whole_files { "application/json" } else { "application/x-ndjson" };
    for attempt in 1..=10 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let params = trailkeeper_sigv4::SigningParams {
            access_key_id: &target.access_key_id,
            secret_access_key: &target.secret_access_key,
            region: &target.region,
            service: "cloudtrail",
            now_unix_seconds: now,
            include_content_sha256: false,
        };
        let headers = [("host", target.host.as_str()), ("content-type", content_type)];
        let signed = trailkeeper_sigv4::sign("POST", "/v1/records", "", &headers, &body.bytes, &params);
        let mut request = client.post(&target.url).header("content-type", content_type).body(body.bytes.clone());
        if body.whole_files {
            request = request.header("content-encoding", "gzip");
        }
        for (name, value) in signed {
            request = request.header(name, value);
        }
        let retry_reason = match request.send().await {
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
                if status.is_success() {
                    return Ok((body, Answer::Accepted(answer)));
                }
                let code = answer["__type"].as_str().unwrap_or("").to_owned();
                let reason = format!("{} {}: {}", status.as_u16(), code, answer["message"].as_str().unwrap_or(&text));
                if !(status.is_server_error() || code == "ThrottlingException") {
                    return Ok((body, Answer::Refused(reason)));
                }
                reason
            }
            Err(error) => error.to_string(),
        };
        if attempt == 10 {
            bail!("{}: giving up after {attempt} attempts: {retry_reason}", body.locate(0).0);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    unreachable!("the loop returns or bails on its last attempt")
}

fn is_record_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    [".json", ".json.gz", ".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz"].iter().any(|suffix| name.ends_with(suffix))
}

fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" || path.is_file() {
            files.push(path.clone());
            continue;
        }
        if !path.is_dir() {
            bail!("{}: no such file or directory", path.display());
        }
        let mut stack = vec![path.clone()];
        let mut found = Vec::new();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
                let entry_path = entry?.path();
                if entry_path.is_dir() {
                    stack.push(entry_path);
                } else if is_record_file(&entry_path) {
                    found.push(entry_path);
                }
            }
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// A file's bytes as stored.
fn read_raw(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|error| format!("cannot read it: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(text: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut encoder, text).unwrap();
        encoder.finish().unwrap()
    }

    fn records(count: usize, pad: usize) -> Vec<u8> {
        let records: Vec<String> = (0..count)
            .map(|n| {
                format!(r#"{{"eventTime":"2026-12-07T00:00:00Z","eventName":"E{n}","pad":"{}"}}"#, "x".repeat(pad))
            })
            .collect();
        format!(r#"{{"Records":[{}]}}"#, records.join(",")).into_bytes()
    }

    #[test]
    fn batches_span_files_and_name_each_records_file_and_number() {
        let mut bodies = Vec::new();
        let mut send = |body: Body| {
            bodies.push(body);
            true
        };
        let mut batcher = Batcher::new(4);
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a.json"), Arc::from("b.json.gz"));
        split_input(&records(3, 0)[..], 0, &a, &mut batcher, &mut send).unwrap();
        split_input(&gzip(&records(5, 0))[..], 0, &b, &mut batcher, &mut send).unwrap();
        bodies.extend(batcher.take());
        let lines: Vec<usize> = bodies.iter().map(|body| body.bytes.split(|&b| b == b'\n').count() - 1).collect();
        // Eight records make two full bodies and leave none to send at the end.
        assert_eq!(lines, [4, 4]);
        assert_eq!(bodies[0].locate(2), ("a.json", 3));
        assert_eq!(bodies[0].locate(3), ("b.json.gz", 1));
        assert_eq!(bodies[1].locate(3), ("b.json.gz", 5));
        assert!(Batcher::new(4).take().is_none());
    }

    #[test]
    fn a_file_that_is_not_records_is_an_error_and_adds_nothing() {
        let mut batcher = Batcher::new(4);
        let source: Arc<str> = Arc::from("bad.json.gz");
        let mut send = |_: Body| true;
        assert!(split_input(&[0x1f, 0x8b, 1, 2, 3][..], 0, &source, &mut batcher, &mut send).is_err());
        assert!(split_input(&b"[{\"eventTime\": "[..], 0, &source, &mut batcher, &mut send).is_err());
        assert!(batcher.take().is_none());
    }

    /// Streams `bytes`, written to a file, through a batcher of 1,000 records.
    fn streamed(name: &str, bytes: &[u8]) -> Result<Vec<Body>, String> {
        let path = std::env::temp_dir().join(format!("trailkeeper-ingest-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        let mut bodies = Vec::new();
        let mut send = |body: Body| {
            bodies.push(body);
            true
        };
        let source: Arc<str> = Arc::from(name);
        let mut batcher = Batcher::new(1000);
        let result = stream_file(&path, &source, &mut batcher, &mut send, &ProgressBar::hidden());
        bodies.extend(batcher.take());
        std::fs::remove_file(&path).unwrap();
        result.map(|()| bodies)
    }

    #[test]
    fn files_larger_than_a_chunk_keep_every_record_in_order() {
        // 17,000 lines of 1 KiB: two chunks and a bit, with blank lines and a last line
        // without its newline.
        let line = |n: usize| format!(r#"{{"eventName":"E{n:05}","pad":"{}"}}"#, "x".repeat(1000));
        let mut ndjson: String = (0..17_000).map(|n| line(n) + if n % 5000 == 0 { "\n\n" } else { "\n" }).collect();
        ndjson.pop();
        for (name, bytes) in [("big.ndjson", ndjson.clone().into_bytes()), ("big.ndjson.gz", gzip(ndjson.as_bytes()))] {
            let bodies = streamed(name, &bytes).unwrap();
            assert_eq!(bodies.len(), 17, "{name}");
            let lines: Vec<&[u8]> = bodies.iter().flat_map(|body| ndjson_lines(&body.bytes)).collect();
            assert_eq!(lines.len(), 17_000);
            assert!(lines.iter().enumerate().all(|(n, text)| *text == line(n).as_bytes()), "{name}");
            assert_eq!(bodies[16].locate(999), (name, 17_000));
        }
        // One value larger than a chunk is read whole.
        let log_file = records(9000, 1000);
        assert!(log_file.len() > CHUNK_BYTES);
        let bodies = streamed("big.json", &log_file).unwrap();
        assert_eq!(bodies.iter().map(|body| ndjson_lines(&body.bytes).count()).sum::<usize>(), 9000);
        let cut = gzip(&log_file);
        assert!(streamed("cut.json.gz", &cut[..cut.len() / 2]).is_err());
    }

    #[test]
    fn ndjson_is_told_from_one_value_by_its_start() {
        assert!(is_ndjson(b"{\"eventVersion\":\"1.11\"}\n{}"));
        assert!(!is_ndjson(b" \n{ \"Records\" : [ {}"));
        assert!(!is_ndjson(b"[{}, {}]"));
    }

    #[test]
    fn gzip_log_files_go_as_they_are_several_to_a_body() {
        let small = gzip(&records(10, 0));
        assert_eq!(log_file_text_bytes(&small), Some(records(10, 0).len()));
        assert_eq!(log_file_text_bytes(&records(10, 0)), None, "plain text is batched");
        let ndjson = gzip(b"{\"eventTime\":\"2026-12-07T00:00:00Z\"}\n");
        assert_eq!(log_file_text_bytes(&ndjson), None, "gzip NDJSON is batched");
        // A trailer claiming more than the server lets a body inflate to.
        let mut bomb = small.clone();
        let at = bomb.len() - 4;
        bomb[at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(log_file_text_bytes(&bomb), None);

        // Files join a body until their text comes to BUNDLE_TEXT_BYTES.
        let mut bundler = Bundler::default();
        let names: Vec<Arc<str>> = (0..3).map(|n| Arc::from(format!("{n}.json.gz"))).collect();
        let sizes = [3, 1, 2];
        let mut bodies = Vec::new();
        for (name, count) in names.iter().zip(sizes) {
            let raw = gzip(&records(count, 0));
            bodies.extend(bundler.add(name, &raw, BUNDLE_TEXT_BYTES / 2));
        }
        bodies.extend(bundler.take());
        assert_eq!(bodies.iter().map(|body| body.parts.len()).collect::<Vec<_>>(), [2, 1]);
        // The server reads the body as one gzip stream of log files back to back.
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(&bodies[0].bytes[..]).read_to_end(&mut text).unwrap();
        assert_eq!(split_records(&text).unwrap().len(), 4);
        // A rejected record is found in its file once the files' records are counted.
        let mut body = bodies.remove(0);
        body.count_records();
        assert_eq!(body.locate(2), ("0.json.gz", 3));
        assert_eq!(body.locate(3), ("1.json.gz", 1));
    }
}
