//! `ingest`: durable ingest throughput and acknowledgement latency of `POST /v1/records`.
//!
//! Bodies are generated, compressed and signed before the clock starts, so the figure is
//! the server's, not the generator's. Throughput counts acknowledged (`accepted`) events
//! over the wall clock from the first send to the last acknowledgement. With `--rate` the
//! batches go out open-loop on a fixed schedule and each latency runs from the moment its
//! batch was due (see `trailkeeper_bench::pacing`).

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Deserialize;
use trailkeeper_bench::pacing::Schedule;
use trailkeeper_bench::stats::LatencySummary;

use super::GeneratorArgs;
use super::cpu::{CpuSample, RunCpu};
use super::report::Reporter;
use super::signing::{Credentials, host_header, sign_post};

/// Signatures are made before the run; servers refuse them after 15 minutes of skew.
const LONGEST_PACED_RUN: Duration = Duration::from_secs(600);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Trailkeeper's endpoint.
    #[arg(long, env = "TRAILKEEPER_ENDPOINT", default_value = "http://127.0.0.1:4600")]
    endpoint: reqwest::Url,
    /// Events per run.
    #[arg(long, default_value_t = 1_000_000)]
    count: u64,
    /// Requests in flight.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Events per request.
    #[arg(long, default_value_t = 1_000)]
    batch: u64,
    /// Send open-loop at this many events per second instead of as fast as acknowledged.
    #[arg(long)]
    rate: Option<f64>,
    /// Gzip the request bodies (Content-Encoding: gzip).
    #[arg(long)]
    gzip: bool,
    /// Runs; each sends new events, continuing the generator's sequence.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// The server's process ID, on this machine: each run then also reports the server's
    /// CPU per event, by thread, and how idle the machine was (Linux `/proc`).
    #[arg(long)]
    server_pid: Option<u32>,
    #[command(flatten)]
    generator: GeneratorArgs,
}

/// One request, ready to send.
struct Batch {
    events: u64,
    body: bytes::Bytes,
    headers: Vec<(String, String)>,
}

/// `POST /v1/records`'s answer; `results` is not needed here.
#[derive(Debug, Deserialize)]
struct IngestResponse {
    accepted: u64,
    duplicates: u64,
    rejected: u64,
}

/// What one acknowledged request reported.
struct Ack {
    latency: Duration,
    accepted: u64,
    duplicates: u64,
    /// Times the server pushed back with ThrottlingException before accepting the batch.
    throttled: u64,
}

struct RunResult {
    events_per_second: f64,
    megabytes_per_second: f64,
    latency: LatencySummary,
    duplicates: u64,
    throttled: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.count > 0 && args.batch > 0 && args.concurrency > 0,
        "--count, --batch and --concurrency must be positive"
    );
    let schedule = match args.rate {
        Some(rate) => Some(Schedule::new(args.batch, rate).context("--rate must be a positive number")?),
        None => None,
    };
    if let Some(rate) = args.rate
        && Duration::from_secs_f64(args.count as f64 / rate) > LONGEST_PACED_RUN
    {
        bail!("a paced run of {} events at {rate}/s outlasts the signatures made before it; lower --count", args.count);
    }
    let reporter = Reporter::new();
    reporter.print_machine();
    let credentials = Credentials::from_env()?;
    let url = args.endpoint.join("/v1/records").context("building the ingest URL")?;
    let host = host_header(&url)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .tcp_nodelay(true)
        .build()
        .context("building the HTTP client")?;
    let mut generator = args.generator.generator()?;

    let mut results = Vec::with_capacity(args.repeat);
    for run in 1..=args.repeat {
        let first_sequence = generator.sequence();
        let prepared = Instant::now();
        let batches = prepare(&mut generator, &args, &credentials, &host)?;
        let body_bytes: u64 = batches.iter().map(|batch| batch.body.len() as u64).sum();
        println!(
            "run {run}/{}: {} events (sequence {first_sequence}..{}) in {} requests, {body_bytes} body bytes, prepared in {:.1} s",
            args.repeat,
            args.count,
            generator.sequence(),
            batches.len(),
            prepared.elapsed().as_secs_f64()
        );
        let cpu_before = args.server_pid.map(|pid| CpuSample::read(pid).map(|sample| (pid, sample))).transpose()?;
        let result = send_all(&client, &url, batches, args.concurrency, schedule, body_bytes).await?;
        let cpu = cpu_before
            .map(|(pid, before)| anyhow::Ok(RunCpu::between(&before, &CpuSample::read(pid)?, args.count)))
            .transpose()?;
        println!(
            "run {run}: {:.0} events/s, {:.1} MB/s, ack p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
            result.events_per_second,
            result.megabytes_per_second,
            result.latency.p50.as_secs_f64() * 1000.0,
            result.latency.p99.as_secs_f64() * 1000.0,
            result.latency.max.as_secs_f64() * 1000.0
        );
        if let Some(cpu) = &cpu {
            println!("run {run}: {cpu}");
        }
        if result.throttled > 0 {
            println!(
                "run {run}: the server pushed back {} times (ThrottlingException), retried with back-off",
                result.throttled
            );
        }
        if result.duplicates > 0 {
            println!(
                "warning: {} events were duplicates of events already stored (same --seed as an earlier run?)",
                result.duplicates
            );
        }
        results.push((result, cpu));
    }

    let name = if schedule.is_some() { "ingest_paced" } else { "ingest" };
    if let Some(rate) = args.rate {
        reporter.figure(name, "offered_events_per_second", "events/s", &vec![rate; results.len()]);
    }
    reporter.figure(
        name,
        "events_per_second",
        "events/s",
        &results.iter().map(|(r, _)| r.events_per_second).collect::<Vec<_>>(),
    );
    reporter.figure(
        name,
        "body_megabytes_per_second",
        "MB/s",
        &results.iter().map(|(r, _)| r.megabytes_per_second).collect::<Vec<_>>(),
    );
    reporter.latencies(name, "ack_latency", &results.iter().map(|(r, _)| r.latency).collect::<Vec<_>>());
    let cpu: Vec<f64> = results.iter().filter_map(|(_, cpu)| cpu.as_ref()).map(|cpu| cpu.per_event_us).collect();
    reporter.figure(name, "server_cpu_per_event", "µs", &cpu);
    Ok(())
}

