//! Login throttling, built so that nobody can lock the owner out and the answers do not tell
//! which user names exist:
//! - every `POST /api/login` (and console login) takes one attempt from its client address's
//!   allowance (`[limits] login_attempts_per_minute`, right or wrong);
//! - every wrong password takes one from the allowance of that user name *at that address*
//!   (`login_attempts_per_minute_per_user`): strangers guessing elsewhere do not spend the
//!   owner's; every name, configured or made up, has its own, so known and unknown names are
//!   answered alike;
//! - every wrong password also counts for the user name everywhere; beyond
//!   `login_slowdown_after_failures_per_minute` of them in a minute, every answer for that
//!   name (right or wrong, from anywhere) waits [`SLOWDOWN`] first: guessing from many
//!   addresses is slowed, never turned into a refusal of the owner.
//!
//! Without an attempt left the answer is 429 with `Retry-After`, before the password is looked
//! at. Rate limiting is governor's (GCRA). Memory is bounded: IPv6 addresses are counted by
//! their /64 (one client owns a whole /64), user names by their first [`NAME_KEY_BYTES`]
//! bytes, and keys whose allowance has refilled are forgotten once more than
//! [`FORGET_ABOVE`] are remembered.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::limits::Limits;

/// Remembered keys (addresses, names) before those with a full allowance are dropped.
const FORGET_ABOVE: usize = 10_000;
/// How long every answer for a user name waits while it is being guessed from everywhere.
pub const SLOWDOWN: Duration = Duration::from_secs(1);
/// The bytes of a user name that key its allowances.
const NAME_KEY_BYTES: usize = 64;

/// Which allowance ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    /// The client address's attempts.
    Address,
    /// The wrong passwords for this user name from this address.
    User,
}

/// A refused attempt: which allowance and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub by: Exhausted,
    pub retry_after: Duration,
}

pub struct LoginThrottle {
    by_address: DefaultKeyedRateLimiter<IpAddr>,
    /// Wrong passwords per (client address, user name).
    failures: Failures<(IpAddr, String)>,
    /// Wrong passwords per user name from every address: beyond, answers are slowed.
    everywhere: Failures<String>,
    clock: DefaultClock,
}

impl LoginThrottle {
    /// Allowances from `limits`.
    pub fn new(limits: &Limits) -> LoginThrottle {
        LoginThrottle {
            by_address: RateLimiter::keyed(per_minute(limits.login_attempts_per_minute)),
            failures: Failures::new(refused_after(limits.login_attempts_per_minute_per_user)),
            everywhere: Failures::new(refused_after(
                limits.login_slowdown_after_failures_per_minute,
            )),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one attempt for `address`, or says which allowance is empty: the address's, or
    /// that of `user` at this address after too many wrong passwords.
    pub fn attempt(&self, address: IpAddr, user: &str) -> Result<(), Throttled> {
        if self.by_address.len() > FORGET_ABOVE {
            self.by_address.retain_recent();
        }
        let now = self.clock.now();
        self.by_address
            .check_key(&client_key(address))
            .map_err(|not_until| Throttled {
                by: Exhausted::Address,
                retry_after: not_until.wait_time_from(now),
            })?;
        match self
            .failures
            .refused(&(client_key(address), name_key(user)))
        {
            Some(wait) => Err(Throttled {
                by: Exhausted::User,
                retry_after: wait,
            }),
            None => Ok(()),
        }
    }

    /// Counts a wrong password for `user` from `address`.
    pub fn failed(&self, address: IpAddr, user: &str) {
        self.failures.failed((client_key(address), name_key(user)));
        self.everywhere.failed(name_key(user));
    }

    /// Whether answers for `user` are being slowed: guessed from everywhere too often.
    pub fn slowed(&self, user: &str) -> bool {
        self.everywhere.refused(&name_key(user)).is_some()
    }
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).expect("at least 1"))
}

