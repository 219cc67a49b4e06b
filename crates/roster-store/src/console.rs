//! The web console's records: server-side sessions, one-time setup links and operator
//! accounts. Only hashes of the secrets are stored (SHA-256 of session ids and link tokens,
//! Argon2id of operator passwords), so a copy of the database opens nothing.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::StoreResult;

/// A console session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// Hex SHA-256 of the session id held in the cookie.
    pub id_hash: String,
    /// `None` for an operator (every tenant); `Some(tenant)` for a setup-link session that
    /// may see that tenant only.
    pub tenant_id: Option<String>,
    /// Who signed in, as the audit log names them (`admin-key:rsak_…`, `operator:ann@…`,
    /// `setup-link:acme`). Revoking the key or removing the operator ends its sessions.
    pub actor: String,
    /// When created.
    pub created_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

/// A one-time setup link for a tenant's IT admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupLink {
    /// Hex SHA-256 of the link's token.
    pub hash: String,
    /// The tenant the link opens.
    pub tenant_id: String,
    /// Who created it.
    pub created_by: String,
    /// When created.
    pub created_at: OffsetDateTime,
    /// When it stops working, used or not.
    pub expires_at: OffsetDateTime,
    /// When it was used (a link works once).
    pub used_at: Option<OffsetDateTime>,
}

/// An operator account: signs in to the console with an email and a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// The sign-in name, lower-cased (unique).
    pub email: String,
    /// The password's Argon2id hash, as a PHC string.
    pub password_hash: String,
    /// When created.
    pub created_at: OffsetDateTime,
    /// When the password was last set.
    pub password_changed_at: OffsetDateTime,
    /// When the operator last signed in.
    pub last_sign_in_at: Option<OffsetDateTime>,
    /// Wrong passwords since the last successful sign-in.
    pub failed_attempts: u32,
    /// Sign-in is refused until then (too many wrong passwords).
    pub locked_until: Option<OffsetDateTime>,
}

/// Storage of console sessions, setup links and operator accounts.
#[async_trait]
pub trait ConsoleStore: Send + Sync {
    /// Stores a new session; also prunes expired ones.
    async fn insert_session(&self, session: &ConsoleSession) -> StoreResult<()>;
    /// A live (unexpired at `now`) session by id hash.
    async fn find_session(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<ConsoleSession>>;
    /// Removes a session (sign-out).
    async fn delete_session(&self, id_hash: &str) -> StoreResult<()>;
    /// Keeps `sealed` for the session's next page that takes `key` (replacing one kept
    /// before), until `expires_at`; also prunes the values expired at `now`.
    async fn put_once(
        &self,
        id_hash: &str,
        key: &str,
        sealed: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Takes (removes) the value kept for the session and `key`, if it has not expired by
    /// `now`: a second call finds nothing.
    async fn take_once(
        &self,
        id_hash: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<String>>;
    /// Removes every session of `actor`; returns how many there were.
    async fn delete_sessions_of(&self, actor: &str) -> StoreResult<u64>;

    /// Stores a new setup link.
    async fn insert_setup_link(&self, link: &SetupLink) -> StoreResult<()>;
    /// Marks an unused, unexpired link as used and returns it, atomically, so that two
    /// concurrent uses cannot both succeed; `None` when the link is unknown, used or expired.
    async fn consume_setup_link(
        &self,
        hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<SetupLink>>;
    /// The tenant an unused, unexpired link opens, without using it (the landing page names
    /// the organisation before the IT admin continues); `None` when the link is unknown, used
    /// or expired.
    async fn setup_link_tenant(
        &self,
        hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Option<String>>;
    /// Ends a tenant's setup links that are still unused (they answer "expired" from `now`)
    /// and the console sessions opened with any of its links, in one transaction. Returns
    /// (links ended, sessions ended).
    async fn revoke_setup_links(
        &self,
        tenant: &str,
        now: OffsetDateTime,
    ) -> StoreResult<(u64, u64)>;

    /// Creates an operator. `Conflict("operator")` when the email is taken.
    async fn create_operator(&self, op: &Operator) -> StoreResult<()>;
    /// An operator by (lower-cased) email.
    async fn get_operator(&self, email: &str) -> StoreResult<Option<Operator>>;
    /// Every operator, by email.
    async fn list_operators(&self) -> StoreResult<Vec<Operator>>;
    /// Sets a new password hash, clears the lock, and ends the operator's sessions.
    /// `NotFound` for an unknown email.
    async fn set_operator_password(
        &self,
        email: &str,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Removes an operator and ends its sessions. `NotFound` for an unknown email.
    async fn delete_operator(&self, email: &str) -> StoreResult<()>;
    /// Records a wrong password: counts it and, at `max_failures` in a row, locks sign-in
    /// until `now + lock`. Returns the operator as it is now.
    async fn operator_sign_in_failed(
        &self,
        email: &str,
        now: OffsetDateTime,
        max_failures: u32,
        lock: time::Duration,
    ) -> StoreResult<Option<Operator>>;
    /// Records a successful sign-in: clears the failure count and the lock.
    async fn operator_signed_in(&self, email: &str, now: OffsetDateTime) -> StoreResult<()>;
}

/// [`ConsoleStore::setup_link_tenant`]'s statement, the same on both backends: binds the
/// link's hash and now (ms).
pub(crate) const SETUP_LINK_TENANT_SQL: &str = "SELECT tenant_id FROM console_setup_links \
     WHERE hash = ? AND used_at IS NULL AND expires_at > ?";
