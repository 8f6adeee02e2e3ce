//! Fire times of a [`CronExpr`] in a time zone, daylight-saving changes included.
//!
//! The expression names wall-clock times. The search finds the next matching wall-clock
//! minute (a plain calendar walk with no time zone in it), then places it on the time line
//! by one rule:
//! - a wall-clock time that exists once is that instant;
//! - a wall-clock time that happens twice (the autumn change) is its first occurrence, so
//!   the repeated hour fires once;
//! - a wall-clock time that does not exist (the spring gap) is the instant the gap ends:
//!   every fire time inside the gap runs once, at the first instant after it.
//!
//! This placement never goes backwards as the wall-clock time moves forward, so the next
//! fire after an instant is the first matching wall-clock time whose instant lies after it:
//! the search is unbounded in the number of repeated or skipped candidates and always ends
//! (every checked expression fires at least once in any 8 years; [`CronExpr::parse`]
//! refuses expressions that never fire).

use std::time::Duration;

use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, Zoned};

use super::cron::{CronExpr, ValueSets};

/// How far the calendar walk looks ahead before giving up: every checked expression fires
/// within 8 years (February 29th across a century year that is not a leap year), so this is
/// reached only at the end of the calendar (year 9999).
const LOOKAHEAD_YEARS: i16 = 9;

impl CronExpr {
    /// The first fire time strictly after `after`, in `after`'s time zone, by the rule in
    /// this module's documentation. `None` only past the end of the calendar (year 9999).
    pub fn next_after(&self, after: &Zoned) -> Option<Zoned> {
        let zone = after.time_zone();
        let civil = after.datetime();
        // Fires are on whole minutes: start at the minute after `after`'s wall-clock time.
        let minute = civil.date().at(civil.hour(), civil.minute(), 0, 0);
        let mut candidate = self.sets.next_matching(
            minute
                .checked_add(jiff::SignedDuration::from_mins(1))
                .ok()?,
        )?;
        loop {
            // Candidates inside a repeated hour that `after` is in the second pass of lie
            // before `after`; each is skipped, and the walk goes on past the repeated hour.
            let at = place(zone, candidate)?;
            if at > after.timestamp() {
                return Some(at.to_zoned(zone.clone()));
            }
            let next = candidate
                .checked_add(jiff::SignedDuration::from_mins(1))
                .ok()?;
            candidate = self.sets.next_matching(next)?;
        }
    }

    /// The next `count` fire times after `after`.
    pub fn upcoming(&self, after: &Zoned, count: usize) -> Vec<Zoned> {
        let mut times = Vec::with_capacity(count);
        let mut from = after.clone();
        while times.len() < count {
            match self.next_after(&from) {
                Some(next) => {
                    from = next.clone();
                    times.push(next);
                }
                None => break,
            }
        }
        times
    }

    /// The shortest time between two fires, found over the next 200 fires from `after`.
    pub fn shortest_interval(&self, after: &Zoned) -> Option<Duration> {
        let times = self.upcoming(after, 200);
        times
            .windows(2)
            .filter_map(|w| {
                let seconds = w[1].timestamp().as_second() - w[0].timestamp().as_second();
                u64::try_from(seconds).ok().map(Duration::from_secs)
            })
            .min()
    }

    /// Whether the wall-clock time `at` (whole minutes) is one the expression names.
    pub fn matches(&self, at: DateTime) -> bool {
        self.sets.day_matches(at.date())
            && has(self.sets.hours, at.hour() as u32)
            && has(self.sets.minutes, at.minute() as u32)
            && at.second() == 0
            && at.subsec_nanosecond() == 0
    }
}

/// The instant a matching wall-clock time fires at in `zone` (see the module's rule).
fn place(zone: &TimeZone, at: DateTime) -> Option<Timestamp> {
    match zone.to_ambiguous_timestamp(at).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(at).ok(),
        // `before` is the offset in force before the change: the first occurrence.
        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(at).ok(),
        // Read with the offset after the change, the time lies before the change; the
        // change itself is the first instant after the gap.
        AmbiguousOffset::Gap { after, .. } => {
            let early = after.to_timestamp(at).ok()?;
            zone.following(early).next().map(|t| t.timestamp())
        }
    }
}

fn has(bits: u64, value: u32) -> bool {
    bits & (1 << value) != 0
}

/// The smallest value in `bits` at or above `from`.
fn first_at_or_above(bits: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let above = bits >> from;
    (above != 0).then(|| from + above.trailing_zeros())
}

impl ValueSets {
    fn day_matches(&self, date: Date) -> bool {
        if !has(self.months, date.month() as u32) {
            return false;
        }
        match (self.days, self.weekdays) {
            (Some(days), _) => has(days, date.day() as u32),
            (None, Some(weekdays)) => has(weekdays, date.weekday().to_sunday_one_offset() as u32),
            (None, None) => true,
        }
    }

    /// The first wall-clock minute at or after `from` (a whole minute) that matches: a walk
    /// over the calendar, a month at a time where the month does not match.
    fn next_matching(&self, from: DateTime) -> Option<DateTime> {
        let limit = from.year().checked_add(LOOKAHEAD_YEARS)?;
        let mut date = from.date();
        let mut earliest = (from.hour() as u32, from.minute() as u32);
        while date.year() <= limit {
            if !has(self.months, date.month() as u32) {
                date = date
                    .first_of_month()
                    .checked_add(jiff::Span::new().months(1))
                    .ok()?;
                earliest = (0, 0);
                continue;
            }
            if self.day_matches(date)
                && let Some((hour, minute)) = self.first_time_of_day(earliest)
            {
                return date.at(hour as i8, minute as i8, 0, 0).into();
            }
            date = date.tomorrow().ok()?;
            earliest = (0, 0);
        }
        None
    }

    /// The first (hour, minute) of a day at or after `earliest`.
    fn first_time_of_day(&self, (hour, minute): (u32, u32)) -> Option<(u32, u32)> {
        let first_minute = first_at_or_above(self.minutes, 0)?;
        let h = first_at_or_above(self.hours, hour)?;
        if h > hour {
            return Some((h, first_minute));
        }
        match first_at_or_above(self.minutes, minute) {
            Some(m) => Some((h, m)),
            None => first_at_or_above(self.hours, hour + 1).map(|h| (h, first_minute)),
        }
    }
}

#[cfg(test)]
#[path = "fire_times_tests.rs"]
mod tests;
