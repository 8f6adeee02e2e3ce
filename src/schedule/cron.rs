//! The original product's cron dialect, exactly: five fields `Minutes Hours Day-of-month
//! Month Day-of-week`, Day-of-week 1-7 with 1 = Sunday (Quartz style), month and day names,
//! `* , - /` in every field and `?` ("no specific value") in exactly one of Day-of-month and
//! Day-of-week.
//!
//! [`CronExpr::parse`] checks an expression against these rules itself (so a mistake is
//! explained with its field, token and allowed range) and explains it in words; fire times
//! come from `croner` (Quartz weekdays, `0/5` steps) in the configured time zone. Around
//! daylight-saving changes a fire time that falls in the gap runs at the first instant after
//! the gap, and a wall-clock time that happens twice runs once (at its first occurrence).

use std::fmt::Write as _;
use std::time::Duration;

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use jiff::Zoned;

/// A cron expression that was rejected, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cron expression \"{expression}\": {reason}")]
pub struct CronError {
    pub expression: String,
    pub reason: String,
}

/// One of the five fields.
#[derive(Clone, Copy, Debug)]
struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names accepted for values, from `min` up (JAN.., SUN..).
    names: &'static [&'static str],
    /// Where `?` is allowed.
    no_specific: bool,
}

const FIELDS: [FieldSpec; 5] = [
    FieldSpec {
        name: "Minutes",
        min: 0,
        max: 59,
        names: &[],
        no_specific: false,
    },
    FieldSpec {
        name: "Hours",
        min: 0,
        max: 23,
        names: &[],
        no_specific: false,
    },
    FieldSpec {
        name: "Day-of-month",
        min: 1,
        max: 31,
        names: &[],
        no_specific: true,
    },
    FieldSpec {
        name: "Month",
        min: 1,
        max: 12,
        names: &[
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ],
        no_specific: false,
    },
    FieldSpec {
        name: "Day-of-week",
        min: 1,
        max: 7,
        names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
        no_specific: true,
    },
];

const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAY_NAMES: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// One comma-separated element of a field: the values `from..=to` every `step`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Element {
    from: u32,
    to: u32,
    step: u32,
    /// Written as `*` (or `*/n`).
    star: bool,
    /// Written as `a/n`: from `a` to the end of the field.
    open: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Field {
    /// `?`
    NoSpecific,
    Elements(Vec<Element>),
}

impl Field {
    fn is_every(&self) -> bool {
        matches!(self, Field::Elements(e) if e.len() == 1 && e[0].star && e[0].step == 1)
    }
}

/// A checked cron expression.
#[derive(Clone, Debug)]
pub struct CronExpr {
    text: String,
    fields: [Field; 5],
    cron: Cron,
}