/// `n` a minute, for [`Failures`] that refuse the attempt after the `n`th failure (the
/// `n`th failure is the one that finds the allowance empty): a burst of `n - 1`, one back
/// every `60 / n` seconds. At least 2 (`Limits::check`).
fn refused_after(n: u32) -> Quota {
    let n = n.max(2);
    Quota::with_period(Duration::from_secs(60) / n)
        .expect("a period of at least 60 s / u32::MAX")
        .allow_burst(NonZeroU32::new(n - 1).expect("n >= 2"))
}

/// The key of a user name: its first [`NAME_KEY_BYTES`] bytes (at a character boundary).
fn name_key(user: &str) -> String {
    let mut end = user.len().min(NAME_KEY_BYTES);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    user[..end].to_owned()
}

/// Failures per key: each takes one from the key's allowance; once it is empty the key is
/// refused until one has come back. Refused keys are forgotten once their time has passed.
struct Failures<K: std::hash::Hash + Eq + Clone> {
    failures: DefaultKeyedRateLimiter<K>,
    refused_until: std::sync::Mutex<std::collections::HashMap<K, std::time::Instant>>,
    clock: DefaultClock,
}

impl<K: std::hash::Hash + Eq + Clone> Failures<K> {
    fn new(quota: Quota) -> Self {
        Failures {
            failures: RateLimiter::keyed(quota),
            refused_until: std::sync::Mutex::default(),
            clock: DefaultClock::default(),
        }
    }

    fn refused(&self, key: &K) -> Option<Duration> {
        let mut refused = self.refused_until.lock().expect("no poisoning");
        let now = std::time::Instant::now();
        match refused.get(key) {
            Some(&until) if until > now => Some(until - now),
            Some(_) => {
                refused.remove(key);
                None
            }
            None => None,
        }
    }

    fn failed(&self, key: K) {
        if self.failures.len() > FORGET_ABOVE {
            self.failures.retain_recent();
        }
        let now = self.clock.now();
        if let Err(not_until) = self.failures.check_key(&key) {
            let wait = not_until.wait_time_from(now);
            let mut refused = self.refused_until.lock().expect("no poisoning");
            if refused.len() > FORGET_ABOVE {
                let at = std::time::Instant::now();
                refused.retain(|_, until| *until > at);
            }
            refused.insert(key, std::time::Instant::now() + wait);
        }
    }
}

/// Wrong phone credentials per client address (`[limits] phone_auth_failures_per_minute`):
/// each failure takes one from the address's allowance; once it is empty the address is
/// refused, before its credentials are looked at, until one has come back. Addresses are
/// keyed as logins are (IPv6 by its /64); refused addresses are forgotten once their time
/// has passed.
pub struct FailureThrottle {
    failures: Failures<IpAddr>,
}

impl FailureThrottle {
    pub fn new(per_minute: u32) -> FailureThrottle {
        FailureThrottle {
            failures: Failures::new(self::per_minute(per_minute)),
        }
    }

    /// How long `address` is still refused, if it is.
    pub fn refused(&self, address: IpAddr) -> Option<Duration> {
        self.failures.refused(&client_key(address))
    }

    /// Counts a failure of `address`; refuses it from now on when its allowance is empty.
    pub fn failed(&self, address: IpAddr) {
        self.failures.failed(client_key(address));
    }
}

