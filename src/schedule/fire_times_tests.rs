//! Fire times: the documented examples, the daylight-saving rule for every shape of
//! expression, the schedules that used to stop at the autumn change (each pinned as it was
//! reported), and property tests that compare the search with a minute-by-minute reading
//! of the rule across every clock change of 2026-2030 in zones with 60- and 30-minute
//! shifts.

use super::*;
use jiff::civil::date;
use proptest::prelude::*;

fn brussels(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> Zoned {
    date(y, mo, d)
        .at(h, mi, 0, 0)
        .to_zoned(TimeZone::get("Europe/Brussels").unwrap())
        .unwrap()
}

fn next(expr: &str, after: &Zoned, count: usize) -> Vec<String> {
    CronExpr::parse(expr)
        .unwrap()
        .upcoming(after, count)
        .iter()
        .map(|t| t.strftime("%Y-%m-%d %H:%M %Z").to_string())
        .collect()
}

#[test]
fn the_original_documentations_examples_mean_what_they_say() {
    let t = brussels(2026, 11, 26, 22, 58);
    assert_eq!(
        next("0 23 ? * *", &t, 2),
        ["2026-11-26 23:00 CET", "2026-11-27 23:00 CET"]
    );
    assert_eq!(
        next("* * * * ?", &t, 3),
        [
            "2026-11-26 22:59 CET",
            "2026-11-26 23:00 CET",
            "2026-11-26 23:01 CET"
        ]
    );
    assert_eq!(
        next("1,30 * * * ?", &t, 3),
        [
            "2026-11-26 23:01 CET",
            "2026-11-26 23:30 CET",
            "2026-11-27 00:01 CET"
        ]
    );
    assert_eq!(
        next("0/5 * * * ?", &t, 3),
        [
            "2026-11-26 23:00 CET",
            "2026-11-26 23:05 CET",
            "2026-11-26 23:10 CET"
        ]
    );
    // "* 0-23 ? * *" is every minute of every hour: every minute.
    assert_eq!(
        next("* 0-23 ? * *", &t, 2),
        ["2026-11-26 22:59 CET", "2026-11-26 23:00 CET"]
    );
}

#[test]
fn day_of_week_counts_from_sunday_and_names_work() {
    // 2026-11-26 is a Thursday.
    let t = brussels(2026, 11, 26, 12, 0);
    assert_eq!(next("0 8 ? * 1", &t, 1), ["2026-11-29 08:00 CET"]);
    assert_eq!(next("0 8 ? * SUN", &t, 1), ["2026-11-29 08:00 CET"]);
    assert_eq!(
        next("0 8 ? * 2-6", &t, 2),
        ["2026-11-27 08:00 CET", "2026-11-30 08:00 CET"]
    );
    assert_eq!(next("0 8 ? * mon-fri", &t, 1), ["2026-11-27 08:00 CET"]);
    assert_eq!(next("0 0 1 JAN ?", &t, 1), ["2027-01-01 00:00 CET"]);
    assert_eq!(next("30 6 15 * ?", &t, 1), ["2026-12-15 06:30 CET"]);
}

#[test]
fn a_fire_time_in_the_spring_gap_runs_at_the_first_instant_after_it() {
    // 2026-03-29: Brussels jumps from 02:00 to 03:00.
    let t = brussels(2026, 3, 28, 12, 0);
    assert_eq!(
        next("30 2 ? * *", &t, 3),
        [
            "2026-03-29 03:00 CEST",
            "2026-03-30 02:30 CEST",
            "2026-03-31 02:30 CEST"
        ]
    );
}

#[test]
fn a_wall_clock_time_that_happens_twice_in_autumn_runs_once() {
    // 2026-10-25: Brussels goes back from 03:00 CEST to 02:00 CET.
    let t = brussels(2026, 10, 24, 12, 0);
    assert_eq!(
        next("30 2 ? * *", &t, 2),
        ["2026-10-25 02:30 CEST", "2026-10-26 02:30 CET"]
    );
    assert_eq!(
        next("15,45 2 ? * *", &t, 3),
        [
            "2026-10-25 02:15 CEST",
            "2026-10-25 02:45 CEST",
            "2026-10-26 02:15 CET"
        ]
    );
}

#[test]
fn the_shortest_interval_is_measured_on_the_fire_times() {
    let t = brussels(2026, 11, 26, 12, 0);
    let every = |e: &str| CronExpr::parse(e).unwrap().shortest_interval(&t).unwrap();
    assert_eq!(every("* * * * ?"), Duration::from_secs(60));
    assert_eq!(every("1,30 * * * ?"), Duration::from_secs(29 * 60));
    // Measured on real fire times: the spring day of 23 hours is the shortest.
    assert_eq!(every("0 23 ? * *"), Duration::from_secs(23 * 3600));
}

fn zoned(zone: &str, y: i16, mo: i8, d: i8, h: i8, mi: i8) -> Zoned {
    date(y, mo, d)
        .at(h, mi, 0, 0)
        .to_zoned(TimeZone::get(zone).unwrap())
        .unwrap()
}

/// The instant `text` names, e.g. "2026-10-25T02:30+02:00[Europe/Brussels]" (the offset
/// picks the occurrence of a repeated time).
fn at(text: &str) -> Zoned {
    text.parse().unwrap()
}

fn fires(expr: &str, after: &Zoned, count: usize) -> Vec<String> {
    CronExpr::parse(expr)
        .unwrap()
        .upcoming(after, count)
        .iter()
        .map(|t| t.strftime("%Y-%m-%d %H:%M %:z").to_string())
        .collect()
}

#[test]
fn every_quarter_hour_goes_on_after_the_repeated_autumn_hour() {
    // Reported: from 02:30 CEST it fired at 02:45 CEST and never again.
    let t = at("2026-10-25T02:30+02:00[Europe/Brussels]");
    assert_eq!(
        fires("*/15 * ? * *", &t, 4),
        [
            "2026-10-25 02:45 +02:00",
            "2026-10-25 03:00 +01:00",
            "2026-10-25 03:15 +01:00",
            "2026-10-25 03:30 +01:00"
        ]
    );
}

#[test]
fn every_minute_goes_on_after_the_repeated_autumn_hour() {
    // Reported: fired until 02:59 CEST, then never.
    let t = at("2026-10-25T02:55+02:00[Europe/Brussels]");
    assert_eq!(
        fires("* * * * ?", &t, 6),
        [
            "2026-10-25 02:56 +02:00",
            "2026-10-25 02:57 +02:00",
            "2026-10-25 02:58 +02:00",
            "2026-10-25 02:59 +02:00",
            "2026-10-25 03:00 +01:00",
            "2026-10-25 03:01 +01:00"
        ]
    );
    // From inside the second pass the next fire is the first after the repeated hour.
    let second_pass = at("2026-10-25T02:10+01:00[Europe/Brussels]");
    assert_eq!(
        fires("* * * * ?", &second_pass, 1),
        ["2026-10-25 03:00 +01:00"]
    );
}

#[test]
fn every_five_minutes_in_new_york_has_a_fire_time_at_the_autumn_change() {
    // Reported: no fire time at all from 01:55 EDT.
    let t = at("2026-11-01T01:55-04:00[America/New_York]");
    assert_eq!(
        fires("*/5 * * * ?", &t, 2),
        ["2026-11-01 02:00 -05:00", "2026-11-01 02:05 -05:00"]
    );
}

#[test]
fn a_yearly_schedule_in_the_repeated_hour_fires_again_the_next_year() {
    // Reported: six fires on 2026-10-25, then never in any later year.
    let t = zoned("Europe/Brussels", 2026, 10, 24, 12, 0);
    let times = fires("0/10 2 25 10 ?", &t, 8);
    assert_eq!(
        times[..6],
        [
            "2026-10-25 02:00 +02:00",
            "2026-10-25 02:10 +02:00",
            "2026-10-25 02:20 +02:00",
            "2026-10-25 02:30 +02:00",
            "2026-10-25 02:40 +02:00",
            "2026-10-25 02:50 +02:00",
        ]
    );
    assert_eq!(
        times[6..],
        ["2027-10-25 02:00 +02:00", "2027-10-25 02:10 +02:00"]
    );
}

#[test]
fn every_minute_goes_on_across_lord_howes_half_hour_change() {
    // Lord Howe Island goes back from 02:00 (+11:00) to 01:30 (+10:30).
    let t = at("2026-04-05T01:55+11:00[Australia/Lord_Howe]");
    assert_eq!(
        fires("* * * * ?", &t, 6),
        [
            "2026-04-05 01:56 +11:00",
            "2026-04-05 01:57 +11:00",
            "2026-04-05 01:58 +11:00",
            "2026-04-05 01:59 +11:00",
            "2026-04-05 02:00 +10:30",
            "2026-04-05 02:01 +10:30"
        ]
    );
}

#[test]
fn every_shape_of_fire_time_in_the_spring_gap_runs_once_at_the_first_instant_after_it() {
    // 2026-03-29: Brussels jumps from 02:00 CET to 03:00 CEST.
    let t = zoned("Europe/Brussels", 2026, 3, 29, 1, 0);
    let cases: [(&str, &[&str]); 5] = [
        (
            "15,45 2 ? * *",
            &[
                "2026-03-29 03:00 +02:00",
                "2026-03-30 02:15 +02:00",
                "2026-03-30 02:45 +02:00",
            ],
        ),
        (
            "* 2 ? * *",
            &[
                "2026-03-29 03:00 +02:00",
                "2026-03-30 02:00 +02:00",
                "2026-03-30 02:01 +02:00",
            ],
        ),
        (
            "30 * ? * *",
            &[
                "2026-03-29 01:30 +01:00",
                "2026-03-29 03:00 +02:00",
                "2026-03-29 03:30 +02:00",
            ],
        ),
        // 02:00 moves to 03:00, which the expression also names: once.
        (
            "0 * ? * *",
            &[
                "2026-03-29 03:00 +02:00",
                "2026-03-29 04:00 +02:00",
                "2026-03-29 05:00 +02:00",
            ],
        ),
        (
            "*/20 1-3 ? * *",
            &[
                "2026-03-29 01:20 +01:00",
                "2026-03-29 01:40 +01:00",
                "2026-03-29 03:00 +02:00",
            ],
        ),
    ];
    for (expr, expected) in cases {
        assert_eq!(fires(expr, &t, 3), expected, "{expr}");
    }
    // The same in Lord Howe's half-hour gap (02:00 -> 02:30 on 2026-10-04).
    let lord_howe = zoned("Australia/Lord_Howe", 2026, 10, 4, 1, 0);
    assert_eq!(
        fires("10,40 2 ? * *", &lord_howe, 3),
        [
            "2026-10-04 02:30 +11:00",
            "2026-10-04 02:40 +11:00",
            "2026-10-05 02:10 +11:00"
        ]
    );
}

// The minute-by-minute reading of the rule the search implements: a whole-minute instant
// fires when its wall-clock time matches and is not the second occurrence of a repeated
// time; the end of a spring gap fires when a wall-clock minute inside the gap matches.
fn oracle(expr: &CronExpr, zone: &TimeZone, from: Timestamp, to: Timestamp) -> Vec<Timestamp> {
    let mut fires = Vec::new();
    let mut minute = from.as_second().div_euclid(60) * 60 + 60;
    while minute <= to.as_second() {
        let instant = Timestamp::from_second(minute).unwrap();
        let civil = zone.to_datetime(instant);
        let first_occurrence = match zone.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Fold { before, .. } => zone.to_offset(instant) == before,
            _ => true,
        };
        if expr.matches(civil) && first_occurrence {
            fires.push(instant);
        }
        minute += 60;
    }
    for transition in zone.following(
        from.checked_sub(jiff::SignedDuration::from_secs(1))
            .unwrap(),
    ) {
        let change = transition.timestamp();
        if change > to {
            break;
        }
        if change <= from {
            continue;
        }
        let before = zone.to_offset(
            change
                .checked_sub(jiff::SignedDuration::from_secs(1))
                .unwrap(),
        );
        let after = transition.offset();
        if after <= before {
            continue;
        }
        let (mut wall, gap_end) = (before.to_datetime(change), after.to_datetime(change));
        while wall < gap_end {
            if expr.matches(wall) {
                fires.push(change);
                break;
            }
            wall = wall
                .checked_add(jiff::SignedDuration::from_mins(1))
                .unwrap();
        }
    }
    fires.sort();
    fires.dedup();
    fires
}

