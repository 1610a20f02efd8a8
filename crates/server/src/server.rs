//! Opening the server's state and running it: the accept loop (plain or TLS), the
//! background tasks, and graceful shutdown on one cancellation token.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rand::RngCore;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use trailkeeper_core::time::format_event_time;
use trailkeeper_store::merkle::{MerkleOptions, MerkleTrees};
use trailkeeper_store::{EventLog, LogOptions, StoreError};

use crate::api::{self, ConnectionInfo, TlsInfo, now_ms};
use crate::audit;
use crate::config::{Config, TlsPaths};
use crate::delivery::{self, Deliveries};
use crate::external_bucket::{ExternalBucketError, ExternalBuckets};
use crate::identity::{self, Identities, RootCredentials, RootOrigin};
use crate::integrity::{self, checkpoints::Checkpoints};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::s3::BucketStore;
use crate::signing::SigningKeys;
use crate::sns;
use crate::state::{AppState, Shared};
use crate::trails::Trails;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    #[error("cannot open the event log: {0}")]
    Store(#[from] StoreError),
    #[error("cannot open the Merkle trees or their checkpoints: {0}")]
    Merkle(StoreError),
    #[error("cannot open the bucket store: {0}")]
    Buckets(StoreError),
    #[error("cannot read or write {path}: {detail}")]
    File { path: String, detail: String },
    #[error("invalid TLS certificate or key: {0}")]
    Tls(String),
    #[error(transparent)]
    ExternalBucket(#[from] ExternalBucketError),
}

/// The opened state, and how the root credentials came to be (so `serve` can print
/// newly generated ones once).
pub struct Opened {
    pub state: AppState,
    pub root: RootCredentials,
    pub root_origin: RootOrigin,
}

/// Opens everything the server needs under the configured data directory.
pub fn open(config: Config) -> Result<Opened, ServerError> {
    let data_dir = config.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .map_err(|source| ServerError::DataDir { path: data_dir.display().to_string(), source })?;
    let (root, root_origin) = identity::root_credentials(&data_dir, config.root_credentials.as_ref())?;
    let identities = Identities::new(&config.account_id, &root, &config.users)?;
    let external_buckets = ExternalBuckets::new(&config.buckets.external)?;
    let token_key = load_or_create_key(&data_dir.join("token-key"))?;
    let options = LogOptions {
        seal_after_bytes: config.seal_after_bytes,
        seal_after: config.seal_after,
        max_pending_bytes: config.max_pending_bytes,
        sync: config.sync,
        page_cache_bytes: config.page_cache_bytes,
        event_cache_bytes: config.event_cache_bytes,
        index_cache_bytes: config.index_cache_bytes,
        compact: config.compact,
        compact_settle: config.compact_settle,
        ..LogOptions::default()
    };
    let log = EventLog::open(&data_dir, options)?;
    let merkle =
        MerkleTrees::open(&data_dir, log.clone(), MerkleOptions { sync: config.sync, ..MerkleOptions::default() })
            .map_err(ServerError::Merkle)?;
    let checkpoints = Checkpoints::open(&data_dir).map_err(ServerError::Merkle)?;
    let buckets = BucketStore::open(&data_dir.join("buckets")).map_err(ServerError::Buckets)?;
    let limiter = RateLimiter::new(config.requests_per_second, config.burst);
    let ingest_budget = Arc::new(tokio::sync::Semaphore::new(config.max_inflight_megabytes));
    let trails = Trails::open(&data_dir).map_err(|error| ServerError::File {
        path: data_dir.join("trails").display().to_string(),
        detail: error.to_string(),
    })?;
    let deliveries = Deliveries::open(&data_dir).map_err(|error| ServerError::File {
        path: data_dir.join("trails").display().to_string(),
        detail: error.to_string(),
    })?;
    let topics = sns::Topics::open(&data_dir).map_err(|error| ServerError::File {
        path: data_dir.join("sns").display().to_string(),
        detail: error.to_string(),
    })?;
    let signing_keys = SigningKeys::open(&data_dir, config.signing_key_rotation).map_err(|error| {
        ServerError::File { path: data_dir.join("signing-keys").display().to_string(), detail: error.to_string() }
    })?;
    let state = AppState::new(Shared {
        config,
        identities,
        log,
        merkle,
        checkpoints,
        token_key,
        limiter,
        metrics: Metrics::default(),
        ingest_budget,
        trails,
        deliveries,
        topics,
        external_buckets,
        buckets,
        signing_keys,
    });
    Ok(Opened { state, root, root_origin })
}

fn load_or_create_key(path: &Path) -> Result<[u8; 32], ServerError> {
    let failure = |detail: String| ServerError::File { path: path.display().to_string(), detail };
    match std::fs::read(path) {
        Ok(bytes) => bytes.try_into().map_err(|_| failure("expected 32 bytes".to_owned())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            rand::rng().fill_bytes(&mut key);
            identity::write_private_file(path, &key).map_err(|error| failure(error.to_string()))?;
            Ok(key)
        }
        Err(error) => Err(failure(error.to_string())),
    }
}

/// Reads a PEM certificate chain and private key into a TLS acceptor.
pub fn load_tls(paths: &TlsPaths) -> Result<TlsAcceptor, ServerError> {
    let read = |path: &Path| {
        std::fs::read(path)
            .map_err(|error| ServerError::File { path: path.display().to_string(), detail: error.to_string() })
    };
    let cert_pem = read(&paths.cert)?;
    let key_pem = read(&paths.key)?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| ServerError::Tls(error.to_string()))?;
    if certs.is_empty() {
        return Err(ServerError::Tls(format!("no certificate in {}", paths.cert.display())));
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|error| ServerError::Tls(error.to_string()))?
        .ok_or_else(|| ServerError::Tls(format!("no private key in {}", paths.key.display())))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| ServerError::Tls(error.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|error| ServerError::Tls(error.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves until `shutdown` fires, then stops accepting, lets open requests finish (up to
/// ten seconds), and closes the event log, which seals everything it holds.
pub async fn run(listener: TcpListener, tls: Option<TlsAcceptor>, state: AppState, shutdown: CancellationToken) {
    let router = api::router(state.clone());
    let graceful = GracefulShutdown::new();
    let retention = tokio::spawn(run_retention(state.clone(), shutdown.clone()));
    let delivery = tokio::spawn(delivery::run(state.clone(), shutdown.clone()));
    let checkpoints = tokio::spawn(integrity::run(state.clone(), shutdown.clone()));
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let builder = hyper::server::conn::http1::Builder::new();
            match tls {
                None => {
                    let service = TowerToHyperService::new(router.layer(Extension(ConnectionInfo { peer, tls: None })));
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    if let Err(error) = watcher.watch(connection).await {
                        tracing::debug!(%error, %peer, "connection ended with an error");
                    }
                }
                Some(acceptor) => {
                    let stream = match acceptor.accept(stream).await {
                        Ok(stream) => stream,
                        Err(error) => {
                            tracing::debug!(%error, %peer, "TLS handshake failed");
                            return;
                        }
                    };
                    let (_, session) = stream.get_ref();
                    let info = TlsInfo {
                        version: session
                            .protocol_version()
                            .and_then(|v| v.as_str())
                            .map(|v| v.replace("TLSv1_", "TLSv1.").replace("TLSv1.0", "TLSv1"))
                            .unwrap_or_default(),
                        cipher_suite: session
                            .negotiated_cipher_suite()
                            .and_then(|s| s.suite().as_str())
                            .unwrap_or_default()
                            .to_owned(),
                    };
                    let service =
                        TowerToHyperService::new(router.layer(Extension(ConnectionInfo { peer, tls: Some(info) })));
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    if let Err(error) = watcher.watch(connection).await {
                        tracing::debug!(%error, %peer, "connection ended with an error");
                    }
                }
            }
        });
    }
    tracing::info!("shutting down: finishing open requests");
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await.is_err() {
        tracing::warn!("open requests did not finish within 10 s");
    }
    retention.abort();
    // Trails stop between rounds; what they had batched is delivered after the restart.
    let _ = delivery.await;
    let _ = checkpoints.await;
    // The trees take in every event first, and get a last checkpoint, so that a stopped
    // store is covered by signatures up to its last event.
    let closing = state.clone();
    tracing::info!("sealing the event log");
    let _ = tokio::task::spawn_blocking(move || {
        closing.merkle.close();
        integrity::checkpoint_grown_trees(&closing);
        closing.log.close();
    })
    .await;
    tracing::info!("stopped");
}

/// Enforces Event History retention every hour: drops whole segments whose events were
/// all recorded before the retention window, and records each drop as an event.
async fn run_retention(state: AppState, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let retention_ms = state.config.history_retention.as_millis() as i64;
        let cutoff = now_ms() - retention_ms;
        let log = state.log.clone();
        let dropped = match tokio::task::spawn_blocking(move || log.expire(cutoff)).await {
            Ok(Ok(dropped)) => dropped,
            Ok(Err(error)) => {
                tracing::error!(%error, "retention failed");
                continue;
            }
            Err(_) => continue,
        };
        for meta in dropped {
            tracing::info!(segment = %meta.name, account = %meta.account_id, region = %meta.region, events = meta.event_count, "retention dropped a segment");
            let details = serde_json::json!({
                "segment": format!("account={}/region={}/date={}/{}", meta.account_id, meta.region, meta.date, meta.name),
                "eventCount": meta.event_count,
                "oldestEventTime": format_event_time(meta.min_time_ms),
                "newestEventTime": format_event_time(meta.max_time_ms),
                "retentionDays": retention_ms / 86_400_000,
            });
            if let Err(error) =
                audit::record_service_event(&state, &meta.account_id, &meta.region, "PurgeEventHistory", details).await
            {
                tracing::error!(code = error.code, message = %error.message, "could not record a retention purge");
            }
        }
    }
}
