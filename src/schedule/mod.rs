//! Schedules: the cron dialect ([`cron`]), the time zone they are read in, the clock the
//! service runs on, and the spread that keeps many installations with the same cron from
//! hitting the same source in the same second (the original product's fix M8018).

pub mod cron;
mod cron_field;
mod fire_times;

use std::time::{Duration, Instant};

use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

pub use cron::{CronError, CronExpr};

/// The time zone named in config, or the system's.
pub fn time_zone(name: Option<&str>) -> Result<TimeZone, String> {
    match name {
        Some(name) => TimeZone::get(name).map_err(|e| {
            format!("unknown time zone \"{name}\" ({e}): use an IANA name such as Europe/Brussels")
        }),
        None => Ok(TimeZone::system()),
    }
}

/// A stage's schedule: its cron expression in a time zone, each fire delayed by the
/// deterministic spread offset.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub expr: CronExpr,
    pub zone: TimeZone,
    /// The delay added to every fire time.
    pub offset: Duration,
}

impl Schedule {
    /// `expr` in `zone`, spread over `window` (capped at half the expression's shortest
    /// interval) by a hash of `host` and `key` (pipeline and stage).
    pub fn new(
        expr: CronExpr,
        zone: TimeZone,
        window: Duration,
        host: &str,
        key: &str,
    ) -> Schedule {
        let now = Timestamp::now().to_zoned(zone.clone());
        let cap = expr
            .shortest_interval(&now)
            .map(|i| i / 2)
            .unwrap_or(window);
        let window = window.min(cap);
        Schedule {
            offset: spread_offset(host, key, window),
            expr,
            zone,
        }
    }

    /// The next fire (cron time plus offset) strictly after `now`, with the cron time it
    /// belongs to.
    pub fn next_fire(&self, now: Timestamp) -> Option<Fire> {
        // A cron time up to `offset` ago may still be due.
        let back = jiff::SignedDuration::try_from(self.offset).ok()?;
        let from = now.checked_sub(back).ok()?.to_zoned(self.zone.clone());
        let mut cron_time = self.expr.next_after(&from)?;
        loop {
            let at = cron_time.timestamp().checked_add(back).ok()?;
            if at > now {
                return Some(Fire { cron_time, at });
            }
            cron_time = self.expr.next_after(&cron_time)?;
        }
    }
}

/// One fire of a schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct Fire {
    /// The time the expression names.
    pub cron_time: Zoned,
    /// When it runs: the cron time plus the spread offset.
    pub at: Timestamp,
}

/// The spread offset of `key` on `host`: the same every time, different between hosts.
pub fn spread_offset(host: &str, key: &str, window: Duration) -> Duration {
    let millis = window.as_millis() as u64;
    if millis == 0 {
        return Duration::ZERO;
    }
    let hash = xxhash_rust::xxh3::xxh3_64(format!("{host}\n{key}").as_bytes());
    Duration::from_millis(hash % millis)
}

/// This machine's host name, for the spread ("localhost" when it cannot be read).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The clock the service schedules by. In production it is the system clock. Tests start
/// the service with `UCM_CLOCK_SPEED=N` (N times faster, from the real time at start) so a
/// minute's schedule fires in seconds through the same scheduling code.
#[derive(Clone, Debug)]
pub struct Clock {
    started: Instant,
    started_at: Timestamp,
    speed: f64,
}

impl Clock {
    pub fn system() -> Clock {
        Clock::with_speed(1.0)
    }

