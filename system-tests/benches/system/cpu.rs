//! CPU time as the kernel counts it, so a figure per order or per event survives a noisy
//! machine: the same work costs the same CPU whatever else runs beside it.

use std::time::Duration;

/// The kernel's clock tick for `/proc` times (`USER_HZ`), 100 on every Linux build we run on.
const TICK: Duration = Duration::from_millis(10);

/// CPU spent so far: by the processes watched (every thread, user and system) and by the whole
/// machine (every process, the broker, the database and the load generator included).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuTime {
    pub processes: Duration,
    pub machine: Duration,
}

impl CpuTime {
    /// Reads the CPU of `pids` and of the machine now.
    pub(crate) fn now(pids: &[u32]) -> Self {
        Self {
            processes: pids.iter().map(|&pid| process_cpu(pid)).sum(),
            machine: machine_cpu(),
        }
    }

    /// What was spent between `self` and `later`, in µs per unit of `units`.
    pub(crate) fn per_unit(&self, later: &CpuTime, units: usize) -> CpuPerUnit {
        let per = |spent: Duration| spent.as_secs_f64() * 1e6 / units.max(1) as f64;
        CpuPerUnit {
            processes_us: per(later.processes.saturating_sub(self.processes)),
            machine_us: per(later.machine.saturating_sub(self.machine)),
        }
    }
}

/// µs of CPU per order or per event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuPerUnit {
    /// Of orderstream's own processes.
    pub processes_us: f64,
    /// Of the whole machine.
    pub machine_us: f64,
}

impl std::fmt::Display for CpuPerUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0} µs of CPU in our processes, {:.0} µs on the machine",
            self.processes_us, self.machine_us
        )
    }
}

/// User and system time of every thread of `pid` (fields 14 and 15 of `/proc/<pid>/stat`).
fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces; the fields after it are plain numbers.
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    ticks(fields.get(11..13).unwrap_or_default())
}

/// Every CPU's time not idle nor waiting on I/O, from the first line of `/proc/stat`.
fn machine_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .collect();
    // user nice system idle iowait irq softirq steal: leave idle and iowait out.
    let busy: Vec<&str> = fields
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, field)| *field)
        .collect();
    ticks(&busy)
}

fn ticks(fields: &[&str]) -> Duration {
    TICK * fields.iter().filter_map(|field| field.parse::<u32>().ok()).sum::<u32>()
}
