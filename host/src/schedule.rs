//! Change windows and freezes: when the loop may start, and move, a rollout.
//!
//! A **rollout window** is a recurring span of local time in which the loop
//! may start a rollout; outside every window it still detects and proves,
//! and a proven candidate waits for the next window. A **freeze** is a
//! period of no changes at all: no rollout starts, and rollouts in progress
//! hold at their step with their time budget stopped (a failing candidate
//! is still rolled back, since that removes risk rather than adding it).
//!
//! Window syntax (`safety.schedule.windows`, also a freeze's `every`):
//!
//! ```text
//! DAYS START-END [ZONE]
//! DAYS  = * | daily | DAY | DAY-DAY | DAYS,DAYS      (Mon Tue Wed Thu Fri Sat Sun)
//! START, END = HH:MM or HH:MM:SS; END may be 24:00; END before START runs past midnight
//! ZONE  = UTC (the default) or an IANA name such as Europe/Berlin
//! ```
//!
//! `Mon-Fri 02:00-05:00 UTC` opens on weekday mornings; `Sat,Sun 22:00-06:00
//! Europe/Berlin` opens on weekend nights (DAYS name the day a window
//! opens). Local times follow the zone's daylight-saving rules: a start in
//! a skipped hour moves forward, one in a repeated hour takes the first.

use std::fmt;

pub use jiff::Timestamp as Instant;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

/// A window's text that does not parse, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("window `{text}`: {why} (expected `DAYS HH:MM-HH:MM [ZONE]`, e.g. `Mon-Fri 02:00-05:00 UTC`)")]
pub struct WindowError {
    pub text: String,
    pub why: String,
}

/// A recurring span of local time, e.g. `Mon-Fri 02:00-05:00 UTC`.
#[derive(Clone)]
pub struct Window {
    text: String,
    /// Days the window opens on, Monday first.
    days: [bool; 7],
    /// Seconds after local midnight; `end` may be 86 400 (24:00), and a
    /// window with `end <= start` ends the next day.
    start: u32,
    end: u32,
    zone: TimeZone,
}

const DAY_NAMES: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

impl Window {
    pub fn parse(text: &str) -> Result<Window, WindowError> {
        let err = |why: String| WindowError { text: text.to_string(), why };
        let parts: Vec<&str> = text.split_whitespace().collect();
        let (days, span, zone) = match parts.as_slice() {
            [days, span] => (*days, *span, "UTC"),
            [days, span, zone] => (*days, *span, *zone),
            _ => return Err(err("it needs days, a time span and optionally a zone, separated by spaces".into())),
        };
        let days = parse_days(days).map_err(err)?;
        let (start, end) = span.split_once('-').ok_or_else(|| err(format!("`{span}` is not START-END")))?;
        let start = parse_time(start).map_err(err)?;
        let end = parse_time(end).map_err(err)?;
        if start == end {
            return Err(err("the window is empty (START equals END)".into()));
        }
        if start == 86_400 {
            return Err(err("a window cannot start at 24:00".into()));
        }
        let zone = if zone.eq_ignore_ascii_case("utc") {
            TimeZone::UTC
        } else {
            TimeZone::get(zone).map_err(|e| err(format!("unknown time zone `{zone}`: {e}")))?
        };
        Ok(Window { text: text.to_string(), days, start, end, zone })
    }

    /// The occurrence `[start, end)` that contains `t`, if any.
    pub fn containing(&self, t: Timestamp) -> Option<(Timestamp, Timestamp)> {
        self.occurrences(t).find(|(s, e)| *s <= t && t < *e)
    }

    /// The start of the first occurrence after `t` (within the next eight
    /// days; every window opens at least once a week).
    pub fn next_start(&self, t: Timestamp) -> Option<Timestamp> {
        self.occurrences(t).map(|(s, _)| s).filter(|s| *s > t).min()
    }