/// The search's fires in (from, to], following `next_after` from fire to fire; it must
/// never run out.
fn searched(expr: &CronExpr, zone: &TimeZone, from: Timestamp, to: Timestamp) -> Vec<Timestamp> {
    let mut fires = Vec::new();
    let mut at = from.to_zoned(zone.clone());
    loop {
        let next = expr
            .next_after(&at)
            .unwrap_or_else(|| panic!("\"{}\" has no fire time after {at}", expr.as_str()));
        assert!(
            next.timestamp() > at.timestamp(),
            "{} after {at}: {next}",
            expr.as_str()
        );
        if next.timestamp() > to {
            return fires;
        }
        fires.push(next.timestamp());
        at = next;
    }
}

const ZONES: [&str; 7] = [
    "Europe/Brussels",
    "America/New_York",
    "Australia/Lord_Howe", // 30-minute shifts
    "Australia/Sydney",
    "Pacific/Chatham", // 60-minute shifts at a :45 offset
    "America/Santiago",
    "Asia/Tokyo", // no changes
];

/// Every clock change of 2026-2030 in `zone`.
fn transitions(zone: &TimeZone) -> Vec<Timestamp> {
    let start: Timestamp = "2026-01-01T00:00Z".parse().unwrap();
    let end: Timestamp = "2031-01-01T00:00Z".parse().unwrap();
    zone.following(start)
        .map(|t| t.timestamp())
        .take_while(|t| *t < end)
        .collect()
}

