//! Freeze windows: when a stage takes no deploy. A window is a date range (`from`, `to`) or a
//! recurring one (`cron`, `duration`), in a time zone (UTC unless `timeZone` names one). All
//! of it is pure: the gate asks with the time it reads once.

use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned, civil};

/// One freeze window of a stage.
#[derive(Debug, Clone)]
pub struct Window {
    pub when: When,
    /// Why (`holiday freeze`), shown with the refusal.
    pub reason: Option<String>,
    pub zone: TimeZone,
    /// The window as written (`2026-12-23T18:00 to 2027-01-04 (Europe/Berlin)`).
    pub written: String,
}

#[derive(Debug, Clone)]
pub enum When {
    /// From `from` (included) to `to` (excluded).
    Range { from: Timestamp, to: Timestamp },
    /// Starting at every time `cron` matches, for `duration`.
    Recurring { cron: Cron, duration: std::time::Duration },
}

/// The window that holds `now`, and when every window is over (the gate opens), if one does.
pub struct Frozen<'w> {
    pub window: &'w Window,
    pub opens: Timestamp,
}

/// The window that `now` falls in, if any, with the time from which no window holds.
pub fn frozen_at(windows: &[Window], now: Timestamp) -> Option<Frozen<'_>> {
    let window = windows.iter().find(|w| w.end_of_active(now).is_some())?;
    // Windows can follow one another or overlap: the gate opens when none holds.
    let mut opens = now;
    for _ in 0..10_000 {
        match windows.iter().filter_map(|w| w.end_of_active(opens)).max() {
            Some(end) if end > opens => opens = end,
            _ => break,
        }
    }
    Some(Frozen { window, opens })
}

impl Window {
    /// When the occurrence of this window that holds `now` ends; `None` when none holds.
    fn end_of_active(&self, now: Timestamp) -> Option<Timestamp> {
        match &self.when {
            When::Range { from, to } => (*from <= now && now < *to).then_some(*to),
            When::Recurring { cron, duration } => {
                let duration = jiff::SignedDuration::try_from(*duration).ok()?;
                // The latest start at or before `now` within `duration`, minute by minute.
                let now_zoned = now.to_zoned(self.zone.clone());
                let minute = now_zoned
                    .round(jiff::ZonedRound::new().smallest(jiff::Unit::Minute).mode(jiff::RoundMode::Trunc))
                    .ok()?;
                let minutes = duration.as_secs() / 60 + 1;
                (0..minutes)
                    .filter_map(|back| minute.checked_sub(jiff::SignedDuration::from_mins(back)).ok())
                    .find(|start| cron.matches(start))
                    .map(|start| start.timestamp().checked_add(duration).unwrap_or(Timestamp::MAX))
                    .filter(|end| *end > now)
            }
        }
    }

    /// The window as written, with its reason.
    pub fn describe(&self) -> String {
        match &self.reason {
            Some(reason) => format!("{}: {reason}", self.written),
            None => self.written.clone(),
        }
    }
}

/// When a timestamp is, for people: in the window's zone, and in UTC.
pub fn show_time(at: Timestamp, zone: &TimeZone) -> String {
    let local = at.to_zoned(zone.clone());
    let name = zone.iana_name().unwrap_or("UTC");
    if name == "UTC" {
        format!("{} UTC", local.strftime("%Y-%m-%d %H:%M"))
    } else {
        format!("{} {name} ({}Z)", local.strftime("%Y-%m-%d %H:%M"), at.strftime("%Y-%m-%dT%H:%M"))
    }
}

/// A duration for people: `24h`, `1h 30m`.
pub fn show_duration(duration: std::time::Duration) -> String {
    jiff::SignedDuration::try_from(duration).map(|d| format!("{d:#}")).unwrap_or_else(|_| format!("{duration:?}"))
}

/// A time zone by its IANA name (`Europe/Berlin`, `UTC`).
pub fn zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name)
        .map_err(|_| format!("`{name}` is not a time zone name (e.g. UTC, Europe/Berlin, America/New_York)"))
}

