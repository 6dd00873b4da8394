//! Traffic by hour of day, for scheduling: the loop runs its cycles in the
//! quiet hours when no rollout window is configured, and does not start a
//! canary in an hour that historically brings it too few calls to reach a
//! verdict (a proven candidate then waits for an hour that does).
//!
//! Both read each target's hourly profile ([`crate::telemetry::hourly`]),
//! trusted only once every hour of the day has [`MIN_HISTORY_HOURS`]
//! calendar hours of history behind it (two days): a younger history would
//! call an hour quiet because it has not come round yet.

use std::time::Duration;

use super::Ctx;
use crate::safety::Denied;
use crate::telemetry::hourly::{HourStats, hour_and_weekday};

/// Calendar hours of history every hour of day needs before its profile
/// schedules anything.
pub const MIN_HISTORY_HOURS: u64 = 2;

const HOUR_MS: i64 = 3_600_000;

/// `target`'s traffic by hour of day (UTC), when its history is long enough.
pub fn profile(ctx: &Ctx, target: &str) -> Option<[HourStats; 24]> {
    ctx.telemetry.hourly().hourly_profile(target).filter(|p| p.iter().all(|h| h.hours >= MIN_HISTORY_HOURS))
}

/// Calls a canary of `target` can expect in its first step, started in
/// hour of day `hour`: the hour's calls × the first step's share × the
/// step's time budget (at most an hour counted).
fn expected_canary_calls(ctx: &Ctx, p: &[HourStats; 24], target: &str, hour: usize) -> (f64, f64, u64) {
    let limits = ctx.safety.limits_for(target);
    let share = limits.canary_steps.iter().copied().find(|s| *s < 100.0).unwrap_or(100.0) / 100.0;
    let step_hours = (limits.step_timeout_secs as f64 / 3600.0).min(1.0);
    (p[hour].calls_per_hour * share * step_hours, share, limits.step_timeout_secs)
}

/// May a canary of `target` start now, by the traffic this hour of day
/// historically brings? Refused, naming the hour, the expected calls and
/// when the next hour with enough starts, when the judge's minimum sample
/// would not be reached in the step's time budget. A target whose every
/// hour is too quiet is not held (waiting would not help; the step ends
/// inconclusive if it must), nor one without a long enough history.
pub fn canary_traffic(ctx: &Ctx, target: &str, now_ms: i64) -> Result<(), Denied> {
    let Some(p) = profile(ctx, target) else { return Ok(()) };
    let needed = ctx.safety.limits_for(target).judge.min_samples as f64;
    let (hour, _) = hour_and_weekday(now_ms);
    let (expected, share, step_secs) = expected_canary_calls(ctx, &p, target, hour);
    if expected >= needed {
        return Ok(());
    }
    let Some(ahead) = (1..24).find(|k| expected_canary_calls(ctx, &p, target, (hour + k) % 24).0 >= needed) else {
        return Ok(());
    };
    let next = (now_ms - now_ms.rem_euclid(HOUR_MS)) + ahead as i64 * HOUR_MS;
    Err(Denied::TooLittleTraffic(format!(
        "hour {hour:02} UTC historically brings {:.0} calls/h to {target}: a canary at {}% would see about {expected:.0} \
         in its {step_secs} s step, and the judge needs {needed:.0}; the next hour with enough starts in {} \
         ({:02}:00 UTC)",
        p[hour].calls_per_hour,
        share * 100.0,
        crate::schedule::in_words(next - now_ms),
        (hour + ahead) % 24
    )))
}

/// When the next hour with enough traffic for a canary of `target` starts
/// (Unix ms), if it is held for traffic now.
pub fn traffic_returns_at(ctx: &Ctx, target: &str, now_ms: i64) -> Option<i64> {
    canary_traffic(ctx, target, now_ms).err()?;
    let p = profile(ctx, target)?;
    let needed = ctx.safety.limits_for(target).judge.min_samples as f64;
    let (hour, _) = hour_and_weekday(now_ms);
    let ahead = (1..24).find(|k| expected_canary_calls(ctx, &p, target, (hour + k) % 24).0 >= needed)?;
    Some((now_ms - now_ms.rem_euclid(HOUR_MS)) + ahead as i64 * HOUR_MS)
}

/// The quietest hour of day (UTC) over those of `targets` with a long
/// enough history, together: (hour, calls per hour then); `None` when none
/// has one.
pub fn quiet_hour<'a>(ctx: &Ctx, targets: impl IntoIterator<Item = &'a str>) -> Option<(usize, f64)> {
    let mut total = [0.0; 24];
    let mut any = false;
    for t in targets {
        let Some(p) = profile(ctx, t) else { continue };
        for (h, s) in p.iter().enumerate() {
            total[h] += s.calls_per_hour;
        }
        any = true;
    }
    if !any {
        return None;
    }
    (0..24).map(|h| (h, total[h])).min_by(|a, b| a.1.total_cmp(&b.1))
}

/// Where the next cycle goes, `wait` from `now_ms`: the start of the quiet
/// hour, when one starts between half and one and a half of `wait` from now
/// (the first such), for waits of an hour or more; `None` keeps `wait`.
pub fn quiet_cycle_at(quiet: usize, now_ms: i64, wait: Duration) -> Option<i64> {
    let wait_ms = wait.as_millis() as i64;
    if wait_ms < HOUR_MS {
        return None;
    }
    let (from, to) = (now_ms + wait_ms / 2, now_ms + wait_ms + wait_ms / 2);
    let mut at = from - from.rem_euclid(HOUR_MS);
    while at <= to {
        if at >= from && hour_and_weekday(at).0 == quiet {
            return Some(at);
        }
        at += HOUR_MS;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cycle_moves_to_the_quiet_hour_within_half_its_interval() {
        // 2026-12-02 10:20 UTC; a day's interval; quiet hour 03.
        let now = 1_796_205_600_000 + 20 * 60_000;
        assert_eq!(hour_and_weekday(now).0, 10);
        let at = quiet_cycle_at(3, now, Duration::from_secs(86_400)).unwrap();
        assert_eq!(hour_and_weekday(at).0, 3);
        assert!(at - now >= 43_200_000 && at - now <= 129_600_000, "{}", at - now);
        assert_eq!(at.rem_euclid(HOUR_MS), 0);
        // Intervals under an hour are left alone.
        assert_eq!(quiet_cycle_at(3, now, Duration::from_secs(1800)), None);
        // Two hours from 10:20: 11:20 to 13:20 holds no 03:00.
        assert_eq!(quiet_cycle_at(3, now, Duration::from_secs(7200)), None);
        assert_eq!(hour_and_weekday(quiet_cycle_at(12, now, Duration::from_secs(7200)).unwrap()).0, 12);
    }
}
