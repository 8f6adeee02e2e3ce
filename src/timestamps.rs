//! The timestamps stored with runs, plans, staged sources and contacts: RFC 3339, UTC,
//! milliseconds, fixed width, so they compare as text in time order.

/// How times are stored: RFC 3339, UTC, always three digits of milliseconds, so that stored
/// times compare as text in time order (`.26Z` would sort after `.261Z`).
const STORED_TIME: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
);

/// The current time as stored (see [`stored_time`]).
pub fn now() -> String {
    stored_time(time::OffsetDateTime::now_utc())
}

/// `at` as stored: RFC 3339, UTC, milliseconds, fixed width.
pub fn stored_time(at: time::OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(STORED_TIME)
        .expect("a fixed format formats any UTC time")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: RFC 3339 with trailing zeros trimmed (`10:42:16.26Z`) sorted after a later
    /// time of the same second (`10:42:16.261Z`), so a plan could expire late or early.
    #[test]
    fn stored_times_have_a_fixed_width_and_sort_as_text_in_time_order() {
        let at = |ms: i64| {
            stored_time(
                time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
                    + time::Duration::milliseconds(ms),
            )
        };
        assert_eq!(at(0), "2023-11-14T22:13:20.000Z");
        assert_eq!(at(260), "2023-11-14T22:13:20.260Z");
        assert!(at(0) < at(1) && at(260) < at(261) && at(999) < at(1000));
        assert_eq!(now().len(), at(0).len());
    }
}
