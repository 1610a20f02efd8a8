//! Benchmarks for Trailkeeper: a realistic CloudTrail event generator and the measurement
//! helpers behind BENCHMARKS.md.
//!
//! The library holds what can be tested without a server: the [`generator`] of CloudTrail
//! records, the discrete distributions it draws from, exact percentiles and the open-loop
//! pacing schedule. The `trailkeeper-bench` binary drives a running server with them.
//! Nothing here reads a clock or does IO, so a seed always yields the same records.

mod catalog;
pub mod distribution;
pub mod generator;
pub mod pacing;
pub mod stats;

pub use generator::{Generator, GeneratorConfig, GeneratorConfigError};