    /// The occurrences opening from the local day before `t` to eight days
    /// after it.
    fn occurrences(&self, t: Timestamp) -> impl Iterator<Item = (Timestamp, Timestamp)> + '_ {
        let today = t.to_zoned(self.zone.clone()).date();
        (-1i64..=8).filter_map(move |n| {
            let date = today.checked_add(n.days()).ok()?;
            if !self.days[date.weekday().to_monday_zero_offset() as usize] {
                return None;
            }
            let start = self.local(date, self.start)?;
            let end_date = if self.end <= self.start { date.tomorrow().ok()? } else { date };
            let end = self.local(end_date, self.end)?;
            Some((start, end))
        })
    }

    fn local(&self, date: Date, secs: u32) -> Option<Timestamp> {
        let (date, secs) = if secs >= 86_400 { (date.tomorrow().ok()?, secs - 86_400) } else { (date, secs) };
        let dt: DateTime = date.at((secs / 3600) as i8, (secs / 60 % 60) as i8, (secs % 60) as i8, 0);
        Some(dt.to_zoned(self.zone.clone()).ok()?.timestamp())
    }
}

fn parse_days(text: &str) -> Result<[bool; 7], String> {
    if text == "*" || text.eq_ignore_ascii_case("daily") {
        return Ok([true; 7]);
    }
    let day = |d: &str| {
        let lower = d.to_ascii_lowercase();
        DAY_NAMES
            .iter()
            .position(|full| *full == lower || (lower.len() == 3 && full.starts_with(&lower)))
            .ok_or_else(|| format!("`{d}` is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)"))
    };
    let mut days = [false; 7];
    for item in text.split(',') {
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                let mut d = a;
                loop {
                    days[d] = true;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days[day(item)?] = true,
        }
    }
    Ok(days)
}

/// `HH:MM` or `HH:MM:SS` as seconds after midnight; `24:00` is 86 400.
fn parse_time(text: &str) -> Result<u32, String> {
    let bad = || format!("`{text}` is not a time of day (HH:MM or HH:MM:SS, 00:00 to 24:00)");
    let fields: Vec<&str> = text.split(':').collect();
    if !(2..=3).contains(&fields.len()) || fields.iter().any(|f| f.len() != 2) {
        return Err(bad());
    }
    let n: Vec<u32> = fields.iter().map(|f| f.parse::<u32>().map_err(|_| bad())).collect::<Result<_, _>>()?;
    let (h, m, s) = (n[0], n[1], n.get(2).copied().unwrap_or(0));
    if m > 59 || s > 59 || h > 24 || (h == 24 && (m, s) != (0, 0)) {
        return Err(bad());
    }
    Ok(h * 3600 + m * 60 + s)
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Window({:?})", self.text)
    }
}

impl PartialEq for Window {
    fn eq(&self, other: &Window) -> bool {
        self.text == other.text
    }
}

impl std::str::FromStr for Window {
    type Err = WindowError;
    fn from_str(s: &str) -> Result<Window, WindowError> {
        Window::parse(s)
    }
}

impl Serialize for Window {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Window, D::Error> {
        Window::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A period with no changes: between two instants (`from`, `to`, RFC 3339,
/// e.g. `2026-12-24T00:00:00Z`), or recurring (`every`, a window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Freeze {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Window>,
    /// Said wherever the freeze holds something (`release weekend`).
    #[serde(default)]
    pub reason: String,
}

impl Freeze {
    /// The period of this freeze that contains `t`, if any.
    pub fn containing(&self, t: Timestamp) -> Option<(Timestamp, Timestamp)> {
        match (&self.every, self.from, self.to) {
            (Some(w), _, _) => w.containing(t),
            (None, Some(from), Some(to)) => (from <= t && t < to).then_some((from, to)),
            _ => None,
        }
    }

    /// Exactly one of `every` or both `from` and `to`, with `from < to`.
    pub fn check(&self) -> Result<(), String> {
        match (&self.every, self.from, self.to) {
            (Some(_), None, None) => Ok(()),
            (None, Some(from), Some(to)) if from < to => Ok(()),
            (None, Some(from), Some(to)) => Err(format!("`from` ({from}) is not before `to` ({to})")),
            (Some(_), _, _) => Err("give either `every` or `from` and `to`, not both".into()),
            _ => Err("needs `from` and `to` (RFC 3339 instants) or `every` (a window)".into()),
        }
    }
}

/// Windows and freezes, globally (`[safety.schedule]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Rollout windows; none means any time.
    pub windows: Vec<Window>,
    pub freezes: Vec<Freeze>,
    /// A rollout for a critical finding may start outside the windows.
    pub critical_outside_windows: bool,
    /// A rollout for a critical finding may start, and carries on, in a
    /// freeze (an emergency fix).
    pub critical_in_freezes: bool,
}

/// A target's own schedule (`[safety.targets.NAME.schedule]`): its windows
/// replace the global ones when given; its freezes add to the global ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TargetSchedule {
    pub windows: Option<Vec<Window>>,
    pub freezes: Vec<Freeze>,
}

