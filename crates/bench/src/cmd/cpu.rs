//! Where a run's CPU went: the server's threads, summed by thread name, and how much of
//! the machine stayed idle, read from `/proc` when a run starts and when it ends. The
//! server's CPU per event is what sets the ingest rate once the machine is busy (13.3 µs
//! leaves room for 150,000 events/s on two cores), and the split by thread says which part
//! of the pipeline to look at. Threads that end within a run (the sealer's helpers, each
//! merge's thread) are gone from `/proc/PID/task` by its end; what the whole process used
//! beyond the threads still there is reported as `ended threads`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;

/// Clock ticks per second in `/proc`'s CPU times (`USER_HZ`), 100 on every Linux
/// architecture this runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU times at one moment, in clock ticks.
pub struct CpuSample {
    /// The machine's idle and iowait ticks, and all its ticks.
    idle: u64,
    total: u64,
    /// The process's threads' user and system ticks, summed by thread name.
    threads: BTreeMap<String, u64>,
    /// The whole process's, ended threads included.
    process: u64,
}

impl CpuSample {
    pub fn read(pid: u32) -> anyhow::Result<CpuSample> {
        let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
        let machine: Vec<u64> = stat
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("cpu "))
            .context("/proc/stat has no cpu line")?
            .split_whitespace()
            .map(|field| field.parse().context("a /proc/stat field that is not a number"))
            .collect::<anyhow::Result<_>>()?;
        anyhow::ensure!(machine.len() >= 5, "/proc/stat's cpu line is too short");
        let process_stat = format!("/proc/{pid}/stat");
        let process = cpu_ticks(
            &std::fs::read_to_string(&process_stat)
                .with_context(|| format!("reading {process_stat} (is --server-pid right?)"))?,
            Path::new(&process_stat),
        )?;
        let mut threads = BTreeMap::new();
        let tasks = format!("/proc/{pid}/task");
        for task in std::fs::read_dir(&tasks).with_context(|| format!("reading {tasks} (is --server-pid right?)"))? {
            let dir = task?.path();
            // A thread that ended between the listing and the read is simply not counted.
            let (Ok(name), Ok(stat)) =
                (std::fs::read_to_string(dir.join("comm")), std::fs::read_to_string(dir.join("stat")))
            else {
                continue;
            };
            *threads.entry(name.trim().to_owned()).or_default() += cpu_ticks(&stat, &dir)?;
        }
        Ok(CpuSample { idle: machine[3] + machine[4], total: machine.iter().sum(), threads, process })
    }
}

/// utime + stime of one `/proc/PID/stat` or `/proc/PID/task/TID/stat` line: the 14th and
/// 15th fields, counted after the command name, which may hold spaces and parentheses.
fn cpu_ticks(stat: &str, dir: &Path) -> anyhow::Result<u64> {
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).context("a thread stat without a name")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |at: usize| -> anyhow::Result<u64> {
        fields.get(at).and_then(|field| field.parse().ok()).with_context(|| format!("{}: no CPU time", dir.display()))
    };
    Ok(ticks(11)? + ticks(12)?)
}

/// What a run cost the server.
pub struct RunCpu {
    /// Microseconds of the server's CPU per event, the whole process.
    pub per_event_us: f64,
    /// The same by thread name, largest first.
    pub by_thread: Vec<(String, f64)>,
    /// Share of the machine's CPU time that was idle, in percent.
    pub idle_percent: f64,
}

impl RunCpu {
    pub fn between(before: &CpuSample, after: &CpuSample, events: u64) -> RunCpu {
        let per_event = |ticks: u64| ticks as f64 / TICKS_PER_SECOND * 1e6 / events.max(1) as f64;
        let mut by_thread: Vec<(String, f64)> = after
            .threads
            .iter()
            .map(|(name, &ticks)| {
                // A thread group that shrank (helpers that ended) counts what is left of it.
                (name.clone(), per_event(ticks.saturating_sub(before.threads.get(name).copied().unwrap_or(0))))
            })
            .filter(|(_, us)| *us > 0.0)
            .collect();
        let process = after.process.saturating_sub(before.process);
        let ended = per_event(process) - by_thread.iter().map(|(_, us)| us).sum::<f64>();
        if ended > 0.005 {
            by_thread.push(("ended threads".to_owned(), ended));
        }
        by_thread.sort_by(|a, b| b.1.total_cmp(&a.1));
        let total = after.total.saturating_sub(before.total).max(1);
        RunCpu {
            per_event_us: per_event(process),
            by_thread,
            idle_percent: 100.0 * after.idle.saturating_sub(before.idle) as f64 / total as f64,
        }
    }
}

impl std::fmt::Display for RunCpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "server CPU {:.2} µs/event (", self.per_event_us)?;
        for (at, (name, us)) in self.by_thread.iter().enumerate() {
            write!(f, "{}{name} {us:.2}", if at == 0 { "" } else { ", " })?;
        }
        write!(f, "), machine {:.1}% idle", self.idle_percent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(idle: u64, total: u64, process: u64, threads: &[(&str, u64)]) -> CpuSample {
        CpuSample {
            idle,
            total,
            threads: threads.iter().map(|&(name, ticks)| (name.to_owned(), ticks)).collect(),
            process,
        }
    }

    #[test]
    fn a_runs_cpu_is_split_by_thread_per_event() {
        let before = sample(100, 1_000, 65, &[("tokio-rt-worker", 50), ("tk-sealer", 10), ("tk-merkle", 5)]);
        let after = sample(120, 1_400, 345, &[("tokio-rt-worker", 250), ("tk-sealer", 90), ("tk-merkle", 5)]);
        let cpu = RunCpu::between(&before, &after, 1_000_000);
        // 200 ticks are 2 s, 2 µs for each of a million events.
        assert_eq!(cpu.by_thread, vec![("tokio-rt-worker".to_owned(), 2.0), ("tk-sealer".to_owned(), 0.8)]);
        assert!((cpu.per_event_us - 2.8).abs() < 1e-9);
        assert!((cpu.idle_percent - 5.0).abs() < 1e-9);
        assert_eq!(
            cpu.to_string(),
            "server CPU 2.80 µs/event (tokio-rt-worker 2.00, tk-sealer 0.80), machine 5.0% idle"
        );
    }

    #[test]
    fn threads_that_ended_within_a_run_are_counted_from_the_process() {
        // A helper ran 60 ticks and ended before the run did.
        let before = sample(0, 1_000, 60, &[("tk-sealer", 60)]);
        let after = sample(0, 2_000, 180, &[("tk-sealer", 120)]);
        let cpu = RunCpu::between(&before, &after, 1_000_000);
        assert!((cpu.per_event_us - 1.2).abs() < 1e-9);
        assert_eq!(cpu.by_thread.len(), 2);
        assert!((cpu.by_thread[0].1 - 0.6).abs() < 1e-9 && (cpu.by_thread[1].1 - 0.6).abs() < 1e-9);
        assert!(cpu.by_thread.iter().any(|(name, _)| name == "ended threads"));
    }

    #[test]
    fn a_stat_line_is_read_after_the_name() {
        let line = "4242 (tk (odd) name) S 1 2 3 4 5 6 7 8 9 10 1234 56 0 0 20 0 1 0 5 6 7";
        assert_eq!(cpu_ticks(line, Path::new("/proc/1/task/4242")).unwrap(), 1290);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let sample = CpuSample::read(std::process::id()).unwrap();
        assert!(sample.total >= sample.idle);
        assert!(!sample.threads.is_empty());
    }
}
