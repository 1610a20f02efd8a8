//! `prove`: latency of `GET /v1/integrity/inclusion-proof` over HTTP, for eventIDs drawn
//! among the stored events (give the same generator flags as the `ingest`), closed-loop.
//!
//! Before the clock starts, each drawn eventID is matched with its account (the API looks
//! an event up in one account, and the generator does not say whose an event is), and a
//! checkpoint is signed in every Region, so that every event is provable. Each request
//! finds the event, reads its JSON, computes the proof against the tree's latest
//! checkpoint and is audited, as any client's would be.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context as _, bail};
use serde_json::Value;
use trailkeeper_bench::stats::LatencySummary;

use super::report::Reporter;
use super::signing::{Credentials, REGION, host_header, sign_request};
use super::{GeneratorArgs, LoadArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    load: LoadArgs,
    /// How many events the ingest stored (eventIDs are drawn among them).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Distinct eventIDs drawn before the run and cycled through.
    #[arg(long, default_value_t = 2_000)]
    pool: usize,
    #[command(flatten)]
    generator: GeneratorArgs,
}

/// One signed-for request: the URL with its query.
fn proof_url(endpoint: &reqwest::Url, account: &str, event_id: &str) -> anyhow::Result<reqwest::Url> {
    let mut url = endpoint.join("/v1/integrity/inclusion-proof").context("building the proof URL")?;
    url.query_pairs_mut().append_pair("accountId", account).append_pair("eventId", event_id);
    Ok(url)
}

async fn send(
    client: &reqwest::Client,
    credentials: &Credentials,
    region: &str,
    method: &str,
    url: &reqwest::Url,
    host: &str,
) -> anyhow::Result<(reqwest::StatusCode, bytes::Bytes)> {
    let mut request = client.request(reqwest::Method::from_bytes(method.as_bytes()).context("method")?, url.clone());
    for (name, value) in sign_request(credentials, region, method, url, &[("host", host)], b"") {
        request = request.header(name, value);
    }
    let response = request.send().await.with_context(|| format!("{method} {url}"))?;
    let status = response.status();
    Ok((status, response.bytes().await.context("reading an answer")?))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    args.load.check()?;
    anyhow::ensure!(args.pool > 0, "--pool must be positive");
    let reporter = Reporter::new();
    reporter.print_machine();
    let credentials = Arc::new(Credentials::from_env()?);
    let client = args.load.client()?;
    let host = Arc::new(host_header(&args.load.endpoint)?);

    // Checkpoints first: every stored event must be in one.
    for region in &args.generator.regions {
        for account in &args.generator.accounts {
            let mut url = args.load.endpoint.join("/v1/integrity/checkpoint").context("building the checkpoint URL")?;
            url.query_pairs_mut().append_pair("accountId", account);
            // Signed for the Region whose tree is checkpointed.
            let (status, body) = send(&client, &credentials, region, "POST", &url, &host).await?;
            if !status.is_success() && !String::from_utf8_lossy(&body).contains("ResourceNotFoundException") {
                bail!(
                    "signing a checkpoint of {account} in {region}: HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
        }
    }

    let mut generator = args.generator.generator()?;
    let mut urls = Vec::with_capacity(args.pool);
    let mut unmatched = 0usize;
    while urls.len() < args.pool {
        let event_id = generator.sample_event_id(args.events);
        let mut found = None;
        for account in &args.generator.accounts {
            let url = proof_url(&args.load.endpoint, account, &event_id)?;
            let (status, body) = send(&client, &credentials, REGION, "GET", &url, &host).await?;
            if status.is_success() {
                found = Some(url);
                break;
            }
            let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if answer["__type"] != "EventNotFoundException" {
                bail!("proving {event_id} in {account}: HTTP {status}: {}", String::from_utf8_lossy(&body));
            }
        }
        match found {
            Some(url) => urls.push(url),
            None => {
                unmatched += 1;
                anyhow::ensure!(
                    unmatched < args.pool,
                    "most drawn eventIDs are not stored: check --events and the generator flags"
                );
            }
        }
    }
    println!("{} eventIDs matched with their accounts ({unmatched} not stored)", urls.len());

    let urls = Arc::new(urls);
    let duration = args.load.run_duration();
    let mut runs = Vec::with_capacity(args.load.repeat);
    let mut rates = Vec::with_capacity(args.load.repeat);
    for run in 1..=args.load.repeat {
        let next = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let deadline = started + duration;
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..args.load.concurrency {
            let (client, host, next, urls, credentials) =
                (client.clone(), Arc::clone(&host), Arc::clone(&next), Arc::clone(&urls), Arc::clone(&credentials));
            workers.spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let url = &urls[(index % urls.len() as u64) as usize];
                    let sent = Instant::now();
                    let (status, body) = send(&client, &credentials, REGION, "GET", url, &host).await?;
                    latencies.push(sent.elapsed());
                    if !status.is_success() {
                        bail!("{url}: HTTP {status}: {}", String::from_utf8_lossy(&body));
                    }
                }
                anyhow::Ok(latencies)
            });
        }
        let mut latencies = Vec::new();
        while let Some(joined) = workers.join_next().await {
            latencies.extend(joined.context("a proof worker panicked")??);
        }
        let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
        let summary = LatencySummary::from_samples(latencies).context("no requests were sent")?;
        println!(
            "run {run}/{}: {rate:.0} proofs/s, p50 {:.2} ms p90 {:.2} ms p99 {:.2} ms max {:.2} ms",
            args.load.repeat,
            summary.p50.as_secs_f64() * 1000.0,
            summary.p90.as_secs_f64() * 1000.0,
            summary.p99.as_secs_f64() * 1000.0,
            summary.max.as_secs_f64() * 1000.0
        );
        runs.push(summary);
        rates.push(rate);
    }
    reporter.figure("prove", "proofs_per_second", "requests/s", &rates);
    reporter.latencies("prove", "latency", &runs);
    Ok(())
}
