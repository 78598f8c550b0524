//! What the run prints: counts, acknowledged commands per second before, during and after the
//! faults, the time each fault took to recover from, the processes that stopped on their own,
//! and every check.

use std::time::Duration;

use tokio::time::Instant;

use crate::checks::Verdict;
use crate::faults::{Fault, Stopped};
use crate::load::Acknowledged;

/// The window the recovery is judged over.
const WINDOW: Duration = Duration::from_secs(1);
/// The window's step.
const STEP: Duration = Duration::from_millis(100);
/// How long past a victim's restart its recovery is still looked for.
const RECOVERY_HORIZON: Duration = Duration::from_secs(10);

/// When the load started, when the faults began, when the last restart was followed by the
/// undisturbed load, and when the load stopped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Phases {
    pub(crate) start: Instant,
    pub(crate) during_from: Instant,
    pub(crate) after_from: Instant,
    pub(crate) end: Instant,
}

/// Prints the report; true when every check held and nothing was lost or answered unexpectedly.
pub(crate) fn print(
    acknowledged: &Acknowledged,
    phases: &Phases,
    faults: &[Fault],
    stopped: &[Stopped],
    verdict: &Verdict,
) -> bool {
    let mut acks = acknowledged.acks.clone();
    acks.sort();
    let rate = |from: Instant, to: Instant| {
        let count = acks.iter().filter(|&&at| at >= from && at < to).count();
        count as f64 / (to - from).as_secs_f64().max(f64::EPSILON)
    };
    let before = rate(phases.start, phases.during_from);
    println!();
    println!(
        "acknowledged: {} orders, {} purchases, {} refunds ({} commands); {} retries on the same key; {} lost; {} unexpected answers",
        acknowledged.orders.len(),
        acknowledged.purchases.len(),
        acknowledged.refunds.len(),
        acks.len(),
        acknowledged.retries,
        acknowledged.lost.len(),
        acknowledged.unexpected.len()
    );
    println!(
        "commands/s: before {before:.0} ({:.0}s), during {:.0} ({:.0}s), after {:.0} ({:.0}s)",
        (phases.during_from - phases.start).as_secs_f64(),
        rate(phases.during_from, phases.after_from),
        (phases.after_from - phases.during_from).as_secs_f64(),
        rate(phases.after_from, phases.end),
        (phases.end - phases.after_from).as_secs_f64(),
    );
    for fault in faults {
        let recovery = Recovery::of(&acks, fault, before / 2.0, phases.end);
        println!(
            "fault: SIGKILL {:<13} at {:>5.1}s: lowest rate {:.0}/s, back to half the rate before {:.1}s after the kill; \
             longest wait for an ack {:.1}s; {} ready again after {:.1}s (up --cluster {:.1}s)",
            fault.victim,
            (fault.killed_at - phases.start).as_secs_f64(),
            recovery.lowest_rate,
            recovery.recovered_after.as_secs_f64(),
            recovery.longest_gap.as_secs_f64(),
            fault.victim,
            (fault.ready_at - fault.killed_at).as_secs_f64(),
            fault.restart_took.as_secs_f64()
        );
    }
    for stop in stopped {
        println!(
            "stopped on its own: {} (noticed at {:.1}s), running again {:.1}s later",
            stop.names.join(", "),
            (stop.noticed_at - phases.start).as_secs_f64(),
            (stop.ready_at - stop.noticed_at).as_secs_f64()
        );
    }
    println!(
        "settled {:.1}s after the load stopped (every purchase charged, every projection at the head); {} events on the log",
        verdict.settled_in.as_secs_f64(),
        verdict.events_read
    );
    let mut passed = true;
    for (kind, problems) in [("lost", &acknowledged.lost), ("unexpected", &acknowledged.unexpected)] {
        if !problems.is_empty() {
            passed = false;
            println!("FAIL {} commands {kind}:", problems.len());
            problems.iter().take(5).for_each(|p| println!("       {p}"));
        }
    }
    for check in &verdict.checks {
        if check.failures.is_empty() {
            println!("ok   {}", check.property);
        } else {
            passed = false;
            println!("FAIL {} ({} failures):", check.property, check.failures.len());
            check.failures.iter().take(8).for_each(|f| println!("       {f}"));
        }
    }
    println!("chaos: {}", if passed { "PASSED" } else { "FAILED" });
    passed
}

