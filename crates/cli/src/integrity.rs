//! `trailkeeper prove-event` and `trailkeeper verify-store`: the verifiable log from a
//! user's seat.
//!
//! `prove-event` fetches an event with its inclusion proof and the signed checkpoint it is
//! proven against, fetches the Region's public key (`ListPublicKeys`, or a pinned key file),
//! and checks everything itself: the event is the one asked for, its leaf hash and the
//! inclusion path give the checkpoint's root, and the checkpoint's signature holds.
//!
//! `verify-store` checks a stopped server's data directory offline: every tree rebuilt from
//! the stored events, every altered, dropped or inserted event named, every checkpoint's
//! signature and root checked.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use serde::Deserialize;
use serde_json::{Value, json};
use trailkeeper_core::checkpoint::{hash_from_hex, hash_to_hex};
use trailkeeper_core::merkle::{Hash, leaf_hash, verify_inclusion};
use trailkeeper_core::time::parse_event_time;
use trailkeeper_server::integrity::checkpoints::SignedCheckpoint;
use trailkeeper_server::integrity::offline::{CheckpointOutcome, verify_data_dir};

#[derive(Args)]
pub struct ProveEventArgs {
    /// The eventID of the event to prove.
    #[arg(long)]
    event_id: String,
    /// The account the event belongs to [default: the caller's].
    #[arg(long)]
    account_id: Option<String>,
    /// The server [env: TRAILKEEPER_ENDPOINT_URL, then AWS_ENDPOINT_URL; default http://127.0.0.1:4600].
    #[arg(long)]
    endpoint_url: Option<String>,
    /// The Region to sign requests for [env: AWS_REGION, then AWS_DEFAULT_REGION; default us-east-1].
    #[arg(long, env = "AWS_REGION")]
    region: Option<String>,
    /// Verify with this public key (DER PKCS#1 RSAPublicKey, raw or base64) instead of the
    /// one ListPublicKeys returns.
    #[arg(long)]
    public_key: Option<PathBuf>,
    /// First ask the server to sign a checkpoint of the --region tree now (needs an admin key).
    #[arg(long)]
    sign_checkpoint: bool,
    /// How long to keep asking while the event is not yet in a tree or a checkpoint.
    #[arg(long, default_value_t = 10)]
    wait_seconds: u64,
}

#[derive(Args)]
pub struct VerifyStoreArgs {
    /// The data directory of a stopped server.
    #[arg(long)]
    data_dir: PathBuf,
}

/// The answer of `GET /v1/integrity/inclusion-proof`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InclusionAnswer {
    event_id: String,
    account_id: String,
    region: String,
    seq: u64,
    leaf_index: u64,
    tree_size: u64,
    inclusion_path: Vec<String>,
    event: String,
    checkpoint: SignedCheckpoint,
}

/// Signs and sends requests to one server, with the AWS credentials of the environment.
struct Client {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    host: String,
    access_key_id: String,
    secret_access_key: String,
}

/// A failed request: the AWS error code and message, or the transport's failure.
struct Refusal {
    status: u16,
    code: String,
    message: String,
}

impl Client {
    fn from_env(endpoint_url: Option<String>) -> anyhow::Result<Client> {
        let endpoint = endpoint_url
            .or_else(|| std::env::var("TRAILKEEPER_ENDPOINT_URL").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .unwrap_or_else(|| "http://127.0.0.1:4600".to_owned());
        let endpoint = reqwest::Url::parse(&endpoint).with_context(|| format!("invalid endpoint {endpoint}"))?;
        let host = match (endpoint.host_str(), endpoint.port()) {
            (Some(name), Some(port)) => format!("{name}:{port}"),
            (Some(name), None) => name.to_owned(),
            _ => bail!("invalid endpoint {endpoint}"),
        };
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .context("cannot create the HTTP client")?;
        Ok(Client {
            http,
            endpoint,
            host,
            access_key_id: std::env::var("AWS_ACCESS_KEY_ID").context("AWS_ACCESS_KEY_ID is not set")?,
            secret_access_key: std::env::var("AWS_SECRET_ACCESS_KEY").context("AWS_SECRET_ACCESS_KEY is not set")?,
        })
    }

    /// Sends a signed request; `Ok(Err(..))` when the server answered with an error.
    async fn send(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        region: &str,
        extra_headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<Result<Value, Refusal>> {
        let mut url = self.endpoint.join(path).with_context(|| format!("invalid path {path}"))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs() as i64);
        let params = trailkeeper_sigv4::SigningParams {
            access_key_id: &self.access_key_id,
            secret_access_key: &self.secret_access_key,
            region,
            service: "cloudtrail",
            now_unix_seconds: now,
            include_content_sha256: false,
        };
        let mut headers = vec![("host", self.host.as_str())];
        headers.extend_from_slice(extra_headers);
        let signed = trailkeeper_sigv4::sign(method, url.path(), url.query().unwrap_or(""), &headers, body, &params);
        let method = reqwest::Method::from_bytes(method.as_bytes()).context("invalid method")?;
        let mut request = self.http.request(method, url.clone()).body(body.to_vec());
        for (name, value) in extra_headers {
            request = request.header(*name, *value);
        }
        for (name, value) in signed {
            request = request.header(name, value);
        }
        let response = request.send().await.with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        let text = response.text().await.context("cannot read the answer")?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(Ok(body));
        }
        Ok(Err(Refusal {
            status: status.as_u16(),
            code: body["__type"].as_str().unwrap_or_default().to_owned(),
            message: body["message"].as_str().map_or(text, str::to_owned),
        }))
    }
}

