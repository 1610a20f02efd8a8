//! Printing measurements: a text line for people and a JSON line for BENCHMARKS.md, each
//! with the median and spread over runs, the machine and the command that reproduces it.

use std::time::Duration;

use serde_json::json;
use trailkeeper_bench::stats::Spread;

/// What every measurement line carries besides its figures.
#[derive(Debug)]
pub struct Reporter {
    command: String,
    machine: serde_json::Value,
}

impl Reporter {
    pub fn new() -> Reporter {
        let command = std::env::args().map(|arg| shell_quote(&arg)).collect::<Vec<_>>().join(" ");
        Reporter { command, machine: machine() }
    }

    pub fn print_machine(&self) {
        println!("machine: {}", self.machine);
    }

    /// Prints one figure measured over one or more runs.
    pub fn figure(&self, benchmark: &str, metric: &str, unit: &str, runs: &[f64]) {
        let Some(spread) = Spread::of(runs) else { return };
        let text = if runs.len() == 1 {
            format!("{benchmark:<8} {metric:<28} {} {unit}", format_number(spread.median))
        } else {
            format!(
                "{benchmark:<8} {metric:<28} {} {unit} (median of {} runs, min {}, max {}, ±{:.1}%)",
                format_number(spread.median),
                runs.len(),
                format_number(spread.min),
                format_number(spread.max),
                spread.relative_half_range_percent()
            )
        };
        println!("{text}");
        let line = json!({
            "benchmark": benchmark,
            "metric": metric,
            "unit": unit,
            "median": spread.median,
            "min": spread.min,
            "max": spread.max,
            "runs": spread.runs,
            "command": self.command,
            "machine": self.machine,
        });
        println!("{line}");
    }

    /// Prints latency percentiles, in milliseconds, each as a figure over the runs.
    pub fn latencies(&self, benchmark: &str, prefix: &str, runs: &[trailkeeper_bench::stats::LatencySummary]) {
        let millis = |pick: fn(&trailkeeper_bench::stats::LatencySummary) -> Duration| -> Vec<f64> {
            runs.iter().map(|summary| pick(summary).as_secs_f64() * 1000.0).collect()
        };
        self.figure(benchmark, &format!("{prefix}_p50"), "ms", &millis(|s| s.p50));
        self.figure(benchmark, &format!("{prefix}_p90"), "ms", &millis(|s| s.p90));
        self.figure(benchmark, &format!("{prefix}_p99"), "ms", &millis(|s| s.p99));
        self.figure(benchmark, &format!("{prefix}_max"), "ms", &millis(|s| s.max));
    }
}

fn format_number(value: f64) -> String {
    if value.abs() >= 100.0 { format!("{value:.0}") } else { format!("{value:.3}") }
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@+%".contains(&b));
    if plain { arg.to_owned() } else { format!("'{}'", arg.replace('\'', r"'\''")) }
}

/// CPU model, core count and memory, from /proc where it exists.
fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|line| {
            line.strip_prefix("model name").and_then(|rest| rest.split_once(':')).map(|(_, model)| model.trim())
        })
        .unwrap_or("unknown");
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib: u64 = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(0);
    json!({
        "cpu": cpu,
        "cores": cores,
        "memory_gib": (memory_kib as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        "os": std::env::consts::OS,
    })
}
