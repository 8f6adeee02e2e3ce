//! The original product's cron dialect: Quartz's CronExpression without the seconds field.
//! Five fields `Minutes Hours Day-of-month Month Day-of-week`, Day-of-week 1-7 with
//! 1 = Sunday, month and day names (three letters), `* , - /` in every field and `?` ("no
//! specific value") in exactly one of Day-of-month and Day-of-week. Ranges may wrap around
//! the end of their field as in Quartz (`22-2` hours, `FRI-MON`, `28-3` days).
//!
//! [`CronExpr::parse`] checks an expression against these rules itself (so a mistake is
//! explained with its field, token and allowed range), resolves each field to its set of
//! values and explains it in words. Where the dialect reads an expression differently from
//! Quartz (a step after a name) it says so in [`CronExpr::warnings`]. Fire times are found
//! in `super::fire_times`.

use std::fmt::Write as _;

use super::cron_field::{DAY_NAMES, FIELDS, Field, MONTH_NAMES, parse_field};

/// A cron expression that was rejected, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cron expression \"{expression}\": {reason}")]
pub struct CronError {
    pub expression: String,
    pub reason: String,
}

/// The longest each month can be (February in a leap year).
const MONTH_MAX_DAYS: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// The values each field allows, as bits (bit `v` set when value `v` is allowed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ValueSets {
    /// Bits 0-59.
    pub minutes: u64,
    /// Bits 0-23.
    pub hours: u64,
    /// Bits 1-31; `None` when Day-of-month is `?`.
    pub days: Option<u64>,
    /// Bits 1-12.
    pub months: u64,
    /// Bits 1-7, 1 = Sunday; `None` when Day-of-week is `?`.
    pub weekdays: Option<u64>,
}