/// May a rollout start, or move, now?
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    Open,
    /// Outside every rollout window; `next` is when the next one opens.
    OutsideWindow {
        next: Option<Timestamp>,
        windows: Vec<String>,
    },
    /// A freeze is in force until `until` (`None`: until lifted).
    Frozen {
        until: Option<Timestamp>,
        reason: String,
    },
}

impl Gate {
    /// Evaluate `windows` and the freezes at `now`. A freeze wins over a
    /// window; among freezes in force, the one lasting longest is named.
    pub fn at<'a>(windows: &[Window], freezes: impl IntoIterator<Item = &'a Freeze>, now: Timestamp) -> Gate {
        let frozen = freezes.into_iter().filter_map(|f| f.containing(now).map(|(_, to)| (to, f))).max_by_key(|x| x.0);
        if let Some((until, f)) = frozen {
            return Gate::Frozen { until: Some(until), reason: f.reason.clone() };
        }
        if windows.is_empty() || windows.iter().any(|w| w.containing(now).is_some()) {
            return Gate::Open;
        }
        Gate::OutsideWindow {
            next: windows.iter().filter_map(|w| w.next_start(now)).min(),
            windows: windows.iter().map(ToString::to_string).collect(),
        }
    }

    /// [`Gate::describe`] at the present moment.
    pub fn describe_now(&self) -> String {
        self.describe(Timestamp::now())
    }

    /// Say this gate in words, with times relative to `now`.
    pub fn describe(&self, now: Timestamp) -> String {
        match self {
            Gate::Open => "rollouts may start".into(),
            Gate::OutsideWindow { next, windows } => {
                let next = next.map_or_else(String::new, |t| {
                    format!("; the next opens in {} ({})", in_words(t.as_millisecond() - now.as_millisecond()), t)
                });
                format!("outside the rollout window ({}){next}", windows.join(", "))
            }
            Gate::Frozen { until, reason } => {
                let reason = if reason.is_empty() { String::new() } else { format!(" ({reason})") };
                let until = until.map_or_else(
                    || "; until lifted".to_string(),
                    |t| format!("; it ends in {} ({})", in_words(t.as_millisecond() - now.as_millisecond()), t),
                );
                format!("change freeze{reason}{until}")
            }
        }
    }
}

