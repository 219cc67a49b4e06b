//! Rate limits: `429 Too Many Requests` with `Retry-After`, before a request costs anything.
//!
//! Each limit is a rate with a burst ([`Rate`], e.g. `50/s:200`), kept per key by a
//! [`Limiter`] with the generic cell rate algorithm (GCRA): one timestamp per key, the
//! "theoretical arrival time" of the next request, so a key costs a few dozen bytes, checking
//! is O(1), and the time until a refused request would pass is exact (the `Retry-After`).
//!
//! Written here rather than taken from `governor` because the limits are per key *and* per
//! tenant setting (a tenant's rate can change at any request), requests have a cost that is
//! known only after they ran (an unindexed filter is charged for what it examined), and the
//! map of keys must stay bounded under keys an attacker chooses (tenant names in URLs, source
//! addresses); each of those would be a wrapper around `governor` as large as this module.
//!
//! Which limits exist and their keys ([`RateSettings`]):
//!
//! - SCIM, per token and per tenant, after authentication, so that one tenant cannot starve
//!   the others; a tenant's `settings.rate_limit` overrides the server's defaults;
//! - SCIM authentication failures, per (source address, tenant): identity providers share
//!   outgoing addresses across their customers, so one customer's stale token must not slow
//!   another's, and a valid token is never refused for others' failures (it is checked first);
//! - the admin API, per key, and its authentication failures per source address;
//! - console sign-in, per (account, source address) before the password is hashed, and per
//!   account from all addresses, which slows sign-in down instead of locking the account (see
//!   [`crate::console`]).
//!
//! Limits are per process: with several nodes behind a load balancer, a client may get up to
//! one budget per node.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderValue};

use crate::error::HttpError;

/// A CIDR (`--trusted-proxy`).
pub use ipnet::IpNet;

/// A rate with a burst: `per` requests per `every`, and up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per period.
    pub per: u32,
    /// The period.
    pub every: Duration,
    /// Requests that may arrive at once after a quiet spell.
    pub burst: u32,
}

impl Rate {
    /// `per` requests per second, `burst` at once.
    #[must_use]
    pub const fn per_second(per: u32, burst: u32) -> Self {
        Self {
            per,
            every: Duration::from_secs(1),
            burst,
        }
    }

    /// `per` requests per minute, `burst` at once.
    #[must_use]
    pub const fn per_minute(per: u32, burst: u32) -> Self {
        Self {
            per,
            every: Duration::from_secs(60),
            burst,
        }
    }

    /// The time one request's cell occupies.
    fn interval(self) -> Duration {
        self.every / self.per.max(1)
    }

    /// Whether this rate limits nothing (`0/s` turns a limit off).
    #[must_use]
    pub const fn is_off(self) -> bool {
        self.per == 0
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.every.as_secs() {
            1 => "s",
            60 => "min",
            _ => "h",
        };
        write!(f, "{}/{unit}:{}", self.per, self.burst)
    }
}

/// Longest `per` accepted: a million per period is beyond what one process serves.
const MAX_PER: u32 = 1_000_000;

impl FromStr for Rate {
    type Err = String;

    /// `N/s`, `N/min` or `N/h`, optionally `:BURST` (default: the rate's count, at least 1);
    /// `0/s` turns the limit off.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "a rate is N/s, N/min or N/h with an optional :BURST (e.g. 50/s:200, 10/min), \
                 N and BURST 0–{MAX_PER}; not {s:?}"
            )
        };
        let (rate, burst) = match s.trim().split_once(':') {
            Some((r, b)) => (r, Some(b.trim().parse::<u32>().map_err(|_| bad())?)),
            None => (s.trim(), None),
        };
        let (n, unit) = rate.split_once('/').ok_or_else(bad)?;
        let per: u32 = n.trim().parse().map_err(|_| bad())?;
        let every = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        let burst = burst.unwrap_or(per).max(1);
        if per > MAX_PER || burst > MAX_PER {
            return Err(bad());
        }
        Ok(Self { per, every, burst })
    }
}

