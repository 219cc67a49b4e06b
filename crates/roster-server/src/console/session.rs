//! Console sessions: the cookie, the [`Session`] extractor (which also checks that the key or
//! operator account behind a session still exists), CSRF tokens, and the form extractors that
//! enforce same-origin posts ([`Posted`] for signed-in pages, [`PrePosted`] for the sign-in
//! and setup-link forms).

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Request};
use axum::http::header::{COOKIE, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use roster_store::{ConsoleSession, Tenant};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use time::Duration;

use super::ConsoleError;
use crate::tokens::{digests_equal, hash_token, random_alnum};
use crate::AppState;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "roster_console";
/// The pre-session cookie of the sign-in and setup-link forms (double-submit CSRF token).
pub const PRE_COOKIE: &str = "roster_console_pre";

/// A signed-in console session (operator or tenant-scoped).
#[derive(Debug, Clone)]
pub struct Session {
    /// The stored record.
    pub record: ConsoleSession,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    /// Where this request's session and tenant are left for the error page's navigation.
    seen: Option<Seen>,
    /// Seals the values this session's next page shows once.
    once_key: OnceKey,
}

/// The session (and the tenant it was allowed to see) that a request's handler found: the
/// console's `navigation` layer puts one in each request, [`Session`] fills it, and the layer
/// reads it to give an error page the signed-in user's navigation.
#[derive(Debug, Clone, Default)]
pub struct Seen(Arc<Mutex<Option<Found>>>);

/// A request's session, and the tenant it was allowed to see.
type Found = (Session, Option<Tenant>);

impl Seen {
    /// The session and tenant found, if any.
    pub(super) fn get(&self) -> Option<Found> {
        self.0.lock().ok().and_then(|g| g.clone())
    }

    fn set_session(&self, s: &Session) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some((
                Session {
                    seen: None,
                    ..s.clone()
                },
                None,
            ));
        }
    }

    fn set_tenant(&self, t: &Tenant) {
        if let Ok(mut g) = self.0.lock() {
            if let Some((_, tenant)) = g.as_mut() {
                *tenant = Some(t.clone());
            }
        }
    }
}

/// How long a value kept for the next page waits for it.
const ONCE_TTL: Duration = Duration::minutes(10);

/// The key that seals a session's one-time values: derived from the session's id, which only
/// the browser's (HttpOnly) cookie holds; the database keeps the id's hash, so a sealed value
/// in it opens for that browser's next request, on any node, and for nobody else.
#[derive(Clone)]
struct OnceKey([u8; 32]);

impl std::fmt::Debug for OnceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnceKey(..)")
    }
}

impl OnceKey {
    fn of(session_id: &str) -> Self {
        Self(Sha256::digest(format!("roster-console-once\0{session_id}").as_bytes()).into())
    }

    fn aead(&self) -> Option<LessSafeKey> {
        UnboundKey::new(&AES_256_GCM, &self.0)
            .ok()
            .map(LessSafeKey::new)
    }

    /// `value` sealed (AES-256-GCM, the name as associated data, so a value moved to another
    /// name does not open): base64url of nonce || ciphertext || tag.
    fn seal(&self, name: &str, value: &str) -> Option<String> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok()?;
        let mut data = value.as_bytes().to_vec();
        self.aead()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut data,
            )
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend(data);
        Some(URL_SAFE_NO_PAD.encode(out))
    }

    fn open(&self, name: &str, sealed: &str) -> Option<String> {
        let raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let mut data = rest.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let plain = self
            .aead()?
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut data)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

/// The CSRF token of a session: a digest of the session id, which only the browser holding
/// the (HttpOnly) cookie knows; so it is unguessable cross-site and needs no storage.
fn csrf_for(session_id: &str) -> String {
    let d = Sha256::digest(format!("roster-console-csrf\0{session_id}").as_bytes());
    hex::encode(&d[..20])
}

impl Session {
    /// Whether this is an operator session (every tenant).
    #[must_use]
    pub fn is_operator(&self) -> bool {
        self.record.tenant_id.is_none()
    }

