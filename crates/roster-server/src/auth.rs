//! Bearer-token authentication of SCIM requests (RFC 6750).
//!
//! A request is let through only if its token is well-formed, known, unrevoked, unexpired and
//! issued for the tenant named in the URL, and SCIM is enabled for that tenant. Every refusal
//! is the same 401 with `WWW-Authenticate: Bearer`, so a caller cannot learn which tenants
//! exist. Tokens are never logged; only their public prefix may be.
//!
//! The token and its tenant come from the in-memory [`AuthCache`](crate::auth_cache), kept
//! fresh by [`run_cache_sync`]; a successful use is noted in memory ([`UseTracker`]) and
//! written by [`run_use_flusher`] in the background, so that a request neither waits for the
//! database to authenticate nor writes anything to be let in.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Path};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use roster_store::Tenant;
use time::OffsetDateTime;

use crate::error::HttpError;
use crate::ratelimit::{self, Rate};
use crate::tokens;
use crate::AppState;

/// Successful uses of tokens and admin keys not yet written: the latest time per prefix.
/// Requests only note a use here; [`run_use_flusher`] writes them in one batch per interval,
/// so each token's `last_used_at` is written at most once per interval, never by a request.
#[derive(Debug, Default)]
pub struct UseTracker {
    tokens: Mutex<HashMap<String, OffsetDateTime>>,
    keys: Mutex<HashMap<String, OffsetDateTime>>,
}

/// Uses taken from a [`UseTracker`] to be written.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Uses {
    /// (token prefix, latest use).
    pub tokens: Vec<(String, OffsetDateTime)>,
    /// (admin key prefix, latest use).
    pub keys: Vec<(String, OffsetDateTime)>,
}

fn note(map: &Mutex<HashMap<String, OffsetDateTime>>, prefix: &str, at: OffsetDateTime) {
    let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
    match map.get_mut(prefix) {
        Some(t) if *t >= at => {}
        Some(t) => *t = at,
        None => {
            map.insert(prefix.to_owned(), at);
        }
    }
}

fn drain(map: &Mutex<HashMap<String, OffsetDateTime>>) -> Vec<(String, OffsetDateTime)> {
    let taken = std::mem::take(&mut *map.lock().unwrap_or_else(PoisonError::into_inner));
    let mut v: Vec<_> = taken.into_iter().collect();
    v.sort();
    v
}

impl UseTracker {
    /// Notes a successful use of a SCIM token.
    pub fn token_used(&self, prefix: &str, at: OffsetDateTime) {
        note(&self.tokens, prefix, at);
    }

    /// Notes a successful use of an admin key.
    pub fn key_used(&self, prefix: &str, at: OffsetDateTime) {
        note(&self.keys, prefix, at);
    }

    /// Takes every use noted so far.
    pub fn take(&self) -> Uses {
        Uses {
            tokens: drain(&self.tokens),
            keys: drain(&self.keys),
        }
    }

    /// Puts back uses whose write failed, so that the next flush retries them.
    pub fn put_back(&self, uses: Uses) {
        for (p, at) in uses.tokens {
            self.token_used(&p, at);
        }
        for (p, at) in uses.keys {
            self.key_used(&p, at);
        }
    }
}

/// Writes the uses noted so far (best effort: a failure is logged and retried next time).
pub async fn flush_uses(state: &AppState) {
    let uses = state.token_uses.take();
    let mut failed = Uses::default();
    if !uses.tokens.is_empty() {
        if let Err(e) = state.store.touch_tokens(&uses.tokens).await {
            tracing::warn!(error = %e, "writing tokens' last use failed; retrying later");
            failed.tokens = uses.tokens;
        }
    }
    if !uses.keys.is_empty() {
        if let Err(e) = state.store.touch_admin_keys(&uses.keys).await {
            tracing::warn!(error = %e, "writing admin keys' last use failed; retrying later");
            failed.keys = uses.keys;
        }
    }
    state.token_uses.put_back(failed);
}

/// Writes the noted uses every `every` ([`crate::Settings::token_use_flush_interval`]), and
/// once more when `stop` turns true.
pub async fn run_use_flusher(
    state: AppState,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let stopping = tokio::select! {
            () = tokio::time::sleep(every) => false,
            r = stop.changed() => r.is_err() || *stop.borrow(),
        };
        flush_uses(&state).await;
        if stopping {
            return;
        }
    }
}