pub fn prove_event(args: ProveEventArgs) -> anyhow::Result<()> {
    let region = args
        .region
        .clone()
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .unwrap_or_else(|| "us-east-1".to_owned());
    let client = Client::from_env(args.endpoint_url.clone())?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(prove(&client, &args, &region))
}

async fn prove(client: &Client, args: &ProveEventArgs, region: &str) -> anyhow::Result<()> {
    let mut query = vec![("eventId", args.event_id.as_str())];
    if let Some(account) = &args.account_id {
        query.push(("accountId", account.as_str()));
    }
    if args.sign_checkpoint {
        let account_query: Vec<(&str, &str)> = query.iter().filter(|(name, _)| *name == "accountId").copied().collect();
        match client.send("POST", "/v1/integrity/checkpoint", &account_query, region, &[], b"").await? {
            Ok(answer) => println!(
                "signed a checkpoint of {region}: size {}",
                answer["checkpoint"]["treeSize"].as_u64().unwrap_or_default()
            ),
            Err(refusal) => bail!("cannot sign a checkpoint: {} {}: {}", refusal.status, refusal.code, refusal.message),
        }
    }

    // An event not yet in a tree or a checkpoint soon will be: ask again until the wait is over.
    let deadline = Instant::now() + Duration::from_secs(args.wait_seconds);
    let answer = loop {
        match client.send("GET", "/v1/integrity/inclusion-proof", &query, region, &[], b"").await? {
            Ok(answer) => break answer,
            Err(refusal)
                if matches!(
                    refusal.code.as_str(),
                    "EventNotYetInTreeException" | "EventNotYetCheckpointedException"
                ) && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(refusal) => bail!("cannot get the proof: {} {}: {}", refusal.status, refusal.code, refusal.message),
        }
    };
    let answer: InclusionAnswer =
        serde_json::from_value(answer).context("the proof answer is not what was expected")?;
    let (public_key, key_source) = public_key(client, args, &answer.checkpoint).await?;

    let verdict = check_inclusion(&answer, &args.event_id, &public_key);
    let checkpoint = &answer.checkpoint;
    println!("event {}", answer.event_id);
    println!(
        "  tree        {}/{}, leaf {} of {} (log position {})",
        answer.account_id, answer.region, answer.leaf_index, answer.tree_size, answer.seq
    );
    println!(
        "  checkpoint  size {}, root {}, signed {} by key {} ({key_source})",
        checkpoint.tree_size, checkpoint.root_hash, checkpoint.time, checkpoint.key_fingerprint
    );
    match verdict {
        Ok(path_length) => {
            println!("  signature   valid (RSA PKCS#1 v1.5, SHA-256)");
            println!(
                "  proof       valid: the event's leaf hash and {path_length} path hashes give the checkpoint's root"
            );
            println!("VERIFIED");
            Ok(())
        }
        Err(reason) => {
            println!("NOT VERIFIED: {reason}");
            bail!("event {} could not be verified: {reason}", args.event_id)
        }
    }
}

/// The key to check the checkpoint with, and where it came from.
async fn public_key(
    client: &Client,
    args: &ProveEventArgs,
    checkpoint: &SignedCheckpoint,
) -> anyhow::Result<(Vec<u8>, String)> {
    if let Some(path) = &args.public_key {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let der = match STANDARD.decode(bytes.trim_ascii()) {
            Ok(decoded) => decoded,
            Err(_) => bytes,
        };
        return Ok((der, format!("key file {}", path.display())));
    }
    let time = parse_event_time(&checkpoint.time)
        .map_err(|_| anyhow::anyhow!("invalid checkpoint time {}", checkpoint.time))?;
    let seconds = time / 1000;
    let body = json!({ "StartTime": seconds, "EndTime": seconds + 1 }).to_string();
    let target = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.ListPublicKeys";
    let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target)];
    let answer = match client.send("POST", "/", &[], &checkpoint.region, &headers, body.as_bytes()).await? {
        Ok(answer) => answer,
        Err(refusal) => bail!("ListPublicKeys failed: {} {}: {}", refusal.status, refusal.code, refusal.message),
    };
    for key in answer["PublicKeyList"].as_array().into_iter().flatten() {
        if key["Fingerprint"].as_str() != Some(checkpoint.key_fingerprint.as_str()) {
            continue;
        }
        // A JSON-protocol blob: the DER key as base64 text.
        let der = STANDARD.decode(key["Value"].as_str().unwrap_or_default()).context("the key is not base64")?;
        return Ok((der, format!("ListPublicKeys in {}", checkpoint.region)));
    }
    bail!("ListPublicKeys in {} has no key with fingerprint {}", checkpoint.region, checkpoint.key_fingerprint)
}

