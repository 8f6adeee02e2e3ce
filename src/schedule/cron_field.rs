//! One field of a cron expression: what each of the five fields allows (numbers, names, `?`),
//! its comma-separated elements (`*`, values, ranges that may wrap, steps) read as Quartz
//! reads them, with messages that name the field, the token and the allowed range.

/// One of the five fields.
#[derive(Clone, Copy, Debug)]
pub(super) struct FieldSpec {
    pub(super) name: &'static str,
    pub(super) min: u32,
    pub(super) max: u32,
    /// Names accepted for values, from `min` up (JAN.., SUN..).
    pub(super) names: &'static [&'static str],
    /// The same names written in full, for the message that refuses them.
    pub(super) full_names: &'static [&'static str],
    /// Where `?` is allowed.
    pub(super) no_specific: bool,
}

pub(super) const FIELDS: [FieldSpec; 5] = [
    FieldSpec {
        name: "Minutes",
        min: 0,
        max: 59,
        names: &[],
        full_names: &[],
        no_specific: false,
    },
    FieldSpec {
        name: "Hours",
        min: 0,
        max: 23,
        names: &[],
        full_names: &[],
        no_specific: false,
    },
    FieldSpec {
        name: "Day-of-month",
        min: 1,
        max: 31,
        names: &[],
        full_names: &[],
        no_specific: true,
    },
    FieldSpec {
        name: "Month",
        min: 1,
        max: 12,
        names: &[
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ],
        full_names: &MONTH_NAMES,
        no_specific: false,
    },
    FieldSpec {
        name: "Day-of-week",
        min: 1,
        max: 7,
        names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
        full_names: &DAY_NAMES,
        no_specific: true,
    },
];

pub(super) const MONTH_NAMES: [&str; 12] = [
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

pub(super) const DAY_NAMES: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// One comma-separated element of a field: the values `from..=to` every `step`. A range
/// whose `from` is above its `to` wraps around the end of the field (Quartz).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Element {
    pub(super) from: u32,
    pub(super) to: u32,
    pub(super) step: u32,
    /// Written as `*` (or `*/n`).
    pub(super) star: bool,
    /// Written as `a/n`: from `a` to the end of the field.
    pub(super) open: bool,
}

impl Element {
    /// The element's values as bits (bit `v` for value `v`), with Quartz's arithmetic for a
    /// range that wraps: counted on past the field's end and taken modulo its span, a
    /// 1-based field's 0 being its maximum (`28-3` days is 28, 29, 30, 31, 1, 2, 3).
    pub(super) fn values(&self, spec: FieldSpec) -> u64 {
        let span = spec.max - spec.min + 1;
        let stop = if self.from > self.to {
            self.to + span
        } else {
            self.to
        };
        let mut bits = 0u64;
        let mut v = self.from;
        while v <= stop {
            let mut value = v;
            if value > spec.max {
                value -= span;
            }
            bits |= 1 << value;
            v += self.step;
        }
        bits
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Field {
    /// `?`
    NoSpecific,
    Elements(Vec<Element>),
}

impl Field {
    pub(super) fn is_every(&self) -> bool {
        matches!(self, Field::Elements(e) if e.len() == 1 && e[0].star && e[0].step == 1)
    }

    /// The field's values as bits, `None` for `?`.
    pub(super) fn values(&self, spec: FieldSpec) -> Option<u64> {
        match self {
            Field::NoSpecific => None,
            Field::Elements(elements) => {
                Some(elements.iter().fold(0, |bits, e| bits | e.values(spec)))
            }
        }
    }
}

/// The allowed values of a field, for messages: `1-12 or JAN-DEC`.
fn allowed_range(spec: FieldSpec) -> String {
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
}

/// The message refusing `token` in a field: why, and what the field allows.
fn refusal(spec: FieldSpec, token: &str, why: &str) -> String {
    format!(
        "field {} has \"{token}\": {why}; allowed: {}, and * , - /{}",
        spec.name,
        allowed_range(spec),
        if spec.no_specific { " ?" } else { "" }
    )
}

fn is_number(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit())
}

/// A value: a number written with digits only (no sign), or a three-letter name.
fn value_of(spec: FieldSpec, token: &str) -> Result<u32, String> {
    let upper = token.to_ascii_uppercase();
    if let Some(i) = spec.names.iter().position(|n| *n == upper) {
        return Ok(spec.min + i as u32);
    }
    if let Some(i) = spec
        .full_names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(token))
    {
        return Err(refusal(
            spec,
            token,
            &format!(
                "names are written with their first three letters: {}",
                spec.names[i]
            ),
        ));
    }
    if !is_number(token) {
        return Err(refusal(spec, token, "not a number or a name"));
    }
    let n: u32 = token
        .parse()
        .map_err(|_| refusal(spec, token, "out of range"))?;
    if n < spec.min || n > spec.max {
        return Err(refusal(spec, token, "out of range"));
    }
    Ok(n)
}