/// Keeps the [`AuthCache`](crate::auth_cache::AuthCache) in step with changes made by other
/// processes: reads the store's persistent [`auth_epoch`](roster_store::Store::auth_epoch)
/// every `every` ([`crate::Settings::auth_sync_interval`]) and empties the cache when it moved.
/// When the read fails the cache is emptied too: what cannot be confirmed is not served. The
/// global custom schemas are re-read on the same beat
/// ([`roster_store::load_global_custom_schemas`]).
pub async fn run_cache_sync(
    state: AppState,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut seen: Option<i64> = None;
    let mut failing = false;
    let mut schemas_failing = false;
    loop {
        // The custom schemas declared for every tenant, which another process may change.
        match roster_store::load_global_custom_schemas(state.store.as_ref()).await {
            Ok(_) => schemas_failing = false,
            Err(e) => {
                if !schemas_failing {
                    tracing::warn!(error = %e, "reading the global custom schemas failed");
                }
                schemas_failing = true;
            }
        }
        // The vendor's branding, which another process may change.
        if let Err(e) = crate::ops::branding::load(state.store.as_ref()).await {
            tracing::debug!(error = %e, "reading the branding failed");
        }
        match state.store.auth_epoch().await {
            Ok(n) => {
                if seen != Some(n) {
                    state.auth.invalidate();
                    seen = Some(n);
                }
                failing = false;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "reading the auth epoch failed; not caching tokens");
                }
                failing = true;
                seen = None;
                state.auth.invalidate();
            }
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
    }
}

/// An authenticated SCIM request: the tenant its token belongs to.
#[derive(Debug, Clone)]
pub struct Authed {
    /// The tenant.
    pub tenant: Tenant,
    /// The token's public prefix (its rate-limit key).
    pub prefix: String,
}

impl Authed {
    /// The tenant's definition of `kind`, with its custom schema extensions.
    #[must_use]
    pub fn def(&self, kind: scim_proto::schema::ResourceKind) -> scim_proto::schema::TypeDef {
        self.tenant.def(kind)
    }
}

fn bearer(parts: &Parts) -> Result<&str, HttpError> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| {
            HttpError::unauthorized(
                "missing Authorization header; send \"Authorization: Bearer <token>\"",
            )
        })?
        .to_str()
        .map_err(|_| HttpError::unauthorized("malformed Authorization header"))?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(|| {
        HttpError::unauthorized("malformed Authorization header; expected \"Bearer <token>\"")
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(HttpError::unauthorized(
            "unsupported authorization scheme; use \"Authorization: Bearer <token>\"",
        ));
    }
    Ok(token.trim())
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = HttpError;

    /// Authenticates, then takes one request from the token's and the tenant's budgets; a
    /// refused authentication takes one from the (source address, tenant) failure budget, and
    /// once that is spent the answer is 429 instead of 401.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, HttpError> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| HttpError::status(404, "no such endpoint"))?;
        let tenant_id = params.get("tenant").cloned().unwrap_or_default();
        let now = Instant::now();
        let rates = &state.settings.rate;
        match authenticate(parts, state, &tenant_id).await {
            Ok((tenant, prefix)) => {
                let (per_token, per_tenant) = tenant_rates(rates, &tenant);
                let limiters = &state.limiters;
                if let Err(wait) =
                    limiters
                        .scim
                        .check(&format!("token:{prefix}"), per_token, 1, now)
                {
                    limiters.note_refused("scim_token");
                    return Err(ratelimit::too_many("for this token", per_token, wait));
                }
                if let Err(wait) =
                    limiters
                        .scim
                        .check(&format!("tenant:{}", tenant.id), per_tenant, 1, now)
                {
                    limiters.note_refused("scim_tenant");
                    return Err(ratelimit::too_many(
                        "for this organisation",
                        per_tenant,
                        wait,
                    ));
                }
                Ok(Self { tenant, prefix })
            }
            Err(e) if e.error.status == 401 => {
                let source = ratelimit::source(state, parts)
                    .map_or_else(|| "-".to_owned(), |a| a.to_string());
                // Tenant ids are at most 63 characters: a longer segment names no tenant, and
                // must not make the key (kept in memory) as long as the URL.
                let tenant_key = if tenant_id.len() <= crate::ops::tenants::MAX_ID_LEN {
                    tenant_id.as_str()
                } else {
                    "-"
                };
                let rate = rates.scim_auth_failures;
                match state.limiters.failures.check(
                    &format!("scim:{source}:{tenant_key}"),
                    rate,
                    1,
                    now,
                ) {
                    Ok(()) => Err(e),
                    Err(wait) => {
                        state.limiters.note_refused("scim_auth_failures");
                        Err(ratelimit::too_many(
                            "with a refused token from this address",
                            rate,
                            wait,
                        ))
                    }
                }
            }
            Err(e) => Err(e),
        }
    }
}

