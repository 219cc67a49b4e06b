//! What authentication reads, kept in memory: SCIM tokens with their tenant (settings
//! included) and operator API keys, by public prefix. An accepted request costs no database
//! round trip; the checks themselves (tenant, revocation, expiry against the clock, the
//! constant-time hash comparison, SCIM enabled) still run on every request against what is
//! cached, so caching never widens what a token may do.
//!
//! How a change reaches the cache:
//! - **in this process**, at once: the store moves an in-process counter
//!   ([`Store::auth_changes`]) after every committed write to tokens, tenants or admin keys.
//!   Every lookup compares it with the value the cache was filled under and empties the cache
//!   when it moved, so the request after a revocation is checked against the database.
//! - **in other processes** (the `roster` CLI, other nodes on the same database), within about
//!   a quarter of a second: the same writes move a persistent counter in their transaction
//!   ([`Store::auth_epoch`]), and [`crate::auth::run_cache_sync`] reads it a few times a second
//!   and calls [`AuthCache::invalidate`] when it moved.
//!
//! A lookup that misses reads the database, and its result is kept only if nothing was
//! invalidated while it read ([`Ticket`]): a read that raced with a revocation can answer its
//! own request (as it would have without a cache) but never refills the cache with the old row.
//!
//! Only rows that exist are cached (an unknown prefix always reaches the database), so the
//! cache holds at most one entry per token or key ever issued; it is bounded anyway.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use roster_store::{AdminKeyRecord, Store, StoreResult, Tenant, TokenRecord};

/// Entries per map beyond which the map is emptied rather than grown.
const MAX_ENTRIES: usize = 100_000;

/// A cached SCIM token: its record and its tenant as they were when read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedToken {
    /// The token's record (hash, tenant, expiry, revocation).
    pub record: TokenRecord,
    /// The token's tenant; `None` when it no longer exists (deleted).
    pub tenant: Option<Tenant>,
}

/// The cache generation a missed lookup started under; its result is kept only if the cache
/// was not invalidated in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

#[derive(Debug, Default)]
struct Inner {
    /// Moved by every invalidation.
    generation: u64,
    /// The store's in-process counter the entries were read under.
    local: u64,
    tokens: HashMap<String, Arc<CachedToken>>,
    keys: HashMap<String, Arc<AdminKeyRecord>>,
    /// Tenants by id, for requests that name a tenant without a SCIM token (the login
    /// decision); only tenants that exist.
    tenants: HashMap<String, Arc<Tenant>>,
}

impl Inner {
    fn clear(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        self.tokens.clear();
        self.keys.clear();
        self.tenants.clear();
    }

    /// Empties the cache if the store's in-process counter moved past what it was filled under.
    /// Only forward: a request that read the counter a moment earlier than another must not
    /// empty the cache again.
    fn sync(&mut self, local: u64) {
        if local > self.local {
            self.local = local;
            self.clear();
        }
    }
}

/// The in-memory authentication cache (see the module docs).
#[derive(Debug, Default)]
pub struct AuthCache {
    inner: RwLock<Inner>,
}

impl AuthCache {
    /// An empty cache.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    // Nothing panics while a guard is held, so a poisoned lock still holds consistent maps.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Empties the cache; lookups in flight will not refill it with what they read.
    pub fn invalidate(&self) {
        self.write().clear();
    }

    /// Entries held: (tokens, admin keys).
    #[must_use]
    pub fn len(&self) -> (usize, usize) {
        let g = self.read();
        (g.tokens.len(), g.keys.len())
    }

    /// Whether nothing is cached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }

    fn lookup<T>(
        &self,
        local: u64,
        prefix: &str,
        pick: fn(&Inner) -> &HashMap<String, Arc<T>>,
    ) -> Result<Arc<T>, Ticket> {
        {
            let g = self.read();
            if local <= g.local {
                return pick(&g).get(prefix).cloned().ok_or(Ticket(g.generation));
            }
        }
        let mut g = self.write();
        g.sync(local);
        pick(&g).get(prefix).cloned().ok_or(Ticket(g.generation))
    }

    fn keep<T>(
        &self,
        ticket: Ticket,
        local: u64,
        prefix: &str,
        value: Arc<T>,
        pick: fn(&mut Inner) -> &mut HashMap<String, Arc<T>>,
    ) {
        let mut g = self.write();
        g.sync(local);
        if g.generation != ticket.0 {
            return;
        }
        let map = pick(&mut g);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(prefix.to_owned(), value);
    }