fn check_around(expr: &CronExpr, zone: &TimeZone, start: Timestamp) {
    let end = start
        .checked_add(jiff::SignedDuration::from_hours(6))
        .unwrap();
    let found = searched(expr, zone, start, end);
    let expected = oracle(expr, zone, start, end);
    let show = |v: &[Timestamp]| -> Vec<String> {
        v.iter()
            .map(|t| t.to_zoned(zone.clone()).to_string())
            .collect()
    };
    assert_eq!(
        show(&found),
        show(&expected),
        "\"{}\" from {}",
        expr.as_str(),
        start.to_zoned(zone.clone())
    );
}

#[test]
fn the_reported_shapes_agree_with_the_rule_around_every_clock_change_of_2026_to_2030() {
    let shapes = [
        "* * * * ?",
        "*/15 * ? * *",
        "*/5 * * * ?",
        "0/10 2 25 10 ?",
        "15,45 2 ? * *",
        "* 2 ? * *",
        "30 * ? * *",
        "0 * ? * *",
        "59 1 ? * *",
        "0 3 ? * *",
        "45 1-3 ? * *",
        "0/7 0-4 * * ?",
        "30 2 ? * SUN",
    ];
    let offsets_min = [
        -90, -61, -60, -31, -30, -1, 0, 1, 29, 30, 31, 59, 60, 61, 90,
    ];
    for zone_name in ZONES {
        let zone = TimeZone::get(zone_name).unwrap();
        let changes = transitions(&zone);
        assert!(
            zone_name == "Asia/Tokyo" || changes.len() >= 8,
            "{zone_name}: {changes:?}"
        );
        for shape in shapes {
            let expr = CronExpr::parse(shape).unwrap();
            for change in &changes {
                for minutes in offsets_min {
                    let start = change
                        .checked_add(jiff::SignedDuration::from_mins(minutes))
                        .unwrap();
                    check_around(&expr, &zone, start);
                }
            }
        }
    }
}