/// A field: `?`, or its comma-separated elements.
pub(super) fn parse_field(
    text: &str,
    spec: FieldSpec,
    warnings: &mut Vec<String>,
) -> Result<Field, String> {
    if text.contains('?') {
        if !spec.no_specific {
            return Err(refusal(
                spec,
                text,
                "\"?\" is only allowed in Day-of-month and Day-of-week",
            ));
        }
        if text != "?" {
            return Err(refusal(spec, text, "\"?\" stands alone in its field"));
        }
        return Ok(Field::NoSpecific);
    }
    let mut elements = Vec::new();
    for token in text.split(',') {
        if token.is_empty() {
            return Err(refusal(spec, text, "an empty list item"));
        }
        let (base, step) = match token.split_once('/') {
            Some((base, step)) => (base, step_of(spec, token, step)?),
            None => (token, 1),
        };
        let element = element_of(spec, token, base, step)?;
        if token.contains('/') && base.bytes().any(|b| b.is_ascii_alphabetic()) {
            warnings.push(named_step_warning(token, base, &element, spec));
        }
        elements.push(element);
    }
    Ok(Field::Elements(elements))
}

/// The step after `/`: Quartz refuses a step larger than the field's largest value (`*/60`
/// minutes, `*/24` hours).
fn step_of(spec: FieldSpec, token: &str, step: &str) -> Result<u32, String> {
    Some(step)
        .filter(|s| is_number(s))
        .and_then(|s| s.parse().ok())
        .filter(|s| (1..=spec.max).contains(s))
        .ok_or_else(|| {
            refusal(
                spec,
                token,
                &format!(
                    "the step after / must be a whole number from 1 to {}",
                    spec.max
                ),
            )
        })
}

/// One element: `*`, a range `a-b` (wrapping around the end of the field when `a` > `b`),
/// or a value `a` (with a step: from `a` to the end of the field, as Quartz reads it).
fn element_of(spec: FieldSpec, token: &str, base: &str, step: u32) -> Result<Element, String> {
    if base == "*" {
        return Ok(Element {
            from: spec.min,
            to: spec.max,
            step,
            star: true,
            open: false,
        });
    }
    if let Some((a, b)) = base.split_once('-') {
        // `MON-5`: Quartz 2.3.2 refuses a range of a name and a number.
        let named = |v: &str| v.bytes().any(|c| c.is_ascii_alphabetic());
        if named(a) != named(b) {
            return Err(refusal(
                spec,
                token,
                "a range is written with two names or two numbers, not one of each",
            ));
        }
        // `22-2`: a range that wraps around the end of the field.
        let (from, to) = (value_of(spec, a)?, value_of(spec, b)?);
        return Ok(Element {
            from,
            to,
            step,
            star: false,
            open: false,
        });
    }
    let from = value_of(spec, base)?;
    // `a/n`: from a to the end of the field every n (Quartz).
    let to = if token.contains('/') { spec.max } else { from };
    Ok(Element {
        from,
        to,
        step,
        star: false,
        open: to != from,
    })
}

/// Quartz reads a name followed by a step (`JAN/3`, `MON-FRI/2`) as if the step were not
/// there; ucm applies the step. The warning says both readings and how to write it so both
/// agree.
fn named_step_warning(token: &str, base: &str, element: &Element, spec: FieldSpec) -> String {
    let full = |v: u32| spec.full_names[(v - spec.min) as usize];
    let bits = element.values(spec);
    let ucm: Vec<&str> = (spec.min..=spec.max)
        .filter(|v| bits & (1 << v) != 0)
        .map(full)
        .collect();
    let quartz = match base.split_once('-') {
        Some(_) => format!("{} to {}", full(element.from), full(element.to)),
        None => full(element.from).to_owned(),
    };
    let numeric = |name: &str| {
        spec.names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))
            .map(|i| (spec.min + i as u32).to_string())
            .unwrap_or_else(|| name.to_owned())
    };
    let step = &token[base.len()..];
    let numbers = match base.split_once('-') {
        Some((a, b)) => format!("{}-{}{step}", numeric(a), numeric(b)),
        None => format!("{}{step}", numeric(base)),
    };
    format!(
        "field {} has \"{token}\": ucm applies the step ({}), Quartz ignores a step after a \
         name ({quartz}); write \"{numbers}\" for ucm's reading in both",
        spec.name,
        join_words(&ucm)
    )
}

/// "a", "a and b", "a, b and c".
pub(super) fn join_words(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}
