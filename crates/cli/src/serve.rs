//! `trailkeeper serve`: parse config → tracing → open state → bind → run, in that order.

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use trailkeeper_server::config::{Config, Overrides};
use trailkeeper_server::identity::{ROOT_CREDENTIALS_FILE, RootOrigin};
use trailkeeper_server::server;

pub fn serve(overrides: Overrides) -> anyhow::Result<()> {
    let config = Config::load(&overrides, std::env::vars()).context("invalid configuration")?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // A log line that cannot be written (its file on a full disk) is dropped. With this
        // on, the subscriber reports the failure with `eprintln!`, which panics when stderr
        // fails too: it killed the journal writer, and every later append waited forever.
        .log_internal_errors(false)
        .init();
    match trailkeeper_store::fsutil::raise_open_file_limit() {
        Ok((before, after)) if after > before => tracing::info!(before, after, "raised the open-file limit"),
        Ok((limit, _)) => tracing::info!(limit, "open-file limit"),
        Err(error) => tracing::warn!(%error, "could not raise the open-file limit"),
    }
    let tls = config.tls.as_ref().map(server::load_tls).transpose().context("cannot set up TLS")?;
    let listen = config.listen;
    let data_dir = config.data_dir.clone();
    let account_id = config.account_id.clone();
    let opened =
        server::open(config).with_context(|| format!("cannot open the data directory {}", data_dir.display()))?;
    if opened.root_origin == RootOrigin::Generated {
        // Printed once, to the terminal, never to the log: the operator needs them to log in.
        println!(
            "Generated root credentials for account {account_id} (kept in {}, mode 0600):",
            data_dir.join(ROOT_CREDENTIALS_FILE).display()
        );
        println!("  aws configure set aws_access_key_id {}", opened.root.access_key_id);
        println!("  aws configure set aws_secret_access_key {}", opened.root.secret_access_key);
        println!("  aws configure set region us-east-1");
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(address = %listener.local_addr().unwrap_or(listen), "listening on {scheme}://{}", listener.local_addr().unwrap_or(listen));
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        server::run(listener, tls, opened.state, shutdown).await;
        Ok(())
    })
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut interrupt)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot install signal handlers; stop the server with kill -9");
        return;
    };
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
        _ = interrupt.recv() => tracing::info!("SIGINT received"),
    }
    shutdown.cancel();
}
