//! Login: which configured account a client matches, and the
//! `mysql_native_password` check of its scrambled password.

use std::net::IpAddr;

use crate::config::User;

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
        }
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