/// How the acknowledgements behaved after one kill.
#[derive(Debug)]
struct Recovery {
    /// The lowest rate of any one-second window from the kill until the victim was back.
    lowest_rate: f64,
    /// From the kill to the end of the last one-second window below `floor` (zero when none was).
    recovered_after: Duration,
    /// The longest time without any acknowledgement from the kill until the victim was back.
    longest_gap: Duration,
}

impl Recovery {
    fn of(acks: &[Instant], fault: &Fault, floor: f64, end: Instant) -> Self {
        let in_window = |from: Instant| acks.iter().filter(|&&at| at >= from && at < from + WINDOW).count() as f64;
        let horizon = (fault.ready_at + RECOVERY_HORIZON).min(end);
        let mut lowest_rate = f64::INFINITY;
        let mut recovered_after = Duration::ZERO;
        let mut from = fault.killed_at;
        while from + WINDOW <= horizon {
            let rate = in_window(from);
            if from + WINDOW <= fault.ready_at.max(fault.killed_at + WINDOW) {
                lowest_rate = lowest_rate.min(rate);
            }
            if rate < floor {
                recovered_after = from + WINDOW - fault.killed_at;
            }
            from += STEP;
        }
        let mut longest_gap = Duration::ZERO;
        let mut last = fault.killed_at;
        for &at in acks.iter().filter(|&&at| at > fault.killed_at && at <= fault.ready_at) {
            longest_gap = longest_gap.max(at - last);
            last = at;
        }
        longest_gap = longest_gap.max(fault.ready_at - last);
        Self {
            lowest_rate: if lowest_rate.is_finite() { lowest_rate } else { 0.0 },
            recovered_after,
            longest_gap,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 20;

    /// Acknowledgements at `RATE` per second from `from` until `to`.
    fn steady(from: Instant, to: Instant) -> Vec<Instant> {
        (0..)
            .map(|n| from + Duration::from_secs(1) / RATE * n)
            .take_while(|&at| at < to)
            .collect()
    }

    fn fault(killed_at: Instant, ready_at: Instant) -> Fault {
        Fault {
            victim: "command-api-1",
            killed_at,
            ready_at,
            restart_took: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_stall_after_the_kill_is_measured_until_the_rate_is_back() {
        let start = Instant::now();
        let killed_at = start + Duration::from_secs(10);
        let mut acks = steady(start, killed_at);
        acks.extend(steady(
            killed_at + Duration::from_secs(3),
            start + Duration::from_secs(30),
        ));
        let recovery = Recovery::of(
            &acks,
            &fault(killed_at, start + Duration::from_secs(15)),
            f64::from(RATE) / 2.0,
            start + Duration::from_secs(30),
        );
        assert_eq!(recovery.lowest_rate, 0.0);
        let gap = recovery.longest_gap.as_secs_f64();
        assert!((2.9..=3.1).contains(&gap), "{gap}");
        // Half the rate again once the one-second window holds 10 acknowledgements: 3.5 s.
        let recovered = recovery.recovered_after.as_secs_f64();
        assert!((3.3..=3.6).contains(&recovered), "{recovered}");
    }

    #[test]
    fn a_kill_the_other_replicas_absorb_takes_no_time_to_recover_from() {
        let start = Instant::now();
        let end = start + Duration::from_secs(30);
        let killed_at = start + Duration::from_secs(10);
        let recovery = Recovery::of(
            &steady(start, end),
            &fault(killed_at, killed_at + Duration::from_secs(4)),
            f64::from(RATE) / 2.0,
            end,
        );
        assert_eq!(recovery.recovered_after, Duration::ZERO);
        assert!(
            recovery.lowest_rate >= f64::from(RATE) - 1.0,
            "{}",
            recovery.lowest_rate
        );
        assert!(
            recovery.longest_gap <= Duration::from_millis(60),
            "{:?}",
            recovery.longest_gap
        );
    }
}