/// Every check of an inclusion answer; the number of path hashes when all pass.
fn check_inclusion(answer: &InclusionAnswer, event_id: &str, public_key: &[u8]) -> Result<usize, String> {
    let event: Value =
        serde_json::from_str(&answer.event).map_err(|error| format!("the event is not JSON: {error}"))?;
    if answer.event_id != event_id || event["eventID"].as_str() != Some(event_id) {
        return Err(format!("the server sent another event ({:?}) than {event_id}", event["eventID"]));
    }
    for (field, expected) in [("recipientAccountId", &answer.account_id), ("awsRegion", &answer.region)] {
        if event[field].as_str().is_some_and(|value| value != expected) {
            return Err(format!("the event's {field} is not the tree's {expected}"));
        }
    }
    let statement = answer.checkpoint.verify(public_key).map_err(|error| format!("checkpoint: {error}"))?;
    if statement.account_id != answer.account_id || statement.region != answer.region {
        return Err("the checkpoint is of another tree than the event's".to_owned());
    }
    if statement.tree_size != answer.tree_size {
        return Err(format!(
            "the proof is for size {}, the checkpoint for size {}",
            answer.tree_size, statement.tree_size
        ));
    }
    let path: Vec<Hash> = answer
        .inclusion_path
        .iter()
        .map(|hex| hash_from_hex(hex).ok_or_else(|| format!("{hex:?} is not a hash")))
        .collect::<Result<_, _>>()?;
    let leaf = leaf_hash(answer.event.as_bytes());
    verify_inclusion(&leaf, answer.leaf_index, statement.tree_size, &path, &statement.root_hash)
        .map_err(|error| format!("inclusion proof: {error}"))?;
    Ok(path.len())
}

pub fn verify_store(args: VerifyStoreArgs) -> anyhow::Result<()> {
    if !args.data_dir.join("merkle").is_dir() {
        bail!(
            "{} has no Merkle trees (no merkle/ folder): is it a Trailkeeper data directory?",
            args.data_dir.display()
        );
    }
    let report =
        verify_data_dir(&args.data_dir).with_context(|| format!("cannot verify {}", args.data_dir.display()))?;
    println!("verify-store {}: the trees reach log position {}", args.data_dir.display(), report.store.through_seq);
    let mut findings = 0usize;
    for tree in &report.store.trees {
        println!(
            "tree {}: {} leaves; {} match their events, {} expired by retention, {} newer events not in the tree yet",
            tree.id, tree.leaves, tree.matched, tree.expired, tree.pending
        );
        let checks = report.checkpoints.get(&tree.id).map(Vec::as_slice).unwrap_or_default();
        let failed: Vec<_> = checks.iter().filter(|check| check.outcome != CheckpointOutcome::Valid).collect();
        match checks.last() {
            None => println!("  no checkpoint signed yet"),
            Some(latest) => println!(
                "  {} checkpoints, {} valid; latest: size {}, signed {} by key {}",
                checks.len(),
                checks.len() - failed.len(),
                latest.checkpoint.tree_size,
                latest.checkpoint.time,
                latest.checkpoint.key_fingerprint
            ),
        }
        for check in failed {
            findings += 1;
            let checkpoint = &check.checkpoint;
            let what = match &check.outcome {
                CheckpointOutcome::Valid => continue,
                CheckpointOutcome::UnknownKey => {
                    format!("no signing key of {} has fingerprint {}", checkpoint.region, checkpoint.key_fingerprint)
                }
                CheckpointOutcome::Invalid(error) => error.to_string(),
                CheckpointOutcome::RootMismatch { rebuilt } => {
                    format!(
                        "it signs root {}, but the tree rebuilt from the stored events has root {}",
                        checkpoint.root_hash,
                        hash_to_hex(rebuilt)
                    )
                }
                CheckpointOutcome::BeyondStore { rebuilt_size } => {
                    format!("it covers {} leaves, but the stored events make only {rebuilt_size}", checkpoint.tree_size)
                }
            };
            println!("  CHECKPOINT size {} signed {}: {what}", checkpoint.tree_size, checkpoint.time);
        }
        for finding in &tree.findings {
            findings += 1;
            println!("  {}", with_loud_kind(&finding.to_string()));
        }
    }
    for (tree, _) in report.checkpoints.iter().filter(|(tree, _)| !report.store.trees.iter().any(|t| &t.id == *tree)) {
        findings += 1;
        println!("tree {tree}: checkpoints were signed, but the store has no such tree");
    }
    if findings > 0 || report.has_findings() {
        bail!("{findings} findings: the stored events do not match their Merkle trees and checkpoints");
    }
    println!("OK: every stored event matches its tree, and every checkpoint is signed and matches");
    Ok(())
}

/// A finding as `ALTERED: …`: its kind in capitals, then the details.
fn with_loud_kind(finding: &str) -> String {
    match finding.split_once(':') {
        Some((kind, rest)) => format!("{}:{rest}", kind.to_uppercase()),
        None => finding.to_owned(),
    }
}
