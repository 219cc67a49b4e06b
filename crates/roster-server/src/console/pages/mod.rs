//! The console's pages: tenants (operators), and per tenant the SCIM settings, users, groups
//! and the provisioning log. Every tenant page goes through [`super::Session::tenant`] first.

use std::collections::HashMap;

use roster_store::app::{AppGroupMember, AppUser, UserStatus};
use roster_store::StoreError;
use serde_json::Value;

use super::view::{tenant_href, url_enc};
use super::ConsoleError;

pub mod groups;
pub mod health;
pub mod lists;
pub mod log;
pub mod scim;
pub mod tenants;
pub mod users;
pub mod webhooks;

/// A page's query string.
pub type Params = HashMap<String, String>;

/// A trimmed, non-empty query parameter.
pub fn param<'a>(p: &'a Params, k: &str) -> Option<&'a str> {
    p.get(k).map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// A list's store error as the page shows it: an invalid (stale or hand-edited) cursor is a
/// 400 that says to open the list again.
pub fn stale_cursor(e: StoreError) -> ConsoleError {
    match e {
        StoreError::Invalid(_) => ConsoleError::Invalid(
            "That page link is not valid any more: open the list again.".to_owned(),
        ),
        other => other.into(),
    }
}

/// Rows per page of the console's lists.
pub const PAGE_SIZE: u64 = 25;

/// A user as a list shows it.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// Link to the user's page.
    pub href: String,
    /// userName.
    pub user_name: String,
    /// displayName, else the formatted or composed name.
    pub name: String,
    /// Primary email.
    pub email: String,
    /// `active`, `deactivated` or `deprovisioned`.
    pub status: &'static str,
    /// Whether SCIM manages it.
    pub managed: bool,
    /// Effective roles.
    pub roles: Vec<String>,
}

/// The name to show for a User document.
pub fn display_name(doc: &Value) -> String {
    let s = |p: &str| doc.pointer(p).and_then(Value::as_str).unwrap_or("");
    if !s("/displayName").is_empty() {
        return s("/displayName").to_owned();
    }
    if !s("/name/formatted").is_empty() {
        return s("/name/formatted").to_owned();
    }
    format!("{} {}", s("/name/givenName"), s("/name/familyName"))
        .trim()
        .to_owned()
}

impl UserRow {
    /// A row for an app user.
    pub fn of(tenant: &str, u: &AppUser) -> Self {
        let doc = &u.resource.doc;
        Self {
            href: user_href(tenant, &u.resource.id),
            user_name: doc
                .get("userName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            name: display_name(doc),
            email: crate::ops::users::primary_email(doc)
                .unwrap_or("")
                .to_owned(),
            status: u.status.as_str(),
            managed: u.managed,
            roles: u.roles.clone(),
        }
    }

    /// A row for a group member (no name, email or roles at hand).
    pub fn of_member(tenant: &str, m: &AppGroupMember) -> Self {
        Self {
            href: user_href(tenant, &m.id),
            user_name: if m.user_name.is_empty() {
                m.id.clone()
            } else {
                m.user_name.clone()
            },
            name: String::new(),
            email: String::new(),
            status: m.status.as_str(),
            managed: m.managed,
            roles: Vec::new(),
        }
    }
}

/// `/console/t/{tenant}/users/{id}`.
pub fn user_href(tenant: &str, id: &str) -> String {
    format!("{}/users/{}", tenant_href(tenant), url_enc(id))
}

/// `/console/t/{tenant}/groups/{id}`.
pub fn group_href(tenant: &str, id: &str) -> String {
    format!("{}/groups/{}", tenant_href(tenant), url_enc(id))
}

/// Parses the status filter of the users list.
pub fn parse_status(s: &str) -> Option<UserStatus> {
    match s {
        "active" => Some(UserStatus::Active),
        "deactivated" => Some(UserStatus::Deactivated),
        "deprovisioned" => Some(UserStatus::Deprovisioned),
        _ => None,
    }
}

/// Parses the "managed by" filter: `scim`, `app` or anything else (all).
pub fn parse_source(s: &str) -> Option<bool> {
    match s {
        "scim" => Some(true),
        "app" => Some(false),
        _ => None,
    }
}

/// The options of the "managed by" filter.
pub const SOURCES: [(&str, &str); 3] = [
    ("", "Anyone"),
    ("scim", "SCIM (identity provider)"),
    ("app", "The app"),
];
