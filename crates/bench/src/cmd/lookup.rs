//! `lookup`: LookupEvents throughput and latency, with lookup values drawn from the same
//! distributions as the ingested events (give the same generator flags as the `ingest`).
//!
//! Closed-loop by default: `--concurrency` clients each send the next request when the
//! previous one is answered. With `--rate` requests go out open-loop on a fixed schedule
//! and each latency runs from the moment the request was due.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::json;
use trailkeeper_bench::Generator;
use trailkeeper_bench::pacing::Schedule;
use trailkeeper_bench::stats::LatencySummary;

use super::report::Reporter;
use super::signing::{Credentials, host_header, sign_post};
use super::{GeneratorArgs, LoadArgs};

const TARGET: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents";
/// Distinct lookup values drawn before the run and cycled through.
const VALUE_POOL: usize = 100_000;
/// One response in this many is parsed to count its events; parsing them all would cost
/// the client more CPU than the server spends answering.
const PARSE_EVERY: u64 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Attribute {
    #[value(name = "Username")]
    Username,
    #[value(name = "EventName")]
    EventName,
    #[value(name = "ResourceName")]
    ResourceName,
    #[value(name = "AccessKeyId")]
    AccessKeyId,
    #[value(name = "EventId")]
    EventId,
    /// No lookup attribute: the newest events.
    #[value(name = "none")]
    None,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    load: LoadArgs,
    /// Send open-loop at this many requests per second.
    #[arg(long)]
    rate: Option<f64>,
    /// The lookup attribute to query by.
    #[arg(long, value_enum, default_value = "Username")]
    attribute: Attribute,
    /// How many events the ingest stored (EventId values are drawn among them).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// MaxResults of each request.
    #[arg(long, default_value_t = 50)]
    max_results: u32,
    /// Also print each second's latencies (by when requests were due), to see when a
    /// run's slow requests happened.
    #[arg(long)]
    timeline: bool,
    #[command(flatten)]
    generator: GeneratorArgs,
}

#[derive(Deserialize)]
struct LookupEventsResponse {
    #[serde(rename = "Events", default)]
    events: Vec<IgnoredAny>,
}

struct RunResult {
    requests_per_second: f64,
    latency: LatencySummary,
    /// Latencies by the second of the run their request was due in.
    per_second: Vec<Vec<Duration>>,
    started_at: SystemTime,
    sampled_responses: u64,
    sampled_events: u64,
    empty_responses: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    args.load.check()?;
    let schedule = match args.rate {
        Some(rate) => Some(Schedule::new(1, rate).context("--rate must be a positive number")?),
        None => None,
    };
    let reporter = Reporter::new();
    reporter.print_machine();
    let credentials = Arc::new(Credentials::from_env()?);
    let mut generator = args.generator.generator()?;
    let bodies: Arc<Vec<String>> = Arc::new((0..VALUE_POOL).map(|_| request_body(&mut generator, &args)).collect());
    let client = args.load.client()?;
    let duration = args.load.run_duration();

    let mut results = Vec::with_capacity(args.load.repeat);
    for run in 1..=args.load.repeat {
        let result = run_once(&client, &args, &credentials, &bodies, duration, schedule).await?;
        println!(
            "run {run}/{}: {:.0} requests/s, p50 {:.2} ms p99 {:.2} ms max {:.2} ms, {:.1} events per response, {:.1}% empty (sampled)",
            args.load.repeat,
            result.requests_per_second,
            result.latency.p50.as_secs_f64() * 1000.0,
            result.latency.p99.as_secs_f64() * 1000.0,
            result.latency.max.as_secs_f64() * 1000.0,
            result.sampled_events as f64 / result.sampled_responses.max(1) as f64,
            result.empty_responses as f64 * 100.0 / result.sampled_responses.max(1) as f64
        );
        if args.timeline {
            print_timeline(result.started_at, &result.per_second);
        }
        results.push(result);
    }
    let name = "lookup";
    if let Some(rate) = args.rate {
        reporter.figure(name, "offered_requests_per_second", "requests/s", &vec![rate; results.len()]);
    }
    reporter.figure(
        name,
        "requests_per_second",
        "requests/s",
        &results.iter().map(|r| r.requests_per_second).collect::<Vec<_>>(),
    );
    reporter.latencies(name, "latency", &results.iter().map(|r| r.latency).collect::<Vec<_>>());
    reporter.figure(
        name,
        "events_per_response",
        "events",
        &results.iter().map(|r| r.sampled_events as f64 / r.sampled_responses.max(1) as f64).collect::<Vec<_>>(),
    );
    Ok(())
}