impl serde::Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Keys beyond which a limiter first forgets keys whose budget is full again (they carry no
/// information), and then shares one overflow key among new ones (so it holds at most one
/// more than this).
const MAX_KEYS: usize = 100_000;

/// Per-key GCRA state: for each key, the time at which its budget is full again.
#[derive(Debug)]
pub struct Limiter {
    tat: Mutex<HashMap<String, Instant>>,
    max_keys: usize,
}

impl Default for Limiter {
    fn default() -> Self {
        Self::with_capacity(MAX_KEYS)
    }
}

impl Limiter {
    /// A limiter that keeps at most `max_keys` keys.
    #[must_use]
    pub fn with_capacity(max_keys: usize) -> Self {
        Self {
            tat: Mutex::new(HashMap::new()),
            max_keys: max_keys.max(1),
        }
    }

    /// Takes `cost` cells of `key`'s budget at `rate`, or says how long until it could.
    ///
    /// # Errors
    /// The wait, when the budget does not hold `cost` more cells now.
    pub fn check(&self, key: &str, rate: Rate, cost: u32, now: Instant) -> Result<(), Duration> {
        self.take(key, rate, cost, now, false)
    }

    /// Takes `cost` cells whether or not the budget holds them: for a cost known only after
    /// the request ran. Later requests of the key wait for it.
    pub fn charge(&self, key: &str, rate: Rate, cost: u32, now: Instant) {
        let _ = self.take(key, rate, cost, now, true);
    }

    /// How long until one more cell of `key` would be let through (zero: now), without taking
    /// anything.
    #[must_use]
    pub fn wait(&self, key: &str, rate: Rate, now: Instant) -> Duration {
        if rate.is_off() {
            return Duration::ZERO;
        }
        let map = self.tat.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(tat) = map.get(key) else {
            return Duration::ZERO;
        };
        let tolerance = rate.interval() * rate.burst.saturating_sub(1);
        (*tat).saturating_duration_since(now + tolerance)
    }

    /// Forgets `key` (its budget is full again): after a successful sign-in, for one.
    pub fn forget(&self, key: &str) {
        self.tat
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    /// Keys held (for tests and metrics).
    #[must_use]
    pub fn len(&self) -> usize {
        self.tat
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no key is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take(
        &self,
        key: &str,
        rate: Rate,
        cost: u32,
        now: Instant,
        force: bool,
    ) -> Result<(), Duration> {
        if rate.is_off() || cost == 0 {
            return Ok(());
        }
        let interval = rate.interval();
        // The budget holds `burst` cells: a request passes when, after it, the arrival time
        // is no further ahead of now than `burst - 1` cells.
        let tolerance = interval * rate.burst.saturating_sub(1);
        let mut map = self.tat.lock().unwrap_or_else(PoisonError::into_inner);
        if !map.contains_key(key) && map.len() >= self.max_keys {
            map.retain(|_, tat| *tat > now);
        }
        let key = if !map.contains_key(key) && map.len() >= self.max_keys {
            // Still full of live keys (a flood of distinct keys): new keys share one budget,
            // which the flood spends, while keys already held keep theirs.
            "\u{0}overflow"
        } else {
            key
        };
        let tat = map.get(key).copied().unwrap_or(now).max(now);
        let next = tat + interval * (cost - 1);
        if !force && next > now + tolerance {
            return Err(next - (now + tolerance));
        }
        map.insert(key.to_owned(), next + interval);
        Ok(())
    }
}

/// The server's rate limits (each a `roster serve` flag; `0/s` turns one off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RateSettings {
    /// SCIM requests per token (a tenant's `settings.rate_limit.per_token` overrides it).
    pub scim_per_token: Rate,
    /// SCIM requests per tenant, all its tokens together (`settings.rate_limit.per_tenant`).
    pub scim_per_tenant: Rate,
    /// Refused SCIM authentications per (source address, tenant).
    pub scim_auth_failures: Rate,
    /// Admin API requests per admin key.
    pub admin_per_key: Rate,
    /// Refused admin API authentications per source address.
    pub admin_auth_failures: Rate,
    /// Console password sign-ins per (account, source address), counted before hashing.
    pub sign_in: Rate,
    /// Console password sign-ins per account from all addresses: beyond it, each attempt is
    /// delayed, never refused, so nobody can lock an operator out.
    pub sign_in_account: Rate,
    /// Resources an unindexed filter or sort examines per unit of cost: a list that
    /// examined 10,000 resources in memory costs 1 + 10,000 / this.
    pub examined_per_cost: u32,
    /// Most resources a filter or sort that SQL cannot answer exactly may evaluate in memory;
    /// beyond it the list is refused with 400 `tooMany`.
    pub max_candidates: u64,
}

impl Default for RateSettings {
    fn default() -> Self {
        Self {
            // Entra ID and Okta send a few requests per second per app (Okta up to about 10
            // at once on a large push); these leave room for several times that.
            scim_per_token: Rate::per_second(250, 2500),
            scim_per_tenant: Rate::per_second(500, 5000),
            scim_auth_failures: Rate::per_minute(30, 30),
            admin_per_key: Rate::per_second(2000, 4000),
            admin_auth_failures: Rate::per_minute(30, 30),
            sign_in: Rate::per_minute(5, 10),
            sign_in_account: Rate::per_minute(30, 30),
            examined_per_cost: 1000,
            max_candidates: 50_000,
        }
    }
}

/// The limiters of one process.
#[derive(Debug, Default)]
pub struct Limiters {
    /// SCIM budgets, keyed `token:PREFIX` and `tenant:ID`.
    pub scim: Limiter,
    /// Authentication failures, keyed `scim:ADDR:TENANT` and `admin:ADDR`.
    pub failures: Limiter,
    /// Admin API budgets per key prefix.
    pub admin: Limiter,
    /// Console sign-in budgets, keyed `pair:EMAIL:ADDR` and `account:EMAIL`.
    pub sign_in: Limiter,
    /// 429s answered, by which limit (for metrics and tests).
    refused: Mutex<HashMap<&'static str, u64>>,
}

impl Limiters {
    /// Counts a 429 of `limit`.
    pub fn note_refused(&self, limit: &'static str) {
        *self
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(limit)
            .or_default() += 1;
    }

    /// 429s answered so far, by limit.
    #[must_use]
    pub fn refused(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<_> = self
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, n)| (*k, *n))
            .collect();
        v.sort_unstable();
        v
    }
}