/// Generates, encodes and signs the next `--count` events.
fn prepare(
    generator: &mut trailkeeper_bench::Generator,
    args: &Args,
    credentials: &Credentials,
    host: &str,
) -> anyhow::Result<Vec<Batch>> {
    let url = args.endpoint.join("/v1/records")?;
    let mut batches = Vec::new();
    let mut remaining = args.count;
    let mut text = String::new();
    while remaining > 0 {
        let events = remaining.min(args.batch);
        remaining -= events;
        text.clear();
        for _ in 0..events {
            generator.write_next_record(&mut text);
            text.push('\n');
        }
        let body = if args.gzip {
            let mut encoder = GzEncoder::new(Vec::with_capacity(text.len() / 6), Compression::fast());
            encoder.write_all(text.as_bytes())?;
            encoder.finish()?
        } else {
            text.as_bytes().to_vec()
        };
        let mut signed: Vec<(&str, &str)> = vec![("host", host), ("content-type", "application/x-ndjson")];
        if args.gzip {
            signed.push(("content-encoding", "gzip"));
        }
        let headers = sign_post(credentials, &url, &signed, &body);
        batches.push(Batch { events, body: body.into(), headers });
    }
    Ok(batches)
}

async fn send_all(
    client: &reqwest::Client,
    url: &reqwest::Url,
    batches: Vec<Batch>,
    concurrency: usize,
    schedule: Option<Schedule>,
    body_bytes: u64,
) -> anyhow::Result<RunResult> {
    let total = batches.len();
    // Workers take the next batch in order; the lock is held only to pop one.
    let queue = Arc::new(Mutex::new(batches.into_iter().enumerate()));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(total) {
        let queue = Arc::clone(&queue);
        let client = client.clone();
        let url = url.clone();
        workers.spawn(async move {
            let mut acks = Vec::new();
            loop {
                let next = queue.lock().map_err(|_| anyhow::anyhow!("a worker panicked"))?.next();
                let Some((index, batch)) = next else { break };
                let due = match schedule {
                    Some(schedule) => {
                        let due = started + schedule.offset(index as u64);
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    None => Instant::now(),
                };
                let ack = send(&client, &url, batch).await.with_context(|| format!("request {index}"))?;
                acks.push(Ack { latency: due.elapsed(), ..ack });
            }
            anyhow::Ok(acks)
        });
    }
    let mut acks = Vec::with_capacity(total);
    while let Some(joined) = workers.join_next().await {
        acks.extend(joined.context("an ingest worker panicked")??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let accepted: u64 = acks.iter().map(|ack| ack.accepted).sum();
    let duplicates = acks.iter().map(|ack| ack.duplicates).sum();
    let throttled = acks.iter().map(|ack| ack.throttled).sum();
    let latency =
        LatencySummary::from_samples(acks.iter().map(|ack| ack.latency).collect()).context("no requests were sent")?;
    Ok(RunResult {
        events_per_second: accepted as f64 / elapsed,
        megabytes_per_second: body_bytes as f64 / elapsed / 1e6,
        latency,
        duplicates,
        throttled,
    })
}

/// Sends one batch, retrying while the server pushes back (ThrottlingException) as the
/// AWS SDKs do; the latency then includes the back-off. Any other failure, or any
/// rejected record, is an error.
async fn send(client: &reqwest::Client, url: &reqwest::Url, batch: Batch) -> anyhow::Result<Ack> {
    let sent = Instant::now();
    let mut throttled = 0u64;
    let mut backoff = Duration::from_millis(20);
    let (status, body) = loop {
        let mut request = client.post(url.clone());
        for (name, value) in &batch.headers {
            request = request.header(name, value);
        }
        let response = request.body(batch.body.clone()).send().await.context("sending")?;
        let status = response.status();
        let body = response.bytes().await.context("reading the response")?;
        let is_throttling = status.as_u16() == 400 && body.windows(19).any(|window| window == b"ThrottlingException");
        if !is_throttling || throttled >= 100 {
            break (status, body);
        }
        throttled += 1;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    };
    if !status.is_success() {
        bail!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(2000)]));
    }
    let answer: IngestResponse = serde_json::from_slice(&body).context("parsing the ingest response")?;
    if answer.rejected > 0 {
        bail!(
            "{} of {} records rejected: {}",
            answer.rejected,
            batch.events,
            String::from_utf8_lossy(&body[..body.len().min(2000)])
        );
    }
    if answer.accepted + answer.duplicates != batch.events {
        bail!("sent {} records but {} were acknowledged", batch.events, answer.accepted + answer.duplicates);
    }
    Ok(Ack { latency: sent.elapsed(), accepted: answer.accepted, duplicates: answer.duplicates, throttled })
}