/// A date and time in `zone` (`2026-12-23T18:00`, `2026-12-23 18:00`, `2026-12-23`), or an
/// instant with its offset (`2026-12-23T18:00:00+01:00`, `...Z`).
pub fn time(text: &str, zone: &TimeZone) -> Result<Timestamp, String> {
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    let civil: civil::DateTime = text
        .parse::<civil::DateTime>()
        .or_else(|_| text.parse::<civil::Date>().map(|d| d.to_datetime(civil::Time::midnight())))
        .map_err(|_| format!("`{text}` is not a date and time (write 2026-12-23T18:00, or 2026-12-23)"))?;
    zone.to_ambiguous_zoned(civil)
        .compatible()
        .map(|z| z.timestamp())
        .map_err(|e| format!("`{text}` is not a time in that zone: {e}"))
}

/// A five-field cron schedule: minute, hour, day of month, month, day of week (0 or 7 is
/// Sunday; `MON`..`SUN`, `JAN`..`DEC`), each `*`, `N`, `A-B`, a list, and `/STEP`. As in cron,
/// when both day fields are restricted a day matching either matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_any: bool,
    weekdays_any: bool,
}

impl Cron {
    pub fn parse(text: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(format!(
                "`{text}` has {} fields; a cron schedule has five: minute hour day-of-month month day-of-week \
                 (e.g. `0 12 * * FRI`)",
                fields.len()
            ));
        };
        const MONTHS: &[&str] = &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
        const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
        let weekdays = field(weekday, 0, 7, DAYS, 0)?;
        Ok(Cron {
            minutes: field(minute, 0, 59, &[], 0)?,
            hours: field(hour, 0, 23, &[], 0)?,
            days: field(day, 1, 31, &[], 1)?,
            months: field(month, 1, 12, MONTHS, 1)?,
            // 7 is Sunday too.
            weekdays: (weekdays | (weekdays >> 7)) & 0x7f,
            days_any: day == "*",
            weekdays_any: weekday == "*",
        })
    }

    pub fn matches(&self, at: &Zoned) -> bool {
        let bit = |set: u64, n: i8| set & (1 << n) != 0;
        let day = bit(self.days, at.day());
        let weekday = bit(self.weekdays, at.weekday().to_sunday_zero_offset());
        let day_matches = match (self.days_any, self.weekdays_any) {
            (false, false) => day || weekday,
            _ => day && weekday,
        };
        bit(self.minutes, at.minute()) && bit(self.hours, at.hour()) && bit(self.months, at.month()) && day_matches
    }
}

