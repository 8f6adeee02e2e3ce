//! Versions of live-state changes: a hybrid logical clock.
//!
//! A [`Version`] is a clock value and the node that made it. The clock packs the wall-clock
//! milliseconds and a counter for changes within one millisecond into one `i64`
//! (`millis << COUNTER_BITS | counter`), so versions compare as numbers, then by node name:
//! a total order, the same in Rust and in SQL (`(clock, node) < (clock, node)`). It is
//! written `MILLIS.COUNTER.NODE` with fixed widths (13 and 7 digits) and parsed strictly: a
//! received version that is not one is refused, never compared as text.
//!
//! [`Versions`] makes this node's versions: each newer than every version it made, saw or
//! found stored at start, and not ahead of the wall clock unless something it saw was.

use std::fmt;
use std::sync::Mutex;

/// Bits of the counter within one millisecond.
const COUNTER_BITS: u32 = 20;
const COUNTER_MAX: i64 = (1 << COUNTER_BITS) - 1;
/// Milliseconds up to 2^43 (year 2248) fit beside the counter in a positive i64.
const MILLIS_MAX: i64 = (1 << (63 - COUNTER_BITS)) - 1;
/// The longest node name.
pub const MAX_NODE_LEN: usize = 64;

/// A version: its packed clock and the node that made it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    clock: i64,
    node: String,
}

/// Why a version was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("version \"{0}\" is not MILLISECONDS.COUNTER.NODE (13 and 7 digits, a node name)")]
    Malformed(String),
    #[error("node name \"{0}\" must be 1 to 64 letters, digits, '-', '_' or '.'")]
    Node(String),
}

/// Whether `node` may name a node.
pub fn check_node(node: &str) -> Result<(), VersionError> {
    let ok = !node.is_empty()
        && node.len() <= MAX_NODE_LEN
        && node
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(VersionError::Node(node.chars().take(80).collect()))
    }
}

impl Version {
    pub fn new(millis: i64, counter: i64, node: &str) -> Result<Version, VersionError> {
        check_node(node)?;
        if !(0..=MILLIS_MAX).contains(&millis) || !(0..=COUNTER_MAX).contains(&counter) {
            return Err(VersionError::Malformed(format!(
                "{millis}.{counter}.{node}"
            )));
        }
        Ok(Version {
            clock: millis << COUNTER_BITS | counter,
            node: node.to_owned(),
        })
    }

    /// A stored version: its clock column and node column.
    pub fn from_parts(clock: i64, node: &str) -> Result<Version, VersionError> {
        Version::new(clock >> COUNTER_BITS, clock & COUNTER_MAX, node)
    }

    /// Parses `MILLIS.COUNTER.NODE`. Older releases wrote the counter with 5 digits: any
    /// width up to 7 is read, the value is what counts.
    pub fn parse(text: &str) -> Result<Version, VersionError> {
        let malformed = || VersionError::Malformed(text.chars().take(80).collect());
        let mut parts = text.splitn(3, '.');
        let (Some(millis), Some(counter), Some(node)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        let digits = |s: &str, max_len: usize| {
            (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<i64>().ok())
                .flatten()
        };
        let (Some(millis), Some(counter)) = (digits(millis, 13), digits(counter, 7)) else {
            return Err(malformed());
        };
        Version::new(millis, counter, node).map_err(|_| malformed())
    }

    /// The packed clock, as stored.
    pub fn clock(&self) -> i64 {
        self.clock
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// The wall-clock milliseconds part.
    pub fn millis(&self) -> i64 {
        self.clock >> COUNTER_BITS
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:013}.{:07}.{}",
            self.millis(),
            self.clock & COUNTER_MAX,
            self.node
        )
    }
}

impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Version::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// This node's clock.
pub struct Versions {
    node: String,
    last: Mutex<i64>,
}

impl Versions {
    pub fn new(node: &str) -> Versions {
        Versions {
            node: node.to_owned(),
            last: Mutex::new(0),
        }
    }

    /// Takes a version made elsewhere (or stored) into account: later versions made here
    /// are newer.
    pub fn observe(&self, version: &Version) {
        let mut last = self.last.lock().expect("no poisoning");
        *last = (*last).max(version.clock);
    }