/// `3 h 12 min`, `45 s`, `2 d 4 h`: a duration in milliseconds as people
/// read it, to the two largest units.
pub fn in_words(ms: i64) -> String {
    let s = (ms.max(0) + 999) / 1000;
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) if s > 0 => format!("{m} min {s} s"),
        (0, 0, _) => format!("{m} min"),
        (0, _, 0) => format!("{h} h"),
        (0, _, _) => format!("{h} h {m} min"),
        (_, 0, _) => format!("{d} d"),
        _ => format!("{d} d {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn windows_parse_days_times_and_zones() {
        let w = Window::parse("Mon-Fri 02:00-05:00 UTC").unwrap();
        assert_eq!(w.days, [true, true, true, true, true, false, false]);
        assert_eq!((w.start, w.end), (7200, 18000));
        let w = Window::parse("Fri-Mon 22:00-24:00").unwrap();
        assert_eq!(w.days, [true, false, false, false, true, true, true]);
        assert_eq!(w.end, 86_400);
        let w = Window::parse("sat,Sunday 00:00:30-00:01 Europe/Berlin").unwrap();
        assert_eq!(w.days, [false, false, false, false, false, true, true]);
        assert_eq!((w.start, w.end), (30, 60));
        assert_eq!(Window::parse("* 10:00-11:00").unwrap().days, [true; 7]);
        for (bad, says) in [
            ("Mon-Fri", "days, a time span"),
            ("Mon-Fry 02:00-03:00", "`Fry` is not a day"),
            ("Mon 2:00-03:00", "`2:00` is not a time"),
            ("Mon 02:00-25:00", "`25:00` is not a time"),
            ("Mon 02:00-02:00", "empty"),
            ("Mon 02:00-03:00 Mars/Olympus", "unknown time zone `Mars/Olympus`"),
            ("Mon 02:00-03:00 UTC extra", "days, a time span"),
        ] {
            let e = Window::parse(bad).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn a_window_contains_its_hours_and_names_the_next_opening() {
        let w = Window::parse("Mon-Fri 02:00-05:00 UTC").unwrap();
        // 2026-12-02 is a Wednesday.
        assert!(w.containing(ts("2026-12-02T03:00:00Z")).is_some());
        assert!(w.containing(ts("2026-12-02T05:00:00Z")).is_none());
        assert_eq!(w.next_start(ts("2026-12-02T05:00:00Z")), Some(ts("2026-12-03T02:00:00Z")));
        // Friday after the window: the next opens on Monday.
        assert_eq!(w.next_start(ts("2026-12-04T06:00:00Z")), Some(ts("2026-12-07T02:00:00Z")));
        // Past midnight: opened on Saturday, still open early on Sunday.
        let night = Window::parse("Sat 22:00-06:00 UTC").unwrap();
        assert!(night.containing(ts("2026-12-06T05:59:59Z")).is_some());
        assert!(night.containing(ts("2026-12-07T05:00:00Z")).is_none());
    }

    #[test]
    fn local_time_follows_the_zone() {
        // 02:00-03:00 in Berlin is 01:00-02:00 UTC in winter.
        let w = Window::parse("* 02:00-03:00 Europe/Berlin").unwrap();
        assert!(w.containing(ts("2026-12-02T01:30:00Z")).is_some());
        assert!(w.containing(ts("2026-12-02T02:30:00Z")).is_none());
        // and 00:00-01:00 UTC in summer.
        assert!(w.containing(ts("2026-07-01T00:30:00Z")).is_some());
    }

    #[test]
    fn a_freeze_wins_over_a_window_and_says_when_it_ends() {
        let windows = vec![Window::parse("* 00:00-24:00").unwrap()];
        let freeze = Freeze {
            from: Some(ts("2026-12-24T00:00:00Z")),
            to: Some(ts("2026-12-27T00:00:00Z")),
            every: None,
            reason: "release weekend".into(),
        };
        freeze.check().unwrap();
        let now = ts("2026-12-25T21:00:00Z");
        let gate = Gate::at(&windows, [&freeze], now);
        assert_eq!(gate, Gate::Frozen { until: Some(ts("2026-12-27T00:00:00Z")), reason: "release weekend".into() });
        assert!(gate.describe(now).contains("change freeze (release weekend); it ends in 1 d 3 h"), "{gate:?}");
        assert_eq!(Gate::at(&windows, [&freeze], ts("2026-12-27T00:00:00Z")), Gate::Open);
        let backwards = Freeze { from: freeze.to, to: freeze.from, ..freeze.clone() };
        assert!(backwards.check().unwrap_err().contains("not before"));
    }

    #[test]
    fn outside_every_window_the_gate_names_the_soonest() {
        let windows =
            vec![Window::parse("Mon-Fri 02:00-05:00 UTC").unwrap(), Window::parse("Wed 20:00-21:00 UTC").unwrap()];
        let now = ts("2026-12-02T16:48:00Z");
        let gate = Gate::at(&windows, [], now);
        let Gate::OutsideWindow { next, .. } = &gate else { panic!("{gate:?}") };
        assert_eq!(*next, Some(ts("2026-12-02T20:00:00Z")));
        assert!(gate.describe(now).contains("the next opens in 3 h 12 min"), "{}", gate.describe(now));
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(in_words(45_000), "45 s");
        assert_eq!(in_words(11_520_000), "3 h 12 min");
        assert_eq!(in_words(90_000), "1 min 30 s");
        assert_eq!(in_words(2 * 86_400_000 + 4 * 3_600_000), "2 d 4 h");
    }
}
