//! The outbox: events, their types and payloads, and the [`EventStore`] trait.
//!
//! Every write of the store appends the events that describe it in the same transaction as
//! the change, so nothing is announced that was not stored and nothing stored goes
//! unannounced. Each event gets the next `seq` of its tenant: gap-free and increasing, in
//! commit order (see `docs/events.md` for why a reader polling `seq > cursor` never skips one).
//!
//! Who builds which event: the store emits the events of changes it alone observes exactly
//! (created or restored, deprovisioned, deleted, which member rows were really added or removed,
//! token changes); the caller passes, with a resource update, the events that need schema
//! knowledge (`user.updated` with the attribute diff, `user.deactivated`, ...). The payload
//! builders below are shared by both so that every event of a type has the same shape.

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use crate::{StoreResult, StoredResource};

/// At most this many member ids are listed in one `group.members_added` or
/// `group.members_removed` event; larger changes are split into parts.
pub const MEMBERS_PER_EVENT: usize = 1000;

/// The type of an event. Serialised as its dotted name (`user.created`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A User was created.
    UserCreated,
    /// A User's attributes changed (names, old and new values; never the password's value).
    UserUpdated,
    /// A User's `active` went from true (or absent) to false.
    UserDeactivated,
    /// A User's `active` went from false to true.
    UserReactivated,
    /// A User was deleted through SCIM: invisible to SCIM, retained deactivated.
    UserDeprovisioned,
    /// A deprovisioned User was created again (same userName) and restored with its id.
    UserRestored,
    /// A User's record was erased (tenant setting `erase`; issue 4).
    UserErased,
    /// A welcome message should be sent (tenant setting `welcome_email`; issue 4).
    UserWelcome,
    /// A User's effective roles changed (role mappings; issue 4).
    UserRolesChanged,
    /// A Group was created.
    GroupCreated,
    /// A Group's attributes (not members) changed.
    GroupUpdated,
    /// A Group was deleted.
    GroupDeleted,
    /// Members were added to a Group (one event per up to [`MEMBERS_PER_EVENT`] ids).
    GroupMembersAdded,
    /// Members were removed from a Group.
    GroupMembersRemoved,
    /// A SCIM bearer token was issued.
    TokenCreated,
    /// The tenant's tokens were rotated: a new one issued, every older one revoked.
    TokenRotated,
    /// A token was revoked.
    TokenRevoked,
    /// A token expires soon (issue 4 schedules this).
    TokenExpiring,
    /// SCIM was enabled for the tenant (issue 4).
    ScimEnabled,
    /// SCIM was disabled for the tenant (issue 4).
    ScimDisabled,
    /// Existing app users were imported, not managed by SCIM.
    UserImported,
    /// A SCIM create matched an existing app user, which is now SCIM-managed (same id).
    UserMatched,
    /// A SCIM create matched an existing app group by displayName and took it over.
    GroupMatched,
    /// The mass-deprovisioning guard tripped: further deactivations are refused.
    TenantDeprovisionGuardTripped,
    /// An operator confirmed or rejected the batch held by the guard.
    TenantDeprovisionGuardResolved,
}

impl EventType {
    /// Every type, in documentation order.
    pub const ALL: [EventType; 25] = [
        Self::UserCreated,
        Self::UserUpdated,
        Self::UserDeactivated,
        Self::UserReactivated,
        Self::UserDeprovisioned,
        Self::UserRestored,
        Self::UserErased,
        Self::UserWelcome,
        Self::UserRolesChanged,
        Self::GroupCreated,
        Self::GroupUpdated,
        Self::GroupDeleted,
        Self::GroupMembersAdded,
        Self::GroupMembersRemoved,
        Self::TokenCreated,
        Self::TokenRotated,
        Self::TokenRevoked,
        Self::TokenExpiring,
        Self::ScimEnabled,
        Self::ScimDisabled,
        Self::UserImported,
        Self::UserMatched,
        Self::GroupMatched,
        Self::TenantDeprovisionGuardTripped,
        Self::TenantDeprovisionGuardResolved,
    ];

    /// The dotted name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserCreated => "user.created",
            Self::UserUpdated => "user.updated",
            Self::UserDeactivated => "user.deactivated",
            Self::UserReactivated => "user.reactivated",
            Self::UserDeprovisioned => "user.deprovisioned",
            Self::UserRestored => "user.restored",
            Self::UserErased => "user.erased",
            Self::UserWelcome => "user.welcome",
            Self::UserRolesChanged => "user.roles_changed",
            Self::GroupCreated => "group.created",
            Self::GroupUpdated => "group.updated",
            Self::GroupDeleted => "group.deleted",
            Self::GroupMembersAdded => "group.members_added",
            Self::GroupMembersRemoved => "group.members_removed",
            Self::TokenCreated => "token.created",
            Self::TokenRotated => "token.rotated",
            Self::TokenRevoked => "token.revoked",
            Self::TokenExpiring => "token.expiring",
            Self::ScimEnabled => "scim.enabled",
            Self::ScimDisabled => "scim.disabled",
            Self::UserImported => "user.imported",
            Self::UserMatched => "user.matched",
            Self::GroupMatched => "group.matched",
            Self::TenantDeprovisionGuardTripped => "tenant.deprovision_guard_tripped",
            Self::TenantDeprovisionGuardResolved => "tenant.deprovision_guard_resolved",
        }
    }

    /// Parses a dotted name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event to append; the store assigns `id`, `seq` and `occurred_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The type.
    pub event_type: EventType,
    /// The payload.
    pub data: Value,
}