/// A checked cron expression.
#[derive(Clone, Debug)]
pub struct CronExpr {
    text: String,
    fields: [Field; 5],
    pub(crate) sets: ValueSets,
    warnings: Vec<String>,
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
        let mut warnings = Vec::new();
        for (part, spec) in parts.iter().zip(FIELDS) {
            fields.push(parse_field(part, spec, &mut warnings).map_err(&fail)?);
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
        let value = |i: usize| fields[i].values(FIELDS[i]);
        let sets = ValueSets {
            minutes: value(0).expect("minutes are never ?"),
            hours: value(1).expect("hours are never ?"),
            days: value(2),
            months: value(3).expect("months are never ?"),
            weekdays: value(4),
        };
        if let Some(days) = sets.days {
            // Every weekday occurs in every month; a day of the month may occur in none.
            let first_day = days.trailing_zeros();
            let possible = (1..=12u32)
                .filter(|m| sets.months & (1 << m) != 0)
                .any(|m| MONTH_MAX_DAYS[m as usize - 1] >= first_day);
            if !possible {
                return Err(fail(format!(
                    "never fires: no month in Month (\"{}\") has a day in Day-of-month (\"{}\")",
                    parts[3], parts[2]
                )));
            }
        }
        Ok(CronExpr {
            text: text.to_owned(),
            fields,
            sets,
            warnings,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Where ucm reads this expression differently from Quartz, one sentence each (empty for
    /// most expressions). Shown when a config loads and by `ucm cron`.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
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
                "0/0 * * * ?",
                "field Minutes has \"0/0\": the step after / must be a whole number from 1 to 59",
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

    fn values(expr: &str) -> ValueSets {
        CronExpr::parse(expr).unwrap().sets
    }

    fn bits(values: &[u32]) -> u64 {
        values.iter().fold(0, |b, v| b | 1 << v)
    }

    #[test]
    fn a_range_that_wraps_around_the_end_of_its_field_means_what_it_means_in_quartz() {
        assert_eq!(values("0 22-2 ? * *").hours, bits(&[22, 23, 0, 1, 2]));
        assert_eq!(
            values("50-10 * ? * *").minutes,
            bits(&[
                50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
            ])
        );
        assert_eq!(
            values("0 0 28-3 * ?").days,
            Some(bits(&[28, 29, 30, 31, 1, 2, 3]))
        );
        assert_eq!(
            values("0 0 ? * FRI-MON").weekdays,
            Some(bits(&[6, 7, 1, 2]))
        );
        assert_eq!(values("0 0 ? NOV-FEB *").months, bits(&[11, 12, 1, 2]));
        // A step counts on across the wrap (Quartz: 22, 24 % 24, 26 % 24).
        assert_eq!(values("0 22-2/2 ? * *").hours, bits(&[22, 0, 2]));
        assert_eq!(values("50-10/5 * ? * *").minutes, bits(&[50, 55, 0, 5, 10]));
        assert_eq!(values("0 0 ? * 7-1/2").weekdays, Some(bits(&[7])));
        assert_eq!(
            CronExpr::parse("0 22-2 ? * FRI-MON").unwrap().explain(),
            "at minute 0 of hours 22 to 2, on Friday to Monday"
        );
    }

    #[test]
    fn a_sign_or_a_step_larger_than_the_field_is_refused_as_quartz_refuses_it() {
        let cases = [
            (
                "+5 * * * ?",
                "field Minutes has \"+5\": not a number or a name; allowed: 0-59",
            ),
            (
                "0 +1 ? * *",
                "field Hours has \"+1\": not a number or a name",
            ),
            (
                "*/+5 * * * ?",
                "field Minutes has \"*/+5\": the step after / must be a whole number from 1 to 59",
            ),
            (
                "*/60 * * * ?",
                "field Minutes has \"*/60\": the step after / must be a whole number from 1 to 59; allowed: 0-59",
            ),
            (
                "0 */24 ? * *",
                "field Hours has \"*/24\": the step after / must be a whole number from 1 to 23; allowed: 0-23",
            ),
            (
                "0 0 */32 * ?",
                "field Day-of-month has \"*/32\": the step after / must be a whole number from 1 to 31",
            ),
            (
                "0 0 ? */13 *",
                "field Month has \"*/13\": the step after / must be a whole number from 1 to 12",
            ),
            (
                "0 0 ? * */8",
                "field Day-of-week has \"*/8\": the step after / must be a whole number from 1 to 7",
            ),
            (
                "0 0 ? * -1",
                "field Day-of-week has \"\": not a number or a name",
            ),
        ];
        for (expr, expected) in cases {
            let error = CronExpr::parse(expr).unwrap_err().to_string();
            assert!(error.contains(expected), "{expr}: {error}");
        }
        // The largest steps Quartz accepts are accepted.
        for expr in [
            "*/59 * * * ?",
            "0 */23 ? * *",
            "0 0 */31 * ?",
            "0 0 ? */12 *",
            "0 0 ? * */7",
        ] {
            CronExpr::parse(expr).unwrap();
        }
    }

    /// Hardening 3: `MON-5` was accepted as Monday to Thursday; Quartz 2.3.2 refuses it.
    #[test]
    fn a_range_of_a_name_and_a_number_is_refused_as_quartz_refuses_it() {
        for (expression, token) in [
            ("0 0 ? * MON-5", "MON-5"),
            ("0 0 ? * 2-FRI", "2-FRI"),
            ("0 0 1 JAN-6 ?", "JAN-6"),
            ("0 0 ? * MON-5/2", "MON-5/2"),
        ] {
            let error = CronExpr::parse(expression).unwrap_err().to_string();
            assert!(
                error.contains(&format!("has \"{token}\""))
                    && error.contains("two names or two numbers"),
                "{expression}: {error}"
            );
        }
        assert!(CronExpr::parse("0 0 ? * MON-FRI").is_ok());
        assert!(CronExpr::parse("0 0 ? * 2-6").is_ok());
        assert!(CronExpr::parse("0 0 1 JAN-JUN ?").is_ok());
    }

    #[test]
    fn full_day_and_month_names_are_refused_with_the_spelling_that_is_accepted() {
        let cases = [
            (
                "0 8 ? * MONDAY",
                "field Day-of-week has \"MONDAY\": names are written with their first three letters: MON",
            ),
            (
                "0 8 ? * monday-friday",
                "field Day-of-week has \"monday\": names are written with their first three letters: MON",
            ),
            (
                "0 0 1 JANUARY ?",
                "field Month has \"JANUARY\": names are written with their first three letters: JAN",
            ),
            (
                "0 0 1 September ?",
                "names are written with their first three letters: SEP",
            ),
        ];
        for (expr, expected) in cases {
            let error = CronExpr::parse(expr).unwrap_err().to_string();
            assert!(error.contains(expected), "{expr}: {error}");
        }
    }

    #[test]
    fn a_name_followed_by_a_step_is_applied_and_warned_about() {
        let expr = CronExpr::parse("0 8 ? * MON-FRI/2").unwrap();
        assert_eq!(expr.sets.weekdays, Some(bits(&[2, 4, 6])));
        assert_eq!(
            expr.warnings(),
            [
                "field Day-of-week has \"MON-FRI/2\": ucm applies the step (Monday, Wednesday and \
              Friday), Quartz ignores a step after a name (Monday to Friday); write \"2-6/2\" \
              for ucm's reading in both"
            ]
        );
        let months = CronExpr::parse("0 0 1 JAN/3 ?").unwrap();
        assert_eq!(months.sets.months, bits(&[1, 4, 7, 10]));
        assert!(
            months.warnings()[0].contains("(January, April, July and October)"),
            "{:?}",
            months.warnings()
        );
        assert!(
            months.warnings()[0].contains("(January); write \"1/3\""),
            "{:?}",
            months.warnings()
        );
        let single = CronExpr::parse("0 0 ? * MON/2").unwrap();
        assert!(
            single.warnings()[0].contains("(Monday, Wednesday and Friday), Quartz ignores a step after a name (Monday); write \"2/2\""),
            "{:?}",
            single.warnings()
        );
        // Numbers with a step, and names without one, read the same in Quartz: no warning.
        for expr in [
            "0 8 ? * 2-6/2",
            "0 8 ? * MON-FRI",
            "0 0 1 1/3 ?",
            "*/5 * * * ?",
        ] {
            assert!(
                CronExpr::parse(expr).unwrap().warnings().is_empty(),
                "{expr}"
            );
        }
    }

    #[test]
    fn an_expression_that_can_never_fire_is_refused() {
        for (expr, expected) in [
            (
                "0 0 30 2 ?",
                "never fires: no month in Month (\"2\") has a day in Day-of-month (\"30\")",
            ),
            ("0 0 31 APR,JUN,SEP,NOV ?", "never fires"),
        ] {
            let error = CronExpr::parse(expr).unwrap_err().to_string();
            assert!(error.contains(expected), "{expr}: {error}");
        }
        // February 29th fires in leap years; the 31st fires in the months that have it.
        CronExpr::parse("0 0 29 2 ?").unwrap();
        CronExpr::parse("0 0 30-31 2,3 ?").unwrap();
    }
}