/// One cron field as a bit set: `*`, `N`, `A-B`, lists, `/STEP`, and names (`names[i]` is
/// `first + i`).
fn field(text: &str, min: u8, max: u8, names: &[&str], first: u8) -> Result<u64, String> {
    let value = |part: &str| -> Result<u8, String> {
        let upper = part.to_ascii_uppercase();
        if let Some(i) = names.iter().position(|n| *n == upper) {
            return Ok(first + i as u8);
        }
        part.parse::<u8>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| format!("`{part}` in `{text}` is not between {min} and {max}"))
    };
    let mut set = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                (range, step.parse::<u8>().ok().filter(|s| *s > 0).ok_or_else(|| format!("`/{step}` is not a step"))?)
            }
            None => (part, 1),
        };
        let (low, high) = match range {
            "*" => (min, max),
            _ => match range.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                None if step > 1 => (value(range)?, max),
                None => (value(range)?, value(range)?),
            },
        };
        if low > high {
            return Err(format!("`{range}` in `{text}` runs backwards"));
        }
        set |= (low..=high).step_by(usize::from(step)).fold(0, |set, n| set | (1u64 << n));
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a timestamp")
    }

    fn recurring(cron: &str, hours: u64, zone: &str) -> Window {
        Window {
            when: When::Recurring {
                cron: Cron::parse(cron).expect("parses"),
                duration: std::time::Duration::from_secs(hours * 3600),
            },
            reason: None,
            zone: super::zone(zone).expect("a zone"),
            written: cron.to_string(),
        }
    }

    #[test]
    fn a_weekly_window_holds_from_its_start_for_its_duration_in_its_zone() {
        // Fridays from 12:00 Berlin time, 68 hours: until Monday 08:00.
        let windows = [recurring("0 12 * * FRI", 68, "Europe/Berlin")];
        // 2026-12-04 is a Friday; Berlin is UTC+1 in December.
        assert!(frozen_at(&windows, at("2026-12-04T10:59:00Z")).is_none(), "11:59 in Berlin");
        let frozen = frozen_at(&windows, at("2026-12-04T11:00:00Z")).expect("12:00 in Berlin");
        assert_eq!(frozen.opens, at("2026-12-07T07:00:00Z"), "Monday 08:00 in Berlin");
        assert!(frozen_at(&windows, at("2026-12-06T20:00:00Z")).is_some(), "Sunday");
        assert!(frozen_at(&windows, at("2026-12-07T07:00:00Z")).is_none(), "Monday 08:00: open");
        assert_eq!(show_time(frozen.opens, &windows[0].zone), "2026-12-07 08:00 Europe/Berlin (2026-12-07T07:00Z)");
    }

    #[test]
    fn windows_that_follow_one_another_open_when_the_last_ends() {
        let zone = super::zone("UTC").expect("UTC");
        let range = |from: &str, to: &str| Window {
            when: When::Range { from: time(from, &zone).expect("from"), to: time(to, &zone).expect("to") },
            reason: Some("holidays".into()),
            zone: zone.clone(),
            written: format!("{from} to {to}"),
        };
        let windows = [range("2026-12-23T18:00", "2026-12-27"), range("2026-12-26", "2027-01-04T08:00")];
        let frozen = frozen_at(&windows, at("2026-12-24T12:00:00Z")).expect("frozen");
        assert_eq!(frozen.opens, at("2027-01-04T08:00:00Z"));
        assert_eq!(frozen.window.describe(), "2026-12-23T18:00 to 2026-12-27: holidays");
        assert!(frozen_at(&windows, at("2026-12-23T17:59:59Z")).is_none());
        assert!(frozen_at(&windows, at("2027-01-04T08:00:00Z")).is_none(), "`to` is excluded");
    }

    #[test]
    fn cron_fields_read_as_cron_reads_them() {
        let cron = Cron::parse("*/15 9-17 * * MON-FRI").expect("parses");
        let zoned = |text: &str| text.parse::<Timestamp>().expect("ts").to_zoned(TimeZone::UTC);
        assert!(cron.matches(&zoned("2026-12-07T09:45:00Z")), "Monday 09:45");
        assert!(!cron.matches(&zoned("2026-12-07T09:50:00Z")), "not a quarter");
        assert!(!cron.matches(&zoned("2026-12-06T10:00:00Z")), "Sunday");
        let sunday = Cron::parse("0 0 * * 7").expect("7 is Sunday");
        assert!(sunday.matches(&zoned("2026-12-06T00:00:00Z")));
        // Both day fields restricted: either matches.
        let either = Cron::parse("0 0 1 * MON").expect("parses");
        assert!(either.matches(&zoned("2026-12-01T00:00:00Z")), "the 1st, a Tuesday");
        assert!(either.matches(&zoned("2026-12-07T00:00:00Z")), "a Monday");
        assert!(!either.matches(&zoned("2026-12-08T00:00:00Z")));
        for bad in ["0 12 * *", "60 * * * *", "0 12 * * FUN", "0 5-3 * * *", "*/0 * * * *"] {
            assert!(Cron::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_are_read_in_the_windows_zone_unless_they_carry_an_offset() {
        let berlin = zone("Europe/Berlin").expect("zone");
        assert_eq!(time("2026-12-23T18:00", &berlin), Ok(at("2026-12-23T17:00:00Z")));
        assert_eq!(time("2026-12-23", &berlin), Ok(at("2026-12-22T23:00:00Z")));
        assert_eq!(time("2026-12-23T18:00:00Z", &berlin), Ok(at("2026-12-23T18:00:00Z")));
        assert!(time("23.12.2026", &berlin).is_err());
        assert!(zone("Mars/Olympus").is_err());
    }
}