    /// Keeps `value` for this session's next GET that asks for `key` (see [`Self::take_once`]):
    /// sealed with the session's key, in the database, so that the GET may reach any node.
    /// A failure is logged and the page then says the value cannot be shown again.
    pub async fn put_once(&self, state: &AppState, key: &str, value: &str) {
        let now = state.clock.now();
        let Some(sealed) = self.once_key.seal(key, value) else {
            tracing::error!("console: sealing a one-time value failed");
            return;
        };
        if let Err(e) = state
            .store
            .put_once(&self.record.id_hash, key, &sealed, now, now + ONCE_TTL)
            .await
        {
            tracing::error!(error = %e, "console: keeping a one-time value failed");
        }
    }

    /// The value kept for `key` by [`Self::put_once`], removed: a second GET gets `None`.
    pub async fn take_once(&self, state: &AppState, key: &str) -> Option<String> {
        let sealed = state
            .store
            .take_once(&self.record.id_hash, key, state.clock.now())
            .await
            .map_err(|e| tracing::error!(error = %e, "console: taking a one-time value failed"))
            .ok()??;
        self.once_key.open(key, &sealed)
    }

    /// Who is signed in, for the page header.
    #[must_use]
    pub fn label(&self) -> String {
        let actor = &self.record.actor;
        if let Some(email) = actor.strip_prefix("operator:") {
            format!("Operator {email}")
        } else if let Some(prefix) = actor.strip_prefix("admin-key:") {
            format!("Operator (key {prefix})")
        } else {
            "IT admin".to_owned()
        }
    }

    /// Who the audit log names for this session's actions.
    #[must_use]
    pub fn actor(&self) -> String {
        format!("console:{}", self.record.actor)
    }

    /// Writes an action of this session to the audit log, about `tenant` (and `target`).
    pub async fn audit(
        &self,
        state: &AppState,
        action: &str,
        tenant: &str,
        target: Option<&str>,
        details: serde_json::Value,
    ) {
        crate::ops::audit(
            state.store.as_ref(),
            state.clock.now(),
            &self.actor(),
            action,
            Some(tenant),
            target,
            details,
        )
        .await;
    }

    /// Checks a submitted CSRF token in constant time.
    ///
    /// # Errors
    /// [`ConsoleError::Csrf`] when it is missing or wrong.
    pub fn check_csrf(&self, submitted: Option<&str>) -> Result<(), ConsoleError> {
        if submitted.is_some_and(|s| digests_equal(s, &self.csrf)) {
            Ok(())
        } else {
            Err(ConsoleError::Csrf)
        }
    }

    /// Refuses a tenant-scoped session.
    ///
    /// # Errors
    /// [`ConsoleError::Forbidden`].
    pub fn require_operator(&self) -> Result<(), ConsoleError> {
        if self.is_operator() {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden)
        }
    }

    /// The live tenant `id`, if this session may see it; otherwise `NotFound` (never
    /// "forbidden", so a scoped session cannot tell that other tenants exist).
    ///
    /// # Errors
    /// `NotFound` for another tenant, an unknown or a deleted one.
    pub async fn tenant(&self, state: &AppState, id: &str) -> Result<Tenant, ConsoleError> {
        if self.record.tenant_id.as_deref().is_some_and(|s| s != id) {
            return Err(ConsoleError::NotFound);
        }
        let t = crate::ops::live_tenant(state.store.as_ref(), id).await?;
        if let Some(seen) = &self.seen {
            seen.set_tenant(&t);
        }
        Ok(t)
    }
}

/// The value of cookie `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Whether cookies must be `Secure`: always, unless the server runs for local development
/// (`--insecure-dev`, or served on loopback only: no public URL, or a loopback one).
fn secure(state: &AppState) -> bool {
    let s = &state.settings;
    !s.insecure_dev
        && s.public_url
            .as_deref()
            .is_some_and(|u| !crate::urls::is_loopback_url(u))
}