/// Whole seconds to wait, at least 1 (`Retry-After` has second resolution, and 0 would invite
/// an immediate retry that is refused again).
#[must_use]
pub fn retry_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

/// A 429 with `Retry-After` and a SCIM error body whose detail says which budget ran out.
#[must_use]
pub fn too_many(what: &str, rate: Rate, wait: Duration) -> HttpError {
    let secs = retry_secs(wait);
    HttpError {
        error: scim_proto::ScimError::new(
            429,
            None,
            format!(
                "too many requests {what} (the limit is {}, burst {}); retry after {secs} s",
                per_text(rate),
                rate.burst
            ),
        ),
        headers: vec![(header::RETRY_AFTER, HeaderValue::from(secs))],
    }
}

fn per_text(rate: Rate) -> String {
    let unit = match rate.every.as_secs() {
        1 => "second",
        60 => "minute",
        _ => "hour",
    };
    format!("{} per {unit}", rate.per)
}

/// The cost of a list request that examined `examined` resources in memory.
#[must_use]
pub fn examined_cost(examined: u64, per_cost: u32) -> u32 {
    u32::try_from(examined / u64::from(per_cost.max(1))).unwrap_or(u32::MAX)
}

/// The client's address of a request (see [`client_addr`]); `None` when the request did not
/// come over a connection (tests that call the router directly).
#[must_use]
pub fn source(state: &crate::AppState, parts: &axum::http::request::Parts) -> Option<IpAddr> {
    source_of(state, &parts.extensions, &parts.headers)
}

/// [`source`] from a request's extensions and headers.
#[must_use]
pub fn source_of(
    state: &crate::AppState,
    extensions: &axum::http::Extensions,
    headers: &axum::http::HeaderMap,
) -> Option<IpAddr> {
    let peer = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    client_addr(peer, forwarded, &state.settings.trusted_proxies)
}