    /// The system clock, or a faster one when `UCM_CLOCK_SPEED` is set (tests only).
    pub fn from_env() -> Clock {
        let speed = std::env::var("UCM_CLOCK_SPEED")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| *s >= 1.0)
            .unwrap_or(1.0);
        Clock::with_speed(speed)
    }

    fn with_speed(speed: f64) -> Clock {
        Clock {
            started: Instant::now(),
            started_at: Timestamp::now(),
            speed,
        }
    }

    pub fn now(&self) -> Timestamp {
        if self.speed == 1.0 {
            return Timestamp::now();
        }
        let elapsed = self.started.elapsed().mul_f64(self.speed);
        self.started_at
            .checked_add(jiff::SignedDuration::try_from(elapsed).unwrap_or_default())
            .unwrap_or(self.started_at)
    }

    /// Sleeps until the clock reads `at` (in slices, so a changed system clock is noticed).
    pub async fn sleep_until(&self, at: Timestamp) {
        loop {
            let now = self.now();
            if now >= at {
                return;
            }
            let left = Duration::try_from(at.duration_since(now)).unwrap_or_default();
            let real = left.div_f64(self.speed).min(Duration::from_secs(30));
            tokio::time::sleep(real.max(Duration::from_millis(1))).await;
        }
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_offset_is_stable_per_host_and_differs_between_hosts() {
        let window = Duration::from_secs(60);
        let a = spread_offset("pbx-1", "default/fetch", window);
        assert_eq!(a, spread_offset("pbx-1", "default/fetch", window));
        assert!(a < window);
        let offsets: std::collections::HashSet<_> = (0..20)
            .map(|i| spread_offset(&format!("pbx-{i}"), "default/fetch", window))
            .collect();
        assert!(offsets.len() > 15, "{offsets:?}");
        assert_eq!(spread_offset("pbx-1", "x", Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn the_spread_is_capped_at_half_the_shortest_interval() {
        let zone = TimeZone::get("Europe/Brussels").unwrap();
        let every_minute = CronExpr::parse("* * * * ?").unwrap();
        for host in ["a", "b", "c", "d", "e"] {
            let s = Schedule::new(
                every_minute.clone(),
                zone.clone(),
                Duration::from_secs(600),
                host,
                "p",
            );
            assert!(s.offset < Duration::from_secs(30), "{:?}", s.offset);
        }
    }

    #[test]
    fn the_next_fire_is_the_cron_time_plus_the_offset() {
        let zone = TimeZone::get("Europe/Brussels").unwrap();
        let schedule = Schedule {
            expr: CronExpr::parse("0 23 ? * *").unwrap(),
            zone: zone.clone(),
            offset: Duration::from_secs(17),
        };
        let at = |h, m, s| {
            jiff::civil::date(2026, 11, 26)
                .at(h, m, s, 0)
                .to_zoned(zone.clone())
                .unwrap()
                .timestamp()
        };
        let fire = schedule.next_fire(at(22, 0, 0)).unwrap();
        assert_eq!(fire.at, at(23, 0, 17));
        // Between the cron time and its delayed fire, that fire is still the next one.
        assert_eq!(schedule.next_fire(at(23, 0, 5)).unwrap().at, at(23, 0, 17));
        assert!(schedule.next_fire(at(23, 0, 17)).unwrap().at > at(23, 59, 0));
    }

    #[test]
    fn a_service_schedule_keeps_firing_through_the_autumn_clock_change() {
        // The service follows `next_fire` from fire to fire; it used to find no further
        // fire time in the repeated hour and stop until a restart.
        let zone = TimeZone::get("Europe/Brussels").unwrap();
        let schedule = Schedule {
            expr: CronExpr::parse("*/15 * ? * *").unwrap(),
            zone: zone.clone(),
            offset: Duration::from_secs(7),
        };
        let mut now: Timestamp = "2026-10-25T02:20+02:00[Europe/Brussels]"
            .parse::<Zoned>()
            .unwrap()
            .timestamp();
        let mut fired = Vec::new();
        for _ in 0..8 {
            let fire = schedule.next_fire(now).expect("a next fire");
            fired.push(
                fire.at
                    .to_zoned(zone.clone())
                    .strftime("%H:%M:%S %Z")
                    .to_string(),
            );
            now = fire.at;
        }
        assert_eq!(
            fired,
            [
                "02:30:07 CEST",
                "02:45:07 CEST",
                "03:00:07 CET",
                "03:15:07 CET",
                "03:30:07 CET",
                "03:45:07 CET",
                "04:00:07 CET",
                "04:15:07 CET"
            ]
        );
    }
}
