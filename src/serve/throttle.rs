//! Login throttling: every `POST /api/login` takes one attempt from its client address's
//! allowance and one from its user name's (`[limits] login_attempts_per_minute` and
//! `login_attempts_per_minute_per_user`, refilled evenly over the minute). Without an
//! attempt left the answer is 429 with `Retry-After`, before the password is looked at.
//!
//! Rate limiting is governor's (GCRA). Memory is bounded: IPv6 addresses are counted by
//! their /64 (one client owns a whole /64), user names other than the configured one share
//! one allowance (they cannot log in anyway), and addresses whose allowance has refilled
//! are forgotten once more than [`FORGET_ABOVE`] are remembered.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::limits::Limits;

/// Remembered client addresses before those with a full allowance are dropped.
const FORGET_ABOVE: usize = 10_000;

/// Which allowance ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    Address,
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
    by_user: DefaultKeyedRateLimiter<Option<String>>,
    user: Option<String>,
    clock: DefaultClock,
}

impl LoginThrottle {
    /// Allowances from `limits`; `user` is the configured login name.
    pub fn new(limits: &Limits, user: Option<&str>) -> LoginThrottle {
        let per_minute = |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).expect("at least 1"));
        LoginThrottle {
            by_address: RateLimiter::keyed(per_minute(limits.login_attempts_per_minute)),
            by_user: RateLimiter::keyed(per_minute(limits.login_attempts_per_minute_per_user)),
            user: user.map(str::to_owned),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one attempt for `address` and `user`, or says which allowance is empty.
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
        let user_key = (self.user.as_deref() == Some(user)).then(|| user.to_owned());
        self.by_user
            .check_key(&user_key)
            .map_err(|not_until| Throttled {
                by: Exhausted::User,
                retry_after: not_until.wait_time_from(now),
            })
    }
}

/// Wrong phone credentials per client address (`[limits] phone_auth_failures_per_minute`):
/// each failure takes one from the address's allowance; once it is empty the address is
/// refused, before its credentials are looked at, until one has come back. Addresses are
/// keyed as logins are (IPv6 by its /64); refused addresses are forgotten once their time
/// has passed.
pub struct FailureThrottle {
    failures: DefaultKeyedRateLimiter<IpAddr>,
    refused_until: std::sync::Mutex<std::collections::HashMap<IpAddr, std::time::Instant>>,
    clock: DefaultClock,
}

impl FailureThrottle {
    pub fn new(per_minute: u32) -> FailureThrottle {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute.max(1)).expect("at least 1"));
        FailureThrottle {
            failures: RateLimiter::keyed(quota),
            refused_until: std::sync::Mutex::default(),
            clock: DefaultClock::default(),
        }
    }

    /// How long `address` is still refused, if it is.
    pub fn refused(&self, address: IpAddr) -> Option<Duration> {
        let key = client_key(address);
        let mut refused = self.refused_until.lock().expect("no poisoning");
        let now = std::time::Instant::now();
        match refused.get(&key) {
            Some(&until) if until > now => Some(until - now),
            Some(_) => {
                refused.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Counts a failure of `address`; refuses it from now on when its allowance is empty.
    pub fn failed(&self, address: IpAddr) {
        if self.failures.len() > FORGET_ABOVE {
            self.failures.retain_recent();
        }
        let key = client_key(address);
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

/// The key an address is counted under: IPv4 as it is, IPv6 by its /64.
fn client_key(address: IpAddr) -> IpAddr {
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
        let throttle = LoginThrottle::new(&limits(3, 100), Some("admin"));
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

    #[test]
    fn a_user_is_throttled_across_addresses_and_made_up_names_share_one_allowance() {
        let throttle = LoginThrottle::new(&limits(100, 2), Some("admin"));
        throttle
            .attempt("192.0.2.1".parse().unwrap(), "admin")
            .unwrap();
        throttle
            .attempt("192.0.2.2".parse().unwrap(), "admin")
            .unwrap();
        let refused = throttle
            .attempt("192.0.2.3".parse().unwrap(), "admin")
            .unwrap_err();
        assert_eq!(refused.by, Exhausted::User);
        throttle
            .attempt("192.0.2.4".parse().unwrap(), "root")
            .unwrap();
        throttle
            .attempt("192.0.2.5".parse().unwrap(), "oracle")
            .unwrap();
        assert_eq!(
            throttle
                .attempt("192.0.2.6".parse().unwrap(), "guest")
                .unwrap_err()
                .by,
            Exhausted::User
        );
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
