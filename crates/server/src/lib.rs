//! Trailkeeper's server: configuration, identities, the AWS wire protocols with SigV4,
//! ingestion, Event History (`LookupEvents`), self-audit, trails and their delivery, the
//! built-in S3 bucket store and SNS topics.
//!
//! Startup is one straight line, driven by the binary: [`config::Config::load`] →
//! [`server::open`] → bind → [`server::run`].

pub mod api;
pub mod audit;
pub mod cloudtrail;
pub mod config;
pub mod delivery;
pub mod external_bucket;
pub mod identity;
pub mod ingest;
pub mod integrity;
pub mod metrics;
pub mod ratelimit;
pub mod s3;
pub mod server;
pub mod signing;
pub mod sns;
pub mod state;
pub mod trails;
pub mod validation;
pub mod xml;