/// The key an address is counted under: IPv4 as it is, IPv6 by its /64.
pub fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_address: u32, per_user: u32) -> Limits {
        Limits {
            login_attempts_per_minute: per_address,
            login_attempts_per_minute_per_user: per_user,
            ..Limits::default()
        }
    }

    #[test]
    fn an_address_gets_its_allowance_and_then_waits() {
        let throttle = LoginThrottle::new(&limits(3, 100));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            throttle.attempt(a, "admin").unwrap();
        }
        let refused = throttle.attempt(a, "admin").unwrap_err();
        assert_eq!(refused.by, Exhausted::Address);
        // One attempt comes back every 20 s.
        assert!(
            refused.retry_after > Duration::from_secs(15)
                && refused.retry_after <= Duration::from_secs(20),
            "{refused:?}"
        );
        // Another address is not affected.
        throttle
            .attempt("192.0.2.2".parse().unwrap(), "admin")
            .unwrap();
    }

    /// Hardening 3: 40 wrong passwords for the configured user from four other addresses
    /// locked the owner out of a fresh address (429).
    #[test]
    fn strangers_guessing_elsewhere_do_not_spend_the_owners_allowance() {
        let throttle = LoginThrottle::new(&limits(100, 3));
        for i in 1..=4 {
            let stranger: IpAddr = format!("192.0.2.{i}").parse().unwrap();
            for _ in 0..10 {
                if throttle.attempt(stranger, "admin").is_ok() {
                    throttle.failed(stranger, "admin");
                }
            }
            // At that address, this user name is refused after three wrong passwords.
            assert_eq!(
                throttle.attempt(stranger, "admin").unwrap_err().by,
                Exhausted::User
            );
        }
        throttle
            .attempt("198.51.100.7".parse().unwrap(), "admin")
            .unwrap();
    }

    /// Hardening 3: after failures for several made-up names, `root` was throttled and
    /// `admin` was not, which told the configured name.
    #[test]
    fn known_and_unknown_user_names_are_throttled_alike() {
        let throttle = LoginThrottle::new(&limits(100, 3));
        let guesser: IpAddr = "192.0.2.1".parse().unwrap();
        for name in ["root", "operator", "Admin", "admin"] {
            for _ in 0..3 {
                throttle.attempt(guesser, name).unwrap();
                throttle.failed(guesser, name);
            }
        }
        for name in ["root", "operator", "Admin", "admin"] {
            assert_eq!(
                throttle.attempt(guesser, name).unwrap_err().by,
                Exhausted::User
            );
            throttle
                .attempt("192.0.2.9".parse().unwrap(), name)
                .unwrap();
        }
    }

    #[test]
    fn a_name_guessed_from_everywhere_is_slowed_not_refused() {
        let limits = Limits {
            login_slowdown_after_failures_per_minute: 5,
            ..limits(100, 3)
        };
        let throttle = LoginThrottle::new(&limits);
        for i in 1..=6 {
            let stranger: IpAddr = format!("192.0.2.{i}").parse().unwrap();
            throttle.attempt(stranger, "admin").unwrap();
            throttle.failed(stranger, "admin");
        }
        assert!(throttle.slowed("admin"));
        assert!(!throttle.slowed("root"));
        throttle
            .attempt("198.51.100.7".parse().unwrap(), "admin")
            .unwrap();
    }

    #[test]
    fn long_user_names_are_keyed_by_their_first_bytes() {
        assert_eq!(name_key(&"é".repeat(40)).len(), 64);
        assert_eq!(name_key("admin"), "admin");
    }

    #[test]
    fn an_address_presenting_wrong_credentials_is_refused_once_its_allowance_is_spent() {
        let throttle = FailureThrottle::new(3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(throttle.refused(a), None);
            throttle.failed(a);
        }
        assert_eq!(throttle.refused(a), None, "three failures are allowed");
        throttle.failed(a);
        let wait = throttle
            .refused(a)
            .expect("the fourth failure is one too many");
        // One failure comes back every 20 s.
        assert!(
            wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert_eq!(throttle.refused("192.0.2.2".parse().unwrap()), None);
    }

    #[test]
    fn ipv6_addresses_of_one_64_count_as_one_client() {
        assert_eq!(
            client_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            client_key("2001:db8:1:2:bbbb::2".parse().unwrap())
        );
        assert_ne!(
            client_key("2001:db8:1:2::1".parse().unwrap()),
            client_key("2001:db8:1:3::1".parse().unwrap())
        );
        assert_eq!(
            client_key("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }
}