    /// The cached token with this prefix, or the ticket to read it under. `local` is the
    /// store's [`Store::auth_changes`] read just before.
    pub fn cached_token(&self, local: u64, prefix: &str) -> Result<Arc<CachedToken>, Ticket> {
        self.lookup(local, prefix, |g| &g.tokens)
    }

    /// Keeps a token read under `ticket`, unless the cache was invalidated since. `local` is
    /// the store's [`Store::auth_changes`] read after the database read.
    pub fn keep_token(&self, ticket: Ticket, local: u64, token: Arc<CachedToken>) {
        let prefix = token.record.prefix.clone();
        self.keep(ticket, local, &prefix, token, |g| &mut g.tokens);
    }

    /// The cached admin key with this prefix, or the ticket to read it under.
    pub fn cached_key(&self, local: u64, prefix: &str) -> Result<Arc<AdminKeyRecord>, Ticket> {
        self.lookup(local, prefix, |g| &g.keys)
    }

    /// Keeps an admin key read under `ticket`, unless the cache was invalidated since.
    pub fn keep_key(&self, ticket: Ticket, local: u64, key: Arc<AdminKeyRecord>) {
        let prefix = key.prefix.clone();
        self.keep(ticket, local, &prefix, key, |g| &mut g.keys);
    }

    /// The token with this prefix and its tenant: from memory, or read from the store (two
    /// primary-key reads) and kept. `None` when no token has the prefix.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn token(
        &self,
        store: &dyn Store,
        prefix: &str,
    ) -> StoreResult<Option<Arc<CachedToken>>> {
        let ticket = match self.cached_token(store.auth_changes(), prefix) {
            Ok(hit) => return Ok(Some(hit)),
            Err(ticket) => ticket,
        };
        let Some(record) = store.find_token(prefix).await? else {
            return Ok(None);
        };
        let tenant = store.get_tenant(&record.tenant_id).await?;
        let token = Arc::new(CachedToken { record, tenant });
        self.keep_token(ticket, store.auth_changes(), token.clone());
        Ok(Some(token))
    }

    /// The tenant with this id: from memory, or read from the store and kept. `None` when no
    /// live tenant has the id (not kept: creating it moves the store's counters anyway, but
    /// unknown names are the caller's to choose and would only crowd out real entries).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn tenant(&self, store: &dyn Store, id: &str) -> StoreResult<Option<Arc<Tenant>>> {
        let ticket = match self.lookup(store.auth_changes(), id, |g| &g.tenants) {
            Ok(hit) => return Ok(Some(hit)),
            Err(ticket) => ticket,
        };
        let Some(tenant) = store.get_tenant(id).await? else {
            return Ok(None);
        };
        let tenant = Arc::new(tenant);
        self.keep(ticket, store.auth_changes(), id, tenant.clone(), |g| {
            &mut g.tenants
        });
        Ok(Some(tenant))
    }

    /// The admin key with this prefix: from memory, or read from the store and kept. `None`
    /// when no key has the prefix.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn admin_key(
        &self,
        store: &dyn Store,
        prefix: &str,
    ) -> StoreResult<Option<Arc<AdminKeyRecord>>> {
        let ticket = match self.cached_key(store.auth_changes(), prefix) {
            Ok(hit) => return Ok(Some(hit)),
            Err(ticket) => ticket,
        };
        let Some(key) = store.find_admin_key(prefix).await? else {
            return Ok(None);
        };
        let key = Arc::new(key);
        self.keep_key(ticket, store.auth_changes(), key.clone());
        Ok(Some(key))
    }
}

#[cfg(test)]
mod tests {
    use roster_store::TenantSettings;
    use time::OffsetDateTime;

    use super::*;

    fn token(prefix: &str) -> Arc<CachedToken> {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        Arc::new(CachedToken {
            record: TokenRecord {
                prefix: prefix.into(),
                tenant_id: "acme".into(),
                hash: "h".into(),
                created_at: t0,
                expires_at: t0,
                last_used_at: None,
                revoked_at: None,
            },
            tenant: Some(Tenant {
                id: "acme".into(),
                name: "Acme".into(),
                idp: "generic".into(),
                created_at: t0,
                settings: TenantSettings::default(),
            }),
        })
    }