    /// A version newer than every one this node made, saw or found stored.
    pub fn next(&self) -> Version {
        let now = jiff::Timestamp::now().as_millisecond().clamp(0, MILLIS_MAX);
        let mut last = self.last.lock().expect("no poisoning");
        // The wall clock if it moved on, otherwise one tick after the last version (a
        // counter that runs over moves into the next millisecond).
        *last = (now << COUNTER_BITS).max(*last + 1);
        Version {
            clock: *last,
            node: self.node.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_by_clock_then_node_never_as_text() {
        let v = |text: &str| Version::parse(text).unwrap();
        // As text "99999" sorts after "100000"; as versions it is before.
        assert!(v("1700000000000.99999.a") < v("1700000000000.100000.a"));
        assert!(v("1700000000000.0000001.a") < v("1700000000000.0000001.b"));
        assert!(v("1700000000001.0.a") > v("1700000000000.1048575.z"));
        // Old five-digit counters read as the same value, written at full width.
        assert_eq!(v("1700000000000.00042.a"), v("1700000000000.0000042.a"));
        assert_eq!(
            v("1700000000000.00042.a").to_string(),
            "1700000000000.0000042.a"
        );
    }

    #[test]
    fn malformed_versions_are_refused() {
        for text in [
            "~",
            "abc",
            "",
            "1.2",
            "1.2.",
            "-1.2.a",
            "+1.2.a",
            "1.2.a b",
            "1.2.a\u{0}",
            "99999999999999.0.a",
            "1.1048576.a",
            "1 .2.a",
            &"9".repeat(100_000),
            &format!("1.2.{}", "n".repeat(65)),
        ] {
            assert!(Version::parse(text).is_err(), "{text:.40}");
        }
        let long = "x".repeat(100_000);
        let message = Version::parse(&long).unwrap_err().to_string();
        assert!(message.len() < 200, "{message:.300}");
    }

    #[test]
    fn a_clock_makes_versions_in_order_and_after_everything_it_saw() {
        let versions = Versions::new("a");
        let made: Vec<Version> = (0..5000).map(|_| versions.next()).collect();
        assert!(made.windows(2).all(|w| w[0] < w[1]));
        // A version from the future (a peer within the allowed skew): the next is after it.
        let ahead = Version::new(made[0].millis() + 60_000, 7, "b").unwrap();
        versions.observe(&ahead);
        assert!(versions.next() > ahead);
        // Seeded from the newest stored version after a restart.
        let restarted = Versions::new("a");
        restarted.observe(&ahead);
        assert!(restarted.next() > ahead);
    }

    #[test]
    fn versions_stored_by_earlier_releases_are_converted_and_unreadable_ones_dropped() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch(include_str!(
            "../../migrations/sqlite/0003_contact_state.sql"
        ))
        .unwrap();
        db.execute_batch(
            "INSERT INTO contact_state (contact, status_version, profile_version, updated_at) VALUES \
             ('dir:1', '1700000000000.00042.a', '~', 'x'), \
             ('dir:2', 'abc', '1700000000001.99999.b', 'x')",
        )
        .unwrap();
        db.execute_batch(include_str!(
            "../../migrations/sqlite/0005_typed_versions.sql"
        ))
        .unwrap();
        type Row = (
            Option<String>,
            Option<i64>,
            Option<String>,
            Option<String>,
            Option<i64>,
        );
        let rows: Vec<Row> = db
            .prepare(
                "SELECT status_version, status_clock, status_node, profile_version, profile_clock \
                 FROM contact_state ORDER BY contact",
            )
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let old = Version::parse("1700000000000.00042.a").unwrap();
        assert_eq!(
            rows[0],
            (
                Some(old.to_string()),
                Some(old.clock()),
                Some("a".into()),
                None,
                None
            )
        );
        let b = Version::parse("1700000000001.99999.b").unwrap();
        assert_eq!(rows[1].0, None);
        assert_eq!(
            (rows[1].3.clone(), rows[1].4),
            (Some(b.to_string()), Some(b.clock()))
        );
    }
}