/// A `Set-Cookie` value: `HttpOnly` (no script reads it), `SameSite=Strict` (no request from
/// another site carries it), `Path=/console`, and `Secure` under https.
fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Duration) -> HeaderValue {
    let v = format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{}",
        max_age.whole_seconds().max(0),
        if secure(state) { "; Secure" } else { "" }
    );
    // Only our own random alphanumerics go in: always a valid header value.
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Set-Cookie` that ends the session cookie.
pub fn clear_session_cookie(state: &AppState) -> HeaderValue {
    set_cookie(state, COOKIE_NAME, "", Duration::ZERO)
}

/// Starts a session for `actor` (scoped to `tenant` when given) and returns its `Set-Cookie`.
///
/// # Errors
/// When the store fails.
pub async fn start(
    state: &AppState,
    tenant: Option<String>,
    actor: String,
    ttl: Duration,
) -> Result<HeaderValue, ConsoleError> {
    let id = random_alnum(43);
    let now = state.clock.now();
    state
        .store
        .insert_session(&ConsoleSession {
            id_hash: hash_token(&id),
            tenant_id: tenant,
            actor,
            created_at: now,
            expires_at: now + ttl,
        })
        .await?;
    Ok(set_cookie(state, COOKIE_NAME, &id, ttl))
}

/// Whether the key or account a session was started with still works.
async fn actor_is_live(state: &AppState, actor: &str) -> Result<bool, ConsoleError> {
    if let Some(prefix) = actor.strip_prefix("admin-key:") {
        let key = state.store.find_admin_key(prefix).await?;
        return Ok(key.is_some_and(|k| k.revoked_at.is_none()));
    }
    if let Some(email) = actor.strip_prefix("operator:") {
        return Ok(state.store.get_operator(email).await?.is_some());
    }
    // Setup-link sessions end with their tenant (the row cascades) or their expiry.
    Ok(true)
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ConsoleError> {
        // Inside the nested router the URI lacks its `/console` prefix: take the original.
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |o| &o.0);
        let next = (parts.method == Method::GET)
            .then(|| uri.path_and_query().map(ToString::to_string))
            .flatten();
        let sign_in = || ConsoleError::SignIn { next: next.clone() };
        let id = cookie(&parts.headers, COOKIE_NAME)
            .filter(|v| !v.is_empty())
            .ok_or_else(sign_in)?;
        let record = state
            .store
            .find_session(&hash_token(&id), state.clock.now())
            .await?
            .ok_or_else(sign_in)?;
        if !actor_is_live(state, &record.actor).await? {
            // The key was revoked or the operator removed: the session ends with it.
            state.store.delete_session(&record.id_hash).await?;
            return Err(sign_in());
        }
        let seen = parts.extensions.get::<Seen>().cloned();
        let session = Self {
            record,
            csrf: csrf_for(&id),
            seen,
            once_key: OnceKey::of(&id),
        };
        if let Some(seen) = &session.seen {
            seen.set_session(&session);
        }
        Ok(session)
    }
}

/// The origin the console is served at, as a browser names it in `Origin`: the public URL's,
/// or `…://{Host}` (compared without the scheme, since a TLS-terminating proxy may sit in front).
fn same_origin(headers: &HeaderMap, state: &AppState) -> bool {
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"))
    {
        return false;
    }
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        // Browsers send Origin on every POST; clients that do not (curl, tests) are not a
        // cross-site threat and still need the CSRF token.
        return true;
    };
    let authority = |u: &str| {
        u.split_once("://")
            .map_or(u, |(_, rest)| rest)
            .trim_end_matches('/')
            .to_ascii_lowercase()
    };
    if origin == "null" {
        return false;
    }
    let own = crate::urls::origin(state);
    let (got, want) = (authority(origin), authority(&own));
    if got == want {
        return true;
    }
    // Served on loopback without a public URL: `localhost`, `127.0.0.1` and `[::1]` name the
    // same server, on the same port.
    let port = |a: &str| a.rsplit_once(':').map(|(_, p)| p.to_owned());
    state.settings.public_url.is_none()
        && crate::urls::is_loopback_url(origin)
        && port(&got).is_some()
        && port(&got) == port(&want)
}