    fn key(prefix: &str) -> Arc<AdminKeyRecord> {
        Arc::new(AdminKeyRecord {
            prefix: prefix.into(),
            hash: "h".into(),
            name: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            last_used_at: None,
            revoked_at: None,
            expires_at: None,
            scopes: None,
        })
    }

    #[test]
    fn a_miss_is_kept_and_then_hit() {
        let c = AuthCache::new();
        let ticket = c.cached_token(0, "rsct_a").unwrap_err();
        c.keep_token(ticket, 0, token("rsct_a"));
        assert_eq!(c.cached_token(0, "rsct_a").unwrap(), token("rsct_a"));
        assert!(
            c.cached_token(0, "rsct_b").is_err(),
            "another prefix misses"
        );
        let ticket = c.cached_key(0, "rsak_a").unwrap_err();
        c.keep_key(ticket, 0, key("rsak_a"));
        assert_eq!(c.cached_key(0, "rsak_a").unwrap(), key("rsak_a"));
        assert_eq!(c.len(), (1, 1));
    }

    #[test]
    fn a_change_in_this_process_empties_it_at_the_next_lookup() {
        let c = AuthCache::new();
        let ticket = c.cached_token(3, "rsct_a").unwrap_err();
        c.keep_token(ticket, 3, token("rsct_a"));
        let ticket = c.cached_key(3, "rsak_a").unwrap_err();
        c.keep_key(ticket, 3, key("rsak_a"));
        // A request that read the counter a moment before the others still hits.
        assert!(c.cached_token(2, "rsct_a").is_ok());
        // The store's counter moved: both maps are gone.
        assert!(c.cached_token(4, "rsct_a").is_err());
        assert!(c.cached_key(4, "rsak_a").is_err());
        assert!(c.is_empty());
    }

    #[test]
    fn tenants_are_kept_and_go_with_the_tokens() {
        let c = AuthCache::new();
        let tenant = token("rsct_a").tenant.clone().map(Arc::new).unwrap();
        let ticket = c.lookup(3, "acme", |g| &g.tenants).unwrap_err();
        c.keep(ticket, 3, "acme", tenant.clone(), |g| &mut g.tenants);
        assert_eq!(c.lookup(3, "acme", |g| &g.tenants).unwrap(), tenant);
        // A write to tenants moves the store's counter: the cached tenant is gone with it.
        assert!(c.lookup(4, "acme", |g| &g.tenants).is_err());
        let ticket = c.lookup(4, "acme", |g| &g.tenants).unwrap_err();
        c.invalidate();
        c.keep(ticket, 4, "acme", tenant, |g| &mut g.tenants);
        assert!(
            c.lookup(4, "acme", |g| &g.tenants).is_err(),
            "a read that raced with an invalidation is not kept"
        );
    }

    #[test]
    fn invalidation_empties_it() {
        let c = AuthCache::new();
        let ticket = c.cached_token(0, "rsct_a").unwrap_err();
        c.keep_token(ticket, 0, token("rsct_a"));
        c.invalidate();
        assert!(c.cached_token(0, "rsct_a").is_err());
        assert!(c.is_empty());
    }

    #[test]
    fn a_read_that_raced_with_an_invalidation_is_not_kept() {
        let c = AuthCache::new();
        // Another process's change noticed while the read was in flight.
        let ticket = c.cached_token(0, "rsct_a").unwrap_err();
        c.invalidate();
        c.keep_token(ticket, 0, token("rsct_a"));
        assert!(c.cached_token(0, "rsct_a").is_err(), "the old row was kept");
        // A change of this process committed while the read was in flight.
        let ticket = c.cached_key(0, "rsak_a").unwrap_err();
        c.keep_key(ticket, 1, key("rsak_a"));
        assert!(c.cached_key(1, "rsak_a").is_err(), "the old row was kept");
        // A read that started after the change is kept.
        let ticket = c.cached_key(1, "rsak_a").unwrap_err();
        c.keep_key(ticket, 1, key("rsak_a"));
        assert!(c.cached_key(1, "rsak_a").is_ok());
    }

    #[test]
    fn it_stays_bounded() {
        let c = AuthCache::new();
        for i in 0..=MAX_ENTRIES {
            let p = format!("rsct_{i}");
            let ticket = c.cached_token(0, &p).unwrap_err();
            c.keep_token(ticket, 0, token(&p));
        }
        assert!(c.len().0 <= MAX_ENTRIES);
    }
}
