//! `trailkeeper ingest`: reads CloudTrail records from files, directories (a CloudTrail log
//! tree included) or stdin and sends them to a server's ingest API in signed batches,
//! retrying what the server pushes back.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::Semaphore;
use trailkeeper_server::ingest::split_records;

#[derive(Args)]
pub struct IngestArgs {
    /// Files or directories to send; `-` reads stdin.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The server [env: TRAILKEEPER_ENDPOINT_URL, then AWS_ENDPOINT_URL; default http://127.0.0.1:4600].
    #[arg(long)]
    endpoint_url: Option<String>,
    /// The Region to sign for; records without awsRegion are stored in it.
    #[arg(long, env = "AWS_REGION")]
    region: Option<String>,
    /// Records per request.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
}

/// One batch, remembered by where its records came from so rejections can be reported.
struct Batch {
    source: String,
    first_index: usize,
    body: Vec<u8>,
    records: usize,
}

#[derive(Default)]
struct Totals {
    accepted: u64,
    duplicates: u64,
    rejected: u64,
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

    let files = collect_files(&args.paths)?;
    let mut batches = Vec::new();
    for file in &files {
        let text = read_source(file)?;
        let records = split_records(&text).map_err(|error| anyhow::anyhow!("{}: {}", file.display(), error.message))?;
        for (chunk_index, chunk) in records.chunks(args.batch_size).enumerate() {
            let mut body = Vec::with_capacity(chunk.iter().map(|r| r.len() + 1).sum());
            for record in chunk {
                body.extend_from_slice(record);
                body.push(b'\n');
            }
            batches.push(Batch {
                source: file.display().to_string(),
                first_index: chunk_index * args.batch_size,
                body,
                records: chunk.len(),
            });
        }
    }
    let total_records: usize = batches.iter().map(|batch| batch.records).sum();

    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .context("cannot create the HTTP client")?;
    let url = format!("{}/v1/records", endpoint.trim_end_matches('/'));
    let host = reqwest::Url::parse(&url).with_context(|| format!("invalid endpoint {endpoint}"))?;
    let host = match (host.host_str(), host.port()) {
        (Some(name), Some(port)) => format!("{name}:{port}"),
        (Some(name), None) => name.to_owned(),
        _ => bail!("invalid endpoint {endpoint}"),
    };
    let progress = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new(total_records as u64) };
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} records {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let totals = runtime.block_on(async {
        let limit = Arc::new(Semaphore::new(args.concurrency));
        let credentials = Arc::new((access_key_id, secret_access_key, region, host, url));
        let mut tasks = Vec::new();
        for batch in batches {
            let permit = Arc::clone(&limit).acquire_owned().await?;
            let client = client.clone();
            let credentials = Arc::clone(&credentials);
            let progress = progress.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = permit;
                let result = send_batch(&client, &credentials, &batch).await;
                progress.inc(batch.records as u64);
                result.map(|response| (batch, response))
            }));
        }
        let mut totals = Totals::default();
        for task in tasks {
            let (batch, response) = task.await??;
            totals.accepted += response["accepted"].as_u64().unwrap_or(0);
            totals.duplicates += response["duplicates"].as_u64().unwrap_or(0);
            totals.rejected += response["rejected"].as_u64().unwrap_or(0);
            for result in response["results"].as_array().into_iter().flatten() {
                if result["status"] == "rejected" {
                    // Counted from 1, like lines of an NDJSON file.
                    let number = batch.first_index + result["index"].as_u64().unwrap_or(0) as usize + 1;
                    progress.suspend(|| {
                        eprintln!(
                            "{} record {}: rejected: {}",
                            batch.source,
                            number,
                            result["reason"].as_str().unwrap_or("")
                        )
                    });
                }
            }
        }
        anyhow::Ok(totals)
    })?;
    progress.finish_and_clear();
    println!("accepted {}, duplicates {}, rejected {}", totals.accepted, totals.duplicates, totals.rejected);
    Ok(())
}

/// Sends one batch, retrying throttling, server errors and broken connections with
/// exponential back-off. Records are deduplicated by eventID, so a retry stores nothing twice.
async fn send_batch(
    client: &reqwest::Client,
    credentials: &(String, String, String, String, String),
    batch: &Batch,
) -> anyhow::Result<serde_json::Value> {
    let (access_key_id, secret_access_key, region, host, url) = credentials;
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=10 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let params = trailkeeper_sigv4::SigningParams {
            access_key_id,
            secret_access_key,
            region,
            service: "cloudtrail",
            now_unix_seconds: now,
            include_content_sha256: false,
        };
        let headers = [("host", host.as_str()), ("content-type", "application/x-ndjson")];
        let signed = trailkeeper_sigv4::sign("POST", "/v1/records", "", &headers, &batch.body, &params);
        let mut request = client.post(url).header("content-type", "application/x-ndjson").body(batch.body.clone());
        for (name, value) in signed {
            request = request.header(name, value);
        }
        let retry_reason = match request.send().await {
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                let body: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
                if status.is_success() {
                    return Ok(body);
                }
                let code = body["__type"].as_str().unwrap_or("").to_owned();
                if !(status.is_server_error() || code == "ThrottlingException") {
                    bail!(
                        "{}: the server refused the batch: {} {}: {}",
                        batch.source,
                        status.as_u16(),
                        code,
                        body["message"].as_str().unwrap_or(&text)
                    );
                }
                format!("{} {}", status.as_u16(), code)
            }
            Err(error) => error.to_string(),
        };
        if attempt == 10 {
            bail!("{}: giving up after {attempt} attempts: {retry_reason}", batch.source);
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

fn read_source(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut bytes).context("cannot read stdin")?;
    } else {
        bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    }
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes.as_slice())
            .read_to_end(&mut text)
            .with_context(|| format!("{}: not valid gzip", path.display()))?;
        return Ok(text);
    }
    Ok(bytes)
}
