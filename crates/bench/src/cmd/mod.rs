//! The subcommands, one module each, and what they share: generator flags, request
//! signing and the report printer.

pub mod cpu;
pub mod disk;
pub mod generate;
pub mod ingest;
pub mod lookup;
pub mod parse;
pub mod prove;
pub mod report;
pub mod signing;

use anyhow::Context as _;
use trailkeeper_bench::GeneratorConfig;

/// The generator's flags. `lookup` must be given the same ones as the `ingest` whose
/// events it queries, so that it samples values that were stored.
#[derive(Debug, Clone, clap::Args)]
pub struct GeneratorArgs {
    /// Seed of the generated events.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// recipientAccountId values (comma-separated, 12 digits each).
    #[arg(long, value_delimiter = ',', default_values_t = GeneratorConfig::default().accounts)]
    pub accounts: Vec<String>,
    /// awsRegion values (comma-separated); the first gets most events.
    #[arg(long, value_delimiter = ',', default_values_t = GeneratorConfig::default().regions)]
    pub regions: Vec<String>,
    /// eventTime of the first event.
    #[arg(long, default_value = "2026-11-01T00:00:00Z")]
    pub start_time: String,
    /// How fast eventTime advances, in events per second of event time.
    #[arg(long, default_value_t = 1000.0)]
    pub events_per_second_of_event_time: f64,
    /// IAM users and role sessions per account.
    #[arg(long, default_value_t = GeneratorConfig::default().principals_per_account)]
    pub principals_per_account: usize,
}

/// The flags of a timed request load (`lookup`, `prove`).
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Trailkeeper's endpoint.
    #[arg(long, env = "TRAILKEEPER_ENDPOINT", default_value = "http://127.0.0.1:4600")]
    pub endpoint: reqwest::Url,
    /// Seconds per run.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Requests in flight.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Runs.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
}

impl LoadArgs {
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.duration > 0.0 && self.concurrency > 0, "--duration and --concurrency must be positive");
        Ok(())
    }

    pub fn run_duration(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.duration)
    }

    /// An HTTP client keeping a connection per request in flight.
    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        reqwest::Client::builder()
            .pool_max_idle_per_host(self.concurrency)
            .tcp_nodelay(true)
            .build()
            .context("building the HTTP client")
    }
}

impl GeneratorArgs {
    pub fn config(&self) -> anyhow::Result<GeneratorConfig> {
        let start_time_ms = trailkeeper_core::time::parse_event_time(&self.start_time).context("--start-time")?;
        Ok(GeneratorConfig {
            seed: self.seed,
            accounts: self.accounts.clone(),
            regions: self.regions.clone(),
            start_time_ms,
            events_per_second_of_event_time: self.events_per_second_of_event_time,
            principals_per_account: self.principals_per_account,
            ..GeneratorConfig::default()
        })
    }

    pub fn generator(&self) -> anyhow::Result<trailkeeper_bench::Generator> {
        Ok(trailkeeper_bench::Generator::new(self.config()?)?)
    }
}
