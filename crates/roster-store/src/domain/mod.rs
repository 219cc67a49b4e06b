//! The store core: the domain rules of storage, written once for every backend.
//!
//! A backend implements [`Rows`], a narrow interface of row operations with no rule inside; the
//! operations here (a SCIM create with its restore and matching rules, replace and patch, a
//! group's member change, delete, a user leaving its groups, effective-role diffs, appending
//! events) are generic over it and run inside the caller's transaction. Each operation's doc
//! comment says which rows it reads and what must not change between those reads and its writes:
//! SQLite provides that with its database-wide write lock (`BEGIN IMMEDIATE`); a backend without
//! one takes the row locks named there.
//!
//! (Named `domain` rather than `core` so that it does not shadow the `core` crate.)

pub mod app;
pub mod claim;
pub mod custom_index;
pub mod emails;
pub mod erasure;
pub mod guard;
pub mod list;
pub mod members;
pub mod outbox;
pub mod query;
pub mod resources;
pub mod review;
pub mod roles;
pub mod rows;
pub mod tenants;

use scim_proto::filter::fold_case;
use scim_proto::schema::ResourceKind;
use serde_json::Value;

use crate::{StoreError, StoreResult};

pub use rows::Rows;

/// One `emails` element of a User, as the store indexes it: value and type folded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailKey {
    /// The address, folded.
    pub value: Option<String>,
    /// Its type, folded.
    pub kind: Option<String>,
    /// Its `primary` flag, when given.
    pub primary: Option<bool>,
}

/// The longest value (in UTF-8 bytes, as stored) of an indexed attribute (see
/// [`Derived::check`]).
pub const MAX_INDEXED_BYTES: usize = 1024;

/// The indexed columns of a resource, derived from its stored document on every write.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Derived {
    /// userName, folded (Users).
    pub user_name_lc: Option<String>,
    /// externalId as given.
    pub external_id: Option<String>,
    /// displayName, folded.
    pub display_name_lc: Option<String>,
    /// `active` (Users).
    pub active: Option<bool>,
    /// Each `emails` element that is an object.
    pub emails: Vec<EmailKey>,
}

impl Derived {
    /// The columns of `doc`, a document of `kind`.
    #[must_use]
    pub fn of(kind: ResourceKind, doc: &Value) -> Self {
        let folded = |k: &str| doc.get(k).and_then(Value::as_str).map(fold_case);
        let emails = doc
            .get("emails")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter(|e| e.is_object())
                    .map(|e| EmailKey {
                        value: e.get("value").and_then(Value::as_str).map(fold_case),
                        kind: e.get("type").and_then(Value::as_str).map(fold_case),
                        primary: e.get("primary").and_then(Value::as_bool),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let user = kind == ResourceKind::User;
        Self {
            user_name_lc: user.then(|| folded("userName")).flatten(),
            external_id: doc
                .get("externalId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            display_name_lc: folded("displayName"),
            active: user
                .then(|| doc.get("active").and_then(Value::as_bool))
                .flatten(),
            emails,
        }
    }

    /// Refuses values too long to index: userName, externalId, displayName and each email's
    /// value and type are index keys on every backend, and an index key has a bounded size
    /// (PostgreSQL's B-tree refuses a key of more than about 2.7 kB). The same bound on every
    /// backend keeps them alike: [`MAX_INDEXED_BYTES`] of the stored (folded) value.
    ///
    /// # Errors
    /// `Invalid`, naming the attribute and the bound.
    pub fn check(&self) -> StoreResult<()> {
        let long = |name: &str, v: &Option<String>| match v {
            Some(v) if v.len() > MAX_INDEXED_BYTES => Err(StoreError::Invalid(format!(
                "{name} is {} bytes long; Roster indexes it and accepts at most \
                 {MAX_INDEXED_BYTES} bytes",
                v.len()
            ))),
            _ => Ok(()),
        };
        long("userName", &self.user_name_lc)?;
        long("externalId", &self.external_id)?;
        long("displayName", &self.display_name_lc)?;
        for e in &self.emails {
            long("emails.value", &e.value)?;
            long("emails.type", &e.kind)?;
        }
        Ok(())
    }

    /// Whether the row counts as active: absent `active` means active.
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.active != Some(false)
    }
}

/// The attributes a role mapping can select a group by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSel {
    /// The group's id.
    pub id: String,
    /// Its externalId.
    pub external_id: Option<String>,
    /// Its displayName, folded.
    pub display_name_lc: Option<String>,
}

impl GroupSel {
    /// The selecting attributes of group `id` with columns `d`.
    #[must_use]
    pub fn new(id: &str, d: &Derived) -> Self {
        Self {
            id: id.to_owned(),
            external_id: d.external_id.clone(),
            display_name_lc: d.display_name_lc.clone(),
        }
    }

    /// The selecting attributes of group `id` with document `doc`.
    #[must_use]
    pub fn of_doc(id: &str, doc: &Value) -> Self {
        Self::new(id, &Derived::of(ResourceKind::Group, doc))
    }
}

/// Removes what a stored document never holds (the contract of
/// [`StoredResource::doc`](crate::StoredResource::doc)), whatever the caller passed.
#[must_use]
pub fn strip(mut doc: Value) -> Value {
    if let Value::Object(m) = &mut doc {
        for k in ["id", "meta", "members", "groups", "password"] {
            m.remove(k);
        }
    }
    doc
}

/// The primary email of a User document, folded: the one marked primary, else the first.
#[must_use]
pub fn primary_email(doc: &Value) -> Option<String> {
    let emails = doc.get("emails")?.as_array()?;
    emails
        .iter()
        .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| emails.first())
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .map(fold_case)
}

/// `t` as every backend keeps it: to the millisecond (what a write returns equals what a later
/// read finds).
#[must_use]
pub fn stored_time(t: time::OffsetDateTime) -> time::OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(t)
}
