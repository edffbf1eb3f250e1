//! Login: which configured account a client matches, the
//! `mysql_native_password` check of its scrambled password, and the delay
//! that slows an address guessing passwords (MySQL's connection control).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::User;

/// Failed logins by client address. From the `threshold`-th failure in a
/// row on, every login attempt from the address waits before its answer,
/// one `step` longer each time, up to `max`; a successful login forgets the
/// address's failures.
#[derive(Debug)]
pub struct FailedLogins {
    by_address: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    threshold: u32,
    step: Duration,
    max: Duration,
}

/// Addresses remembered at most; past it, those quiet for an hour go.
const REMEMBERED: usize = 10_000;

impl FailedLogins {
    pub fn new(threshold: u32, step: Duration, max: Duration) -> Self {
        FailedLogins {
            by_address: Mutex::default(),
            threshold,
            step,
            max,
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (u32, Instant)>> {
        self.by_address.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long a login attempt from `ip` waits before it is answered.
    pub fn delay(&self, ip: IpAddr) -> Duration {
        let failures = self.failures().get(&ip).map_or(0, |(n, _)| *n);
        if self.threshold == 0 || failures < self.threshold {
            return Duration::ZERO;
        }
        self.step
            .saturating_mul(failures - self.threshold + 1)
            .min(self.max)
    }

    /// Records a failed login from `ip`; its failures in a row.
    pub fn failed(&self, ip: IpAddr) -> u32 {
        let mut map = self.failures();
        if map.len() >= REMEMBERED {
            map.retain(|_, (_, last)| last.elapsed() < Duration::from_secs(3600));
        }
        let entry = map.entry(ip).or_insert((0, Instant::now()));
        entry.0 = entry.0.saturating_add(1);
        entry.1 = Instant::now();
        entry.0
    }

    /// A login from `ip` succeeded.
    pub fn succeeded(&self, ip: IpAddr) {
        self.failures().remove(&ip);
    }
}

/// The account `user` may use from `client`: an exact host before `localhost`
/// before `%`, as MySQL prefers the most specific match.
pub fn find_account<'a>(users: &'a [User], user: &str, client: IpAddr) -> Option<&'a User> {
    let rank = |u: &User| -> Option<u8> {
        match u.host.as_str() {
            "%" => Some(2),
            "localhost" => client_is_loopback(client).then_some(1),
            ip => (ip.parse::<IpAddr>().ok()? == client).then_some(0),
        }
    };
    users
        .iter()
        .filter(|u| u.name == user)
        .filter_map(|u| Some((rank(u)?, u)))
        .min_by_key(|(r, _)| *r)
        .map(|(_, u)| u)
}

fn client_is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Whether `response` is what a client knowing `password` answers to `scramble`.
pub fn password_matches(password: &str, scramble: &[u8; 20], response: &[u8]) -> bool {
    if password.is_empty() {
        return response.is_empty() || response == [0];
    }
    match mysql_common::scramble::scramble_native(scramble, password.as_bytes()) {
        Some(expected) => constant_time_eq(&expected, response),
        None => false,
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Twenty random printable bytes for the handshake.
pub fn new_scramble() -> [u8; 20] {
    use rand::Rng;
    let mut rng = rand::rng();
    let mut s = [0u8; 20];
    for b in &mut s {
        *b = rng.random_range(b'0'..=b'z');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, host: &str) -> User {
        User {
            name: name.into(),
            password: String::new(),
            host: host.into(),
            admin: None,
        }
    }

    #[test]
    fn failed_logins_delay_their_address_more_each_time_until_one_succeeds() {
        let logins = FailedLogins::new(3, Duration::from_secs(1), Duration::from_secs(2));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for n in 1..=2 {
            assert_eq!(logins.failed(a), n);
            assert_eq!(logins.delay(a), Duration::ZERO);
        }
        logins.failed(a);
        assert_eq!(logins.delay(a), Duration::from_secs(1));
        logins.failed(a);
        assert_eq!(logins.delay(a), Duration::from_secs(2));
        logins.failed(a);
        assert_eq!(logins.delay(a), Duration::from_secs(2), "capped");
        assert_eq!(logins.delay(b), Duration::ZERO, "another address");
        logins.succeeded(a);
        assert_eq!(logins.delay(a), Duration::ZERO);
    }

    #[test]
    fn loopback_only_for_localhost_accounts() {
        let users = vec![user("root", "localhost")];
        assert!(find_account(&users, "root", "127.0.0.1".parse().unwrap()).is_some());
        assert!(find_account(&users, "root", "::1".parse().unwrap()).is_some());
        assert!(find_account(&users, "root", "10.1.2.3".parse().unwrap()).is_none());
        assert!(find_account(&users, "nobody", "127.0.0.1".parse().unwrap()).is_none());
    }

    #[test]
    fn most_specific_host_wins() {
        let users = vec![
            user("app", "%"),
            user("app", "127.0.0.1"),
            user("app", "localhost"),
        ];
        let hit = find_account(&users, "app", "127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(hit.host, "127.0.0.1");
    }

    #[test]
    fn native_password_round_trip() {
        let scramble = new_scramble();
        let answer = mysql_common::scramble::scramble_native(&scramble, b"s3cret").unwrap();
        assert!(password_matches("s3cret", &scramble, &answer));
        assert!(!password_matches("other", &scramble, &answer));
        assert!(!password_matches("s3cret", &scramble, &answer[..19]));
        assert!(password_matches("", &scramble, &[]));
        assert!(!password_matches("", &scramble, &answer));
    }
}