/// The client's address: the connection's peer, or, when the peer is a trusted proxy, the
/// right-most address of `X-Forwarded-For` that is not itself a trusted proxy (the left part
/// of the header is whatever the client wrote).
#[must_use]
pub fn client_addr(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[ipnet::IpNet],
) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |a: &IpAddr| trusted.iter().any(|n| n.contains(a));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let Some(header) = forwarded_for else {
        return Some(peer);
    };
    let mut last = peer;
    for hop in header.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(a) if is_trusted(&a) => last = a,
            Ok(a) => return Some(a),
            // A malformed entry: the proxies before it cannot be trusted to have written it.
            Err(_) => return Some(last),
        }
    }
    Some(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        assert_eq!("50/s:200".parse(), Ok(Rate::per_second(50, 200)));
        assert_eq!("10/min".parse(), Ok(Rate::per_minute(10, 10)));
        let h: Rate = "3/h".parse().unwrap();
        assert_eq!((h.per, h.every.as_secs(), h.burst), (3, 3600, 3));
        assert!("0/s".parse::<Rate>().unwrap().is_off());
        for bad in [
            "",
            "50",
            "50/d",
            "x/s",
            "-1/s",
            "5/s:x",
            "2000000/s",
            "5/s:2000000",
        ] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
        assert_eq!(Rate::per_second(50, 200).to_string(), "50/s:200");
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let l = Limiter::default();
        let r = Rate::per_second(10, 5);
        let t0 = Instant::now();
        for i in 0..5 {
            assert_eq!(l.check("k", r, 1, t0), Ok(()), "burst {i}");
        }
        let wait = l.check("k", r, 1, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        assert_eq!(l.wait("k", r, t0), Duration::from_millis(100));
        // Another key has its own budget.
        assert_eq!(l.check("other", r, 1, t0), Ok(()));
        // After one interval, one more.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(l.check("k", r, 1, t1), Ok(()));
        assert!(l.check("k", r, 1, t1).is_err());
        // After a quiet second, the whole burst again.
        let t2 = t1 + Duration::from_secs(1);
        for _ in 0..5 {
            assert_eq!(l.check("k", r, 1, t2), Ok(()));
        }
        assert!(l.check("k", r, 1, t2).is_err());
    }

    #[test]
    fn costs_and_charges_spend_several_cells() {
        let l = Limiter::default();
        let r = Rate::per_second(10, 10);
        let t0 = Instant::now();
        assert_eq!(l.check("k", r, 8, t0), Ok(()));
        assert!(l.check("k", r, 3, t0).is_err(), "8 + 3 > 10");
        assert_eq!(l.check("k", r, 2, t0), Ok(()));
        // A charge after the fact is taken even beyond the budget, and later requests wait.
        l.charge("k", r, 20, t0);
        assert_eq!(l.check("k", r, 1, t0), Err(Duration::from_millis(2100)));
        l.forget("k");
        assert_eq!(l.check("k", r, 1, t0), Ok(()));
    }

    #[test]
    fn off_limits_nothing() {
        let l = Limiter::default();
        let t0 = Instant::now();
        for _ in 0..1000 {
            assert_eq!(l.check("k", "0/s".parse().unwrap(), 5, t0), Ok(()));
        }
        assert!(l.is_empty());
    }

    #[test]
    fn the_key_map_stays_bounded_under_a_flood_of_keys() {
        let l = Limiter::with_capacity(100);
        let r = Rate::per_minute(1, 1);
        let t0 = Instant::now();
        assert_eq!(l.check("held", r, 1, t0), Ok(()));
        for i in 0..10_000 {
            let _ = l.check(&format!("k{i}"), r, 1, t0);
        }
        // At most the capacity and the shared overflow key.
        assert!(l.len() <= 101, "{}", l.len());
        // The held key kept its (spent) budget; new keys now share the overflow budget.
        assert!(l.check("held", r, 1, t0).is_err());
        assert!(l.check("new", r, 1, t0).is_err());
        // Once budgets refill, full keys are forgotten and new keys get their own again.
        let later = t0 + Duration::from_secs(120);
        assert_eq!(l.check("new", r, 1, later), Ok(()));
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        assert_eq!(retry_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_secs(Duration::from_millis(1000)), 1);
        assert_eq!(retry_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_secs(Duration::ZERO), 1);
    }

    #[test]
    fn forwarded_for_is_read_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // A client that is not a proxy cannot choose its address.
        assert_eq!(
            client_addr(Some(ip("203.0.113.9")), Some("1.2.3.4"), &trusted),
            Some(ip("203.0.113.9"))
        );
        // Through a trusted proxy: the right-most untrusted hop.
        assert_eq!(
            client_addr(
                Some(ip("10.0.0.2")),
                Some("6.6.6.6, 198.51.100.7, 10.0.0.9"),
                &trusted
            ),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            client_addr(Some(ip("10.0.0.2")), None, &trusted),
            Some(ip("10.0.0.2"))
        );
        assert_eq!(
            client_addr(Some(ip("10.0.0.2")), Some("garbage, 10.0.0.3"), &trusted),
            Some(ip("10.0.0.3"))
        );
        assert_eq!(client_addr(None, Some("1.2.3.4"), &trusted), None);
    }
}