/// A field's text: `*`, `*/n`, a value, a list, a range (wrapping or not), `a/n`, `a-b/n`.
fn field(max: u32, value: BoxedStrategy<u32>) -> impl Strategy<Value = String> {
    let step = 1..=max;
    prop_oneof![
        2 => Just("*".to_owned()),
        2 => step.clone().prop_map(|n| format!("*/{n}")),
        2 => value.clone().prop_map(|v| v.to_string()),
        2 => prop::collection::vec(value.clone(), 2..4)
            .prop_map(|v| v.iter().map(u32::to_string).collect::<Vec<_>>().join(",")),
        2 => (value.clone(), value.clone()).prop_map(|(a, b)| format!("{a}-{b}")),
        1 => (value.clone(), step.clone()).prop_map(|(a, n)| format!("{a}/{n}")),
        1 => (value.clone(), value, step).prop_map(|(a, b, n)| format!("{a}-{b}/{n}")),
    ]
}

/// Random expressions, their hours leaning towards the hours clocks change in.
fn expression() -> impl Strategy<Value = String> {
    let minutes = field(59, (0u32..=59).boxed());
    let hours = field(23, prop_oneof![3 => 0u32..=4, 1 => 0u32..=23].boxed());
    let days = field(31, (1u32..=31).boxed());
    let months = prop_oneof![4 => Just("*".to_owned()), 1 => field(12, (1u32..=12).boxed())];
    let weekdays = field(7, (1u32..=7).boxed());
    let day_fields = prop_oneof![
        3 => Just(("*".to_owned(), "?".to_owned())),
        3 => Just(("?".to_owned(), "*".to_owned())),
        1 => days.prop_map(|d| (d, "?".to_owned())),
        2 => weekdays.prop_map(|w| ("?".to_owned(), w)),
    ];
    (minutes, hours, day_fields, months)
        .prop_map(|(mi, h, (dom, dow), mo)| format!("{mi} {h} {dom} {mo} {dow}"))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_search_agrees_with_the_rule_across_every_clock_change_of_2026_to_2030(
        text in expression(),
        zone in 0..ZONES.len(),
        minutes in -240i64..240,
        seconds in prop_oneof![Just(0i64), 0i64..60],
    ) {
        let Ok(expr) = CronExpr::parse(&text) else {
            return Ok(()); // a day that no month has
        };
        let zone = TimeZone::get(ZONES[zone]).unwrap();
        for change in transitions(&zone) {
            let start = change
                .checked_add(jiff::SignedDuration::from_secs(minutes * 60 + seconds))
                .unwrap();
            check_around(&expr, &zone, start);
        }
    }

    #[test]
    fn the_next_fire_is_the_first_matching_minute_however_far_away(
        text in expression(),
        start in 1_767_225_600i64..1_924_992_000, // 2026-01-01 .. 2031-01-01
    ) {
        let Ok(expr) = CronExpr::parse(&text) else {
            return Ok(());
        };
        let from = Timestamp::from_second(start).unwrap().to_zoned(TimeZone::UTC);
        let next = expr.next_after(&from).expect("a fire time");
        prop_assert!(next > from);
        prop_assert!(expr.matches(next.datetime()), "{} does not match {}", next, text);
        // No day in between matches, nor any minute before `next` on its day or after
        // `from` on its day.
        let (first_day, last_day) = (from.date(), next.date());
        let mut day = first_day;
        while day < last_day {
            if day > first_day {
                prop_assert!(!expr.sets.day_matches(day), "{} matches {} before {}", text, day, next);
            }
            day = day.tomorrow().unwrap();
        }
        let mut minute = from.datetime().date().at(from.hour(), from.minute(), 0, 0);
        let day_end = if first_day == last_day { next.datetime() } else { last_day.at(0, 0, 0, 0) };
        minute = minute.checked_add(jiff::SignedDuration::from_mins(1)).unwrap();
        while minute < day_end && minute.date() == first_day {
            prop_assert!(!expr.matches(minute), "{} matches {} before {}", text, minute, next);
            minute = minute.checked_add(jiff::SignedDuration::from_mins(1)).unwrap();
        }
        if first_day != last_day {
            let mut minute = last_day.at(0, 0, 0, 0);
            while minute < next.datetime() {
                prop_assert!(!expr.matches(minute), "{} matches {} before {}", text, minute, next);
                minute = minute.checked_add(jiff::SignedDuration::from_mins(1)).unwrap();
            }
        }
    }
}