fn print_timeline(started_at: SystemTime, per_second: &[Vec<Duration>]) {
    let ms = |latency: Duration| latency.as_secs_f64() * 1000.0;
    let unix = started_at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
    println!("  timeline: second 0 began at {unix:.3} s after the Unix epoch");
    for (second, latencies) in per_second.iter().enumerate() {
        if let Some(summary) = LatencySummary::from_samples(latencies.clone()) {
            println!(
                "  second {second}: {} requests, p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
                summary.count,
                ms(summary.p50),
                ms(summary.p99),
                ms(summary.max)
            );
        }
    }
}

fn request_body(generator: &mut Generator, args: &Args) -> String {
    let value = match args.attribute {
        Attribute::Username => generator.sample_username(),
        Attribute::EventName => generator.sample_event_name().to_owned(),
        Attribute::ResourceName => generator.sample_resource_name(),
        Attribute::AccessKeyId => generator.sample_access_key_id(),
        Attribute::EventId => generator.sample_event_id(args.events),
        Attribute::None => return json!({ "MaxResults": args.max_results }).to_string(),
    };
    let key = match args.attribute {
        Attribute::Username => "Username",
        Attribute::EventName => "EventName",
        Attribute::ResourceName => "ResourceName",
        Attribute::AccessKeyId => "AccessKeyId",
        Attribute::EventId | Attribute::None => "EventId",
    };
    json!({
        "LookupAttributes": [{ "AttributeKey": key, "AttributeValue": value }],
        "MaxResults": args.max_results,
    })
    .to_string()
}

async fn run_once(
    client: &reqwest::Client,
    args: &Args,
    credentials: &Arc<Credentials>,
    bodies: &Arc<Vec<String>>,
    duration: Duration,
    schedule: Option<Schedule>,
) -> anyhow::Result<RunResult> {
    let url = args.load.endpoint.join("/").context("building the LookupEvents URL")?;
    let host = Arc::new(host_header(&url)?);
    let next = Arc::new(AtomicU64::new(0));
    let planned = schedule.map(|schedule| schedule.requests_within(duration));
    let started = Instant::now();
    let started_at = SystemTime::now();
    let deadline = started + duration;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.load.concurrency {
        let (client, url, host, next) = (client.clone(), url.clone(), Arc::clone(&host), Arc::clone(&next));
        let (credentials, bodies) = (Arc::clone(credentials), Arc::clone(bodies));
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let (mut sampled_responses, mut sampled_events, mut empty_responses) = (0u64, 0u64, 0u64);
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let due = match (schedule, planned) {
                    (Some(schedule), Some(planned)) => {
                        if index >= planned {
                            break;
                        }
                        let due = started + schedule.offset(index);
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    _ => {
                        let now = Instant::now();
                        if now >= deadline {
                            break;
                        }
                        now
                    }
                };
                let body = &bodies[(index % bodies.len() as u64) as usize];
                let signed =
                    [("host", host.as_str()), ("content-type", "application/x-amz-json-1.1"), ("x-amz-target", TARGET)];
                let mut request = client.post(url.clone());
                for (name, value) in sign_post(&credentials, &url, &signed, body.as_bytes()) {
                    request = request.header(name, value);
                }
                let response = request.body(body.clone()).send().await.with_context(|| format!("request {index}"))?;
                let status = response.status();
                let answer = response.bytes().await.with_context(|| format!("reading response {index}"))?;
                latencies.push((due - started, due.elapsed()));
                if !status.is_success() {
                    bail!(
                        "request {index}: HTTP {status}: {}",
                        String::from_utf8_lossy(&answer[..answer.len().min(2000)])
                    );
                }
                if index % PARSE_EVERY == 0 {
                    let parsed: LookupEventsResponse =
                        serde_json::from_slice(&answer).with_context(|| format!("parsing response {index}"))?;
                    sampled_responses += 1;
                    sampled_events += parsed.events.len() as u64;
                    empty_responses += u64::from(parsed.events.is_empty());
                }
            }
            anyhow::Ok((latencies, sampled_responses, sampled_events, empty_responses))
        });
    }
    let mut latencies = Vec::new();
    let (mut sampled_responses, mut sampled_events, mut empty_responses) = (0, 0, 0);
    while let Some(joined) = workers.join_next().await {
        let (worker_latencies, responses, events, empty) = joined.context("a lookup worker panicked")??;
        latencies.extend(worker_latencies);
        sampled_responses += responses;
        sampled_events += events;
        empty_responses += empty;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let completed = latencies.len() as f64;
    let mut per_second: Vec<Vec<Duration>> = Vec::new();
    for &(offset, latency) in &latencies {
        let second = offset.as_secs() as usize;
        if per_second.len() <= second {
            per_second.resize_with(second + 1, Vec::new);
        }
        per_second[second].push(latency);
    }
    let latency = LatencySummary::from_samples(latencies.into_iter().map(|(_, latency)| latency).collect())
        .context("no requests were sent")?;
    Ok(RunResult {
        requests_per_second: completed / elapsed,
        latency,
        per_second,
        started_at,
        sampled_responses,
        sampled_events,
        empty_responses,
    })
}