/// Reads an urlencoded form body: its `csrf` field and the form itself.
fn read_form<T: DeserializeOwned>(body: &[u8]) -> Result<(Option<String>, T), ConsoleError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| ConsoleError::Invalid("the form could not be read".to_owned()))?;
    let csrf = pairs.into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v);
    let form = serde_urlencoded::from_bytes(body)
        .map_err(|e| ConsoleError::Invalid(format!("the form could not be read: {e}")))?;
    Ok((csrf, form))
}

/// A form posted from a signed-in page: same-origin, with the session's CSRF token.
#[derive(Debug)]
pub struct Posted<T> {
    /// The session that posted it.
    pub session: Session,
    /// The form's fields.
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Posted<T> {
    type Rejection = ConsoleError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ConsoleError> {
        let (mut parts, body) = req.into_parts();
        if !same_origin(&parts.headers, state) {
            return Err(ConsoleError::Csrf);
        }
        let session = Session::from_request_parts(&mut parts, state).await?;
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|_| ConsoleError::Invalid("the form could not be read".to_owned()))?;
        let (csrf, form) = read_form(&bytes)?;
        session.check_csrf(csrf.as_deref())?;
        Ok(Self { session, form })
    }
}

/// A form posted from a page outside any session (sign-in, setup link): same-origin, and its
/// `csrf` field equals the pre-session cookie the page set (double submit).
#[derive(Debug)]
pub struct PrePosted<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for PrePosted<T> {
    type Rejection = ConsoleError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ConsoleError> {
        let (parts, body) = req.into_parts();
        if !same_origin(&parts.headers, state) {
            return Err(ConsoleError::Csrf);
        }
        let expected = cookie(&parts.headers, PRE_COOKIE).filter(|v| v.len() == 32);
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|_| ConsoleError::Invalid("the form could not be read".to_owned()))?;
        let (csrf, form) = read_form(&bytes)?;
        match (expected, csrf) {
            (Some(e), Some(c)) if digests_equal(&e, &c) => Ok(Self(form)),
            _ => Err(ConsoleError::Csrf),
        }
    }
}

/// The pre-session token of a sign-in or setup page: the browser's current one, or a new one
/// with the `Set-Cookie` that gives it.
pub fn pre_token(state: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match cookie(headers, PRE_COOKIE).filter(|v| v.len() == 32) {
        Some(t) => (t, None),
        None => {
            let t = random_alnum(32);
            let c = set_cookie(state, PRE_COOKIE, &t, Duration::hours(12));
            (t, Some(c))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_time_values_open_only_with_their_session_and_name() {
        let a = OnceKey::of("session-a");
        let sealed = a.seal("token:acme", "rst_secret").unwrap();
        assert!(!sealed.contains("rst_secret"));
        assert_eq!(a.open("token:acme", &sealed).as_deref(), Some("rst_secret"));
        assert_eq!(OnceKey::of("session-b").open("token:acme", &sealed), None);
        assert_eq!(a.open("link:acme", &sealed), None);
        assert_eq!(a.open("token:acme", "not base64!"), None);
        assert_eq!(a.open("token:acme", ""), None);
        assert_ne!(a.seal("token:acme", "rst_secret").unwrap(), sealed);
        assert_eq!(format!("{a:?}"), "OnceKey(..)");
    }

    #[test]
    fn csrf_tokens_depend_on_the_session() {
        assert_eq!(csrf_for("a"), csrf_for("a"));
        assert_ne!(csrf_for("a"), csrf_for("b"));
        assert_eq!(csrf_for("a").len(), 40);
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("x=1; roster_console=abc; roster_console_pre=def"),
        );
        assert_eq!(cookie(&h, COOKIE_NAME).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, PRE_COOKIE).as_deref(), Some("def"));
        assert_eq!(cookie(&h, "y"), None);
    }
}