impl NewEvent {
    /// An event of `event_type` with payload `data`.
    #[must_use]
    pub fn new(event_type: EventType, data: Value) -> Self {
        Self { event_type, data }
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The tenant.
    pub tenant: String,
    /// Position in the tenant's stream: 1, 2, 3, ... without gaps.
    pub seq: i64,
    /// Globally unique id (a UUID); receivers deduplicate on it.
    pub id: String,
    /// The dotted type name as stored (a newer Roster may store types this one does not know).
    pub event_type: String,
    /// When the change was committed (the write's clock reading).
    pub occurred_at: OffsetDateTime,
    /// The payload.
    pub data: Value,
}

/// A consistent picture of a tenant's directory and the `seq` it reflects: every event with
/// `seq <= seq` is included in it, and none after.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The last event seq the snapshot reflects (0 when the tenant has no events).
    pub seq: i64,
    /// Live Users, in creation order.
    pub users: Vec<StoredResource>,
    /// Live Groups, in creation order, each with its member ids.
    pub groups: Vec<(StoredResource, Vec<String>)>,
}

/// One part of a streamed snapshot (see [`EventStore::snapshot_stream`]).
#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotPart {
    /// The next live Users, in creation order.
    Users(Vec<StoredResource>),
    /// The next live Group; its members follow.
    Group(StoredResource),
    /// The next member ids of the last [`SnapshotPart::Group`], in id order.
    Members(Vec<String>),
}

/// A snapshot being read: the seq it reflects, and its parts.
pub struct SnapshotStream {
    /// The last event seq the snapshot reflects (0 when the tenant has no events).
    pub seq: i64,
    /// Users, then each Group followed by its members.
    pub parts: futures::stream::BoxStream<'static, StoreResult<SnapshotPart>>,
}

impl std::fmt::Debug for SnapshotStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotStream")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

/// The events side of the store: reading the outbox, and appending events that belong to no
/// resource write (e.g. `token.expiring`, `scim.enabled`).
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends events for `tenant` in one transaction; returns them with their seq.
    /// `NotFound` when the tenant does not exist.
    async fn append_events(
        &self,
        tenant: &str,
        events: Vec<NewEvent>,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Event>>;
    /// Events of `tenant` with `seq > after`, in seq order, at most `limit`; only the given
    /// types when `types` is not empty.
    async fn list_events(
        &self,
        tenant: &str,
        after: i64,
        types: &[String],
        limit: u64,
    ) -> StoreResult<Vec<Event>>;
    /// The tenant's last seq (0 when it has no events).
    async fn last_seq(&self, tenant: &str) -> StoreResult<i64>;
    /// Users, Groups and members of a tenant plus the seq they reflect, read in one read
    /// transaction, collected in memory: for tests and small tenants. Serving a snapshot uses
    /// [`EventStore::snapshot_stream`], which does not hold the tenant in memory.
    async fn snapshot(&self, tenant: &str) -> StoreResult<Snapshot> {
        use futures::TryStreamExt;
        let SnapshotStream { seq, mut parts } = self.snapshot_stream(tenant, 1000).await?;
        let mut users = Vec::new();
        let mut groups: Vec<(StoredResource, Vec<String>)> = Vec::new();
        while let Some(part) = parts.try_next().await? {
            match part {
                SnapshotPart::Users(us) => users.extend(us),
                SnapshotPart::Group(g) => groups.push((g, Vec::new())),
                SnapshotPart::Members(ms) => {
                    if let Some((_, members)) = groups.last_mut() {
                        members.extend(ms);
                    }
                }
            }
        }
        Ok(Snapshot { seq, users, groups })
    }
    /// The same picture as [`EventStore::snapshot`], as a stream read page by page (`page`
    /// rows a statement, keyset pagination) from one read transaction that the stream holds
    /// until it ends or is dropped, so that the parts form one consistent snapshot whatever
    /// their number, and memory stays bounded by a page. Parts come in this order: every
    /// live User (in creation order, in [`SnapshotPart::Users`] batches), then each live Group
    /// (in creation order) as a [`SnapshotPart::Group`] followed by its member ids (in id
    /// order, in [`SnapshotPart::Members`] batches; none for an empty group). `Invalid` when
    /// `page` is 0.
    async fn snapshot_stream(&self, tenant: &str, page: u64) -> StoreResult<SnapshotStream>;
    /// A receiver that changes after every commit that appended events in this process, so
    /// that long polls and delivery workers wake at once. Writes by other processes (the CLI)
    /// do not signal it: readers must also poll.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64>;
}