/// The token's and the tenant's SCIM rates: the tenant's `settings.rate_limit` where set
/// (checked when saved), else the server's.
fn tenant_rates(rates: &ratelimit::RateSettings, tenant: &Tenant) -> (Rate, Rate) {
    let own = &tenant.settings.rate_limit;
    let pick = |set: Option<&String>, default: Rate| {
        set.and_then(|r| r.parse::<Rate>().ok()).unwrap_or(default)
    };
    (
        pick(own.per_token.as_ref(), rates.scim_per_token),
        pick(own.per_tenant.as_ref(), rates.scim_per_tenant),
    )
}

/// Charges the request's token and tenant `extra` more requests' worth, after it ran: an
/// unindexed filter or sort that examined many resources in memory.
pub fn charge(state: &AppState, auth: &Authed, extra: u32) {
    if extra == 0 {
        return;
    }
    let (per_token, per_tenant) = tenant_rates(&state.settings.rate, &auth.tenant);
    let now = Instant::now();
    let l = &state.limiters.scim;
    l.charge(&format!("token:{}", auth.prefix), per_token, extra, now);
    l.charge(
        &format!("tenant:{}", auth.tenant.id),
        per_tenant,
        extra,
        now,
    );
}

/// The token check: the tenant and the token's public prefix, or the 401.
async fn authenticate(
    parts: &Parts,
    state: &AppState,
    tenant_id: &str,
) -> Result<(Tenant, String), HttpError> {
    let token = bearer(parts)?;
    let invalid = || HttpError::unauthorized("invalid, expired or revoked token for this tenant");
    let prefix = tokens::prefix_of(token).ok_or_else(invalid)?;
    // The public prefix only: the provisioning log must never hold a token.
    crate::provlog::note_token_prefix(prefix);
    let cached = state
        .auth
        .token(state.store.as_ref(), prefix)
        .await?
        .ok_or_else(invalid)?;
    let record = &cached.record;
    // Checked on every request, cached or not: expiry against the clock, the secret in
    // constant time.
    let now = state.clock.now();
    if record.tenant_id != tenant_id
        || record.revoked_at.is_some()
        || record.expires_at <= now
        || !tokens::digests_equal(&tokens::hash_token(token), &record.hash)
    {
        tracing::info!(token_prefix = %record.prefix, tenant = %tenant_id, "token refused");
        return Err(invalid());
    }
    // A deleted tenant answers like a bad token.
    let tenant = cached.tenant.clone().ok_or_else(invalid)?;
    // SCIM disabled answers exactly like a bad token (disabling also revokes every token).
    if !tenant.settings.scim_enabled {
        return Err(invalid());
    }
    crate::provlog::note_idp(&tenant.idp);
    crate::provlog::note_tenant(&tenant.id);
    state.token_uses.token_used(prefix, now);
    Ok((tenant, prefix.to_owned()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use roster_store::sqlite::SqliteStore;
    use roster_store::{Store, TenantSettings};
    use time::macros::datetime;
    use tower::ServiceExt;

    use super::*;
    use crate::{Clock, Settings};

    const T0: OffsetDateTime = datetime!(2026-01-01 00:00:00 UTC);

    /// A clock the test moves.
    struct TestClock(Mutex<OffsetDateTime>);

    impl Clock for TestClock {
        fn now(&self) -> OffsetDateTime {
            *self.0.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }

    impl TestClock {
        fn set(&self, t: OffsetDateTime) {
            *self.0.lock().unwrap_or_else(PoisonError::into_inner) = t;
        }
    }

    struct Fixture {
        state: AppState,
        clock: Arc<TestClock>,
        token: String,
    }

    async fn fixture() -> Fixture {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        store
            .create_tenant(&Tenant {
                id: "acme".into(),
                name: "Acme".into(),
                idp: "generic".into(),
                created_at: T0,
                settings: TenantSettings::default(),
            })
            .await
            .unwrap();
        let issued = tokens::issue("acme", T0, time::Duration::days(1));
        store.insert_token(&issued.record).await.unwrap();
        let clock = Arc::new(TestClock(Mutex::new(T0)));
        let mut state = AppState::new(Arc::new(store), Settings::default());
        state.clock = clock.clone();
        Fixture {
            state,
            clock,
            token: issued.secret,
        }
    }

    async fn status(state: &AppState, tenant: &str, token: &str) -> u16 {
        let req = Request::get(format!("/scim/v2/{tenant}/ServiceProviderConfig"))
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        crate::router(state.clone())
            .oneshot(req)
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    fn prefix(token: &str) -> &str {
        tokens::prefix_of(token).unwrap()
    }

    #[tokio::test]
    async fn a_cached_token_is_still_checked_against_the_clock() {
        let f = fixture().await;
        assert_eq!(status(&f.state, "acme", &f.token).await, 200);
        assert_eq!(f.state.auth.len().0, 1, "cached");
        f.clock.set(T0 + time::Duration::days(1));
        assert_eq!(status(&f.state, "acme", &f.token).await, 401);
    }

    #[tokio::test]
    async fn a_cached_token_is_still_checked_for_secret_and_tenant() {
        let f = fixture().await;
        assert_eq!(status(&f.state, "acme", &f.token).await, 200);
        // The last character changed (to one it is not: a fixed 'x' left a token ending in 'x'
        // unchanged, one run in 60).
        let last = if f.token.ends_with('x') { 'y' } else { 'x' };
        let wrong = format!("{}{last}", &f.token[..f.token.len() - 1]);
        assert_eq!(status(&f.state, "acme", &wrong).await, 401);
        assert_eq!(status(&f.state, "globex", &f.token).await, 401);
        assert_eq!(status(&f.state, "acme", &f.token).await, 200);
    }

    #[tokio::test]
    async fn changes_of_this_process_are_refused_at_once() {
        let f = fixture().await;
        let store = f.state.store.clone();
        assert_eq!(status(&f.state, "acme", &f.token).await, 200);
        store
            .revoke_token("acme", prefix(&f.token), T0)
            .await
            .unwrap();
        assert_eq!(status(&f.state, "acme", &f.token).await, 401, "revoked");

        let next = tokens::issue("acme", T0, time::Duration::days(1));
        store.insert_token(&next.record).await.unwrap();
        assert_eq!(status(&f.state, "acme", &next.secret).await, 200);
        store.disable_scim("acme", T0).await.unwrap();
        assert_eq!(
            status(&f.state, "acme", &next.secret).await,
            401,
            "disabled"
        );

        let again = tokens::issue("acme", T0, time::Duration::days(1));
        store.enable_scim(&again.record, T0).await.unwrap();
        assert_eq!(status(&f.state, "acme", &again.secret).await, 200);
        store
            .delete_tenant("acme", roster_store::TenantDataMode::Retain, T0)
            .await
            .unwrap();
        assert_eq!(
            status(&f.state, "acme", &again.secret).await,
            401,
            "deleted"
        );
    }

    #[tokio::test]
    async fn requests_write_nothing_and_the_flush_writes_the_last_use() {
        let f = fixture().await;
        let store = f.state.store.clone();
        f.clock.set(T0 + time::Duration::minutes(1));
        assert_eq!(status(&f.state, "acme", &f.token).await, 200);
        f.clock.set(T0 + time::Duration::minutes(2));
        assert_eq!(status(&f.state, "acme", &f.token).await, 200);
        let rec = store.find_token(prefix(&f.token)).await.unwrap().unwrap();
        assert_eq!(rec.last_used_at, None, "a request wrote last_used_at");

        flush_uses(&f.state).await;
        let rec = store.find_token(prefix(&f.token)).await.unwrap().unwrap();
        assert_eq!(rec.last_used_at, Some(T0 + time::Duration::minutes(2)));
        assert_eq!(f.state.token_uses.take(), Uses::default(), "flushed once");
        // The flush did not empty the cache: a use is not a change to authentication.
        assert_eq!(f.state.auth.len().0, 1);
    }

    #[test]
    fn the_tracker_keeps_the_latest_use_per_prefix() {
        let t = UseTracker::default();
        t.token_used("rsct_a", T0 + time::Duration::seconds(5));
        t.token_used("rsct_a", T0);
        t.token_used("rsct_b", T0);
        t.key_used("rsak_a", T0);
        let uses = t.take();
        assert_eq!(
            uses.tokens,
            [
                ("rsct_a".to_owned(), T0 + time::Duration::seconds(5)),
                ("rsct_b".to_owned(), T0)
            ]
        );
        assert_eq!(uses.keys, [("rsak_a".to_owned(), T0)]);
        assert_eq!(t.take(), Uses::default());
        t.put_back(uses);
        assert_eq!(t.take().tokens.len(), 2);
    }
}