impl CronExpr {
    /// Parses and checks `text` against the dialect's rules.
    pub fn parse(text: &str) -> Result<CronExpr, CronError> {
        let fail = |reason: String| CronError {
            expression: text.to_owned(),
            reason,
        };
        let parts: Vec<&str> = text.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(fail(format!(
                "has {} fields; it needs 5: Minutes Hours Day-of-month Month Day-of-week \
                 (e.g. \"0 23 ? * *\": every day at 23:00)",
                parts.len()
            )));
        }
        let mut fields = Vec::with_capacity(5);
        for (part, spec) in parts.iter().zip(FIELDS) {
            fields.push(parse_field(part, spec).map_err(&fail)?);
        }
        let fields: [Field; 5] = fields.try_into().expect("five fields");
        match (&fields[2], &fields[4]) {
            (Field::NoSpecific, Field::NoSpecific) => {
                return Err(fail(
                    "Day-of-month and Day-of-week are both \"?\": exactly one of them must be \
                     \"?\" (e.g. \"0 23 ? * *\" or \"0 23 * * ?\")"
                        .into(),
                ));
            }
            (Field::Elements(_), Field::Elements(_)) => {
                return Err(fail(format!(
                    "neither Day-of-month (\"{}\") nor Day-of-week (\"{}\") is \"?\": exactly one \
                     of them must be \"?\" (e.g. \"{} {} ? {} {}\" for days of the week)",
                    parts[2], parts[4], parts[0], parts[1], parts[3], parts[4]
                )));
            }
            _ => {}
        }
        // croner gets the numbers (names already resolved), Quartz weekdays, `0/5` steps.
        let numeric: Vec<String> = fields.iter().map(field_text).collect();
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .alternative_weekdays(true)
            .sloppy_ranges(true)
            .build()
            .parse(&numeric.join(" "))
            .map_err(|e| fail(format!("not understood: {e}")))?;
        Ok(CronExpr {
            text: text.to_owned(),
            fields,
            cron,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first fire time strictly after `after`, in `after`'s time zone. A wall-clock time
    /// that happens twice (autumn) fires at its first occurrence only.
    pub fn next_after(&self, after: &Zoned) -> Option<Zoned> {
        let mut from = after.clone();
        for _ in 0..4 {
            let next = self.cron.find_next_occurrence(&from, false).ok()?;
            if !is_second_pass(&next) {
                return Some(next);
            }
            from = next;
        }
        None
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

    /// The expression in words, e.g. "at minute 0 of hour 23, every day".
    pub fn explain(&self) -> String {
        let [minutes, hours, dom, month, dow] = &self.fields;
        let mut out = String::new();
        let _ = match (minutes.is_every(), hours.is_every()) {
            (true, true) => write!(out, "every minute"),
            (true, false) => write!(out, "every minute of {}", describe(hours, "hour", None)),
            (false, true) => write!(
                out,
                "at {} of every hour",
                describe(minutes, "minute", None)
            ),
            (false, false) => write!(
                out,
                "at {} of {}",
                describe(minutes, "minute", None),
                describe(hours, "hour", None)
            ),
        };
        let days = match (dom, dow) {
            (Field::NoSpecific, d) if d.is_every() => "every day".to_owned(),
            (d, Field::NoSpecific) if d.is_every() => "every day".to_owned(),
            (Field::NoSpecific, d) => format!("on {}", describe(d, "day", Some(&DAY_NAMES))),
            (d, _) => format!("on {} of the month", describe(d, "day", None)),
        };
        let _ = write!(out, ", {days}");
        if !month.is_every() {
            let _ = write!(out, ", in {}", describe(month, "month", Some(&MONTH_NAMES)));
        }
        out
    }
}

/// Whether `time` is the later of two instants with the same wall-clock time.
fn is_second_pass(time: &Zoned) -> bool {
    let earlier = time
        .time_zone()
        .to_ambiguous_zoned(time.datetime())
        .earlier();
    matches!(earlier, Ok(e) if e.timestamp() < time.timestamp())
}

fn parse_field(text: &str, spec: FieldSpec) -> Result<Field, String> {
    let range = || {
        let names = if spec.names.is_empty() {
            String::new()
        } else {
            format!(" or {}-{}", spec.names[0], spec.names[spec.names.len() - 1])
        };
        let sunday = if spec.name == "Day-of-week" {
            " (1 = Sunday)"
        } else {
            ""
        };
        format!("{}-{}{names}{sunday}", spec.min, spec.max)
    };
    let bad = |token: &str, why: &str| {
        format!(
            "field {} has \"{token}\": {why}; allowed: {}, and * , - /{}",
            spec.name,
            range(),
            if spec.no_specific { " ?" } else { "" }
        )
    };
    if text.contains('?') {
        if !spec.no_specific {
            return Err(bad(
                text,
                "\"?\" is only allowed in Day-of-month and Day-of-week",
            ));
        }
        if text != "?" {
            return Err(bad(text, "\"?\" stands alone in its field"));
        }
        return Ok(Field::NoSpecific);
    }
    let value = |token: &str| -> Result<u32, String> {
        let upper = token.to_ascii_uppercase();
        if let Some(i) = spec.names.iter().position(|n| *n == upper) {
            return Ok(spec.min + i as u32);
        }
        let n: u32 = token
            .parse()
            .map_err(|_| bad(token, "not a number or a name"))?;
        if n < spec.min || n > spec.max {
            return Err(bad(token, "out of range"));
        }
        Ok(n)
    };
    let mut elements = Vec::new();
    for token in text.split(',') {
        if token.is_empty() {
            return Err(bad(text, "an empty list item"));
        }
        let (base, step) = match token.split_once('/') {
            Some((base, step)) => {
                let step: u32 = step
                    .parse()
                    .ok()
                    .filter(|s| (1..=spec.max - spec.min + 1).contains(s))
                    .ok_or_else(|| {
                        bad(
                            token,
                            "the step after / must be a number from 1 to the field's span",
                        )
                    })?;
                (base, step)
            }
            None => (token, 1),
        };
        let element = if base == "*" {
            Element {
                from: spec.min,
                to: spec.max,
                step,
                star: true,
                open: false,
            }
        } else if let Some((a, b)) = base.split_once('-') {
            let (from, to) = (value(a)?, value(b)?);
            if from > to {
                return Err(bad(token, "a range must go upwards"));
            }
            Element {
                from,
                to,
                step,
                star: false,
                open: false,
            }
        } else {
            let from = value(base)?;
            // `a/n`: from a to the end of the field every n (Quartz).
            let to = if step > 1 || token.contains('/') {
                spec.max
            } else {
                from
            };
            Element {
                from,
                to,
                step,
                star: false,
                open: to != from,
            }
        };
        elements.push(element);
    }
    Ok(Field::Elements(elements))
}

/// The field as numbers for croner.
fn field_text(field: &Field) -> String {
    match field {
        Field::NoSpecific => "?".into(),
        Field::Elements(elements) => elements
            .iter()
            .map(|e| {
                let base = if e.star {
                    "*".to_owned()
                } else if e.from == e.to {
                    e.from.to_string()
                } else {
                    format!("{}-{}", e.from, e.to)
                };
                if e.step > 1 {
                    format!("{base}/{}", e.step)
                } else {
                    base
                }
            })
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// "minute 0", "minutes 1 and 30", "every 5th minute from 0", "hours 9 to 17".
fn describe(field: &Field, unit: &str, names: Option<&[&str]>) -> String {
    let Field::Elements(elements) = field else {
        return format!("any {unit}");
    };
    let name = |v: u32| match names {
        Some(names) => names[(v - 1) as usize].to_owned(),
        None => v.to_string(),
    };
    let parts: Vec<String> = elements
        .iter()
        .map(|e| match (e.star, e.from == e.to, e.step) {
            _ if e.open => format!("every {} {unit} from {}", ordinal(e.step), name(e.from)),
            (true, _, 1) => format!("every {unit}"),
            (true, _, s) => format!("every {} {unit} from {}", ordinal(s), name(e.from)),
            (false, true, _) => name(e.from),
            (false, false, 1) => format!("{} to {}", name(e.from), name(e.to)),
            (false, false, s) => format!(
                "every {} {unit} from {} to {}",
                ordinal(s),
                name(e.from),
                name(e.to)
            ),
        })
        .collect();
    let singles = elements
        .iter()
        .filter(|e| !e.star && e.from == e.to)
        .count();
    let plural = if singles > 1
        || elements
            .iter()
            .any(|e| !e.star && e.from != e.to && e.step == 1)
    {
        "s"
    } else {
        ""
    };
    let list = match parts.len() {
        1 => parts[0].clone(),
        n => format!("{} and {}", parts[..n - 1].join(", "), parts[n - 1]),
    };
    if elements.iter().all(|e| e.star || e.step > 1) || names.is_some() {
        list
    } else {
        format!("{unit}{plural} {list}")
    }
}

fn ordinal(n: u32) -> String {
    match n {
        2 => "2nd".into(),
        3 => "3rd".into(),
        n => format!("{n}th"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use jiff::tz::TimeZone;

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
    fn exactly_one_day_field_is_a_question_mark() {
        let both = CronExpr::parse("0 23 ? * ?").unwrap_err().to_string();
        assert!(both.contains("both \"?\""), "{both}");
        let neither = CronExpr::parse("0 23 * * *").unwrap_err().to_string();
        assert!(
            neither.contains("exactly one of them must be \"?\""),
            "{neither}"
        );
        assert!(neither.contains("\"0 23 ? * *\""), "{neither}");
    }

    #[test]
    fn malformed_expressions_name_the_field_the_token_and_the_range() {
        let cases = [
            (
                "60 * * * ?",
                "field Minutes has \"60\": out of range; allowed: 0-59",
            ),
            (
                "0 24 ? * *",
                "field Hours has \"24\": out of range; allowed: 0-23",
            ),
            (
                "0 0 32 * ?",
                "field Day-of-month has \"32\": out of range; allowed: 1-31",
            ),
            (
                "0 0 ? 13 *",
                "field Month has \"13\": out of range; allowed: 1-12 or JAN-DEC",
            ),
            (
                "0 0 ? * 0",
                "field Day-of-week has \"0\": out of range; allowed: 1-7 or SUN-SAT (1 = Sunday)",
            ),
            ("0 0 ? * 8", "field Day-of-week has \"8\""),
            (
                "? 0 * * ?",
                "field Minutes has \"?\": \"?\" is only allowed in Day-of-month and Day-of-week",
            ),
            ("0 x ? * *", "field Hours has \"x\": not a number or a name"),
            (
                "0 5-1 ? * *",
                "field Hours has \"5-1\": a range must go upwards",
            ),
            (
                "0/0 * * * ?",
                "field Minutes has \"0/0\": the step after / must be",
            ),
            (
                "1,,2 * * * ?",
                "field Minutes has \"1,,2\": an empty list item",
            ),
            ("0 23 ? *", "has 4 fields; it needs 5"),
            ("0 0 0 23 ? * *", "has 7 fields; it needs 5"),
        ];
        for (expr, expected) in cases {
            let error = CronExpr::parse(expr).unwrap_err().to_string();
            assert!(error.contains(expected), "{expr}: {error}");
        }
    }

    #[test]
    fn expressions_are_explained_in_words() {
        let explain = |e: &str| CronExpr::parse(e).unwrap().explain();
        assert_eq!(explain("0 23 ? * *"), "at minute 0 of hour 23, every day");
        assert_eq!(explain("* * * * ?"), "every minute, every day");
        assert_eq!(
            explain("1,30 * * * ?"),
            "at minutes 1 and 30 of every hour, every day"
        );
        assert_eq!(
            explain("0/5 * * * ?"),
            "at every 5th minute from 0 of every hour, every day"
        );
        assert_eq!(
            explain("* 0-23 ? * *"),
            "every minute of hours 0 to 23, every day"
        );
        assert_eq!(
            explain("0 8 ? JAN,JUL 2-6"),
            "at minute 0 of hour 8, on Monday to Friday, in January and July"
        );
        assert_eq!(
            explain("30 6 15 * ?"),
            "at minute 30 of hour 6, on day 15 of the month"
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
}