/// `{"id": .., "userName": ..}` (or `displayName` for a Group): how events name a resource.
#[must_use]
pub fn resource_ref(id: &str, doc: &Value) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    for key in ["userName", "displayName", "externalId"] {
        if let Some(v) = doc.get(key) {
            m.insert(key.into(), v.clone());
        }
    }
    Value::Object(m)
}

/// The stored document with its `id`: the full resource in `*.created` and `user.restored`.
/// Stored documents never hold a password.
#[must_use]
pub fn resource_body(id: &str, doc: &Value) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    if let Value::Object(d) = doc {
        for (k, v) in d {
            if k != "password" {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(m)
}

/// `group.members_added` / `group.members_removed` events for `ids`, split into parts of at
/// most [`MEMBERS_PER_EVENT`] ids.
#[must_use]
pub fn member_events(
    event_type: EventType,
    group_id: &str,
    group_doc: &Value,
    ids: &[String],
) -> Vec<NewEvent> {
    let parts = ids.len().div_ceil(MEMBERS_PER_EVENT);
    ids.chunks(MEMBERS_PER_EVENT)
        .enumerate()
        .map(|(i, chunk)| {
            NewEvent::new(
                event_type,
                json!({
                    "group": resource_ref(group_id, group_doc),
                    "members": chunk,
                    "part": i + 1,
                    "parts": parts,
                }),
            )
        })
        .collect()
}

/// The events of a Group's membership change, from the member rows that really changed: `added`
/// and `removed` in the order the backend changed them, possibly with repeats (one request may
/// add, remove and add again). Only the net change is announced: an id both added and removed
/// in one request changed nothing, and each id is listed once. `group.members_added` comes
/// before `group.members_removed`.
///
/// Pure: the backend passes the ids its statements reported as really inserted or deleted
/// (`INSERT … RETURNING`, `DELETE … RETURNING`), so that two concurrent changes of one group
/// never announce the same member twice.
#[must_use]
pub fn net_member_events(
    group_id: &str,
    group_doc: &Value,
    added: &[String],
    removed: &[String],
) -> Vec<NewEvent> {
    let added_set: std::collections::HashSet<&String> = added.iter().collect();
    let removed_set: std::collections::HashSet<&String> = removed.iter().collect();
    let net = |ids: &[String], other: &std::collections::HashSet<&String>| {
        let mut seen = std::collections::HashSet::new();
        ids.iter()
            .filter(|id| !other.contains(id) && seen.insert(id.as_str()))
            .cloned()
            .collect::<Vec<String>>()
    };
    let mut events = member_events(
        EventType::GroupMembersAdded,
        group_id,
        group_doc,
        &net(added, &removed_set),
    );
    events.extend(member_events(
        EventType::GroupMembersRemoved,
        group_id,
        group_doc,
        &net(removed, &added_set),
    ));
    events
}

/// How a user leaves the directory (see [`user_exit_events`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserExit {
    /// SCIM `DELETE` (tenant setting `retain`): the record stays, deactivated and invisible to
    /// SCIM; `user.deprovisioned`.
    Deprovision,
    /// The record is erased by an operator (`roster` CLI, admin API); `user.erased`.
    Erase,
    /// An app user that SCIM does not manage is erased through the app API; `user.erased` with
    /// `"managed": false`.
    EraseUnmanaged,
}

/// The events of a user leaving the directory, in the order they are appended: one
/// `group.members_removed` per group it was a member of (`groups`: each group's id and document,
/// in the backend's stable group order), then `user.deprovisioned` or `user.erased`. The groups
/// announce the loss first, so that a reader applying events in order never sees a group with a
/// member that no longer exists.
#[must_use]
pub fn user_exit_events(
    groups: &[(String, Value)],
    user_id: &str,
    user_doc: &Value,
    exit: UserExit,
) -> Vec<NewEvent> {
    let mut events: Vec<NewEvent> = groups
        .iter()
        .flat_map(|(gid, gdoc)| {
            member_events(
                EventType::GroupMembersRemoved,
                gid,
                gdoc,
                &[user_id.to_owned()],
            )
        })
        .collect();
    let user = resource_ref(user_id, user_doc);
    events.push(match exit {
        UserExit::Deprovision => {
            NewEvent::new(EventType::UserDeprovisioned, json!({ "user": user }))
        }
        UserExit::Erase => NewEvent::new(EventType::UserErased, json!({ "user": user })),
        UserExit::EraseUnmanaged => NewEvent::new(
            EventType::UserErased,
            json!({ "user": user, "managed": false }),
        ),
    });
    events
}
