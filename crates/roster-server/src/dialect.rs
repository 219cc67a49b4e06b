//! Where requests pass through the IdP dialect normaliser ([`scim_proto::dialect`]) before the
//! protocol core sees them: POST/PUT/PATCH bodies and the `filter` of lists and searches.
//!
//! The tenant's `idp` setting selects the rules; the names of the rules that changed a request
//! are logged at debug level (and are what the provisioning log will show).

use scim_proto::dialect::{self, BodyKind, Idp, Normalized};
use scim_proto::schema::ResourceKind;
use serde_json::Value;

use crate::auth::Authed;
use crate::error::HttpError;
use crate::service::{self, Ctx};
use crate::AppState;

/// The tenant's identity provider; an unknown setting is treated as `generic`, which
/// recognises every rule by the request's shape.
#[must_use]
pub fn idp_of(auth: &Authed) -> Idp {
    Idp::parse(&auth.tenant.idp).unwrap_or(Idp::Generic)
}

fn log<T>(auth: &Authed, what: &str, n: &Normalized<T>) {
    if !n.applied.is_empty() {
        tracing::debug!(
            tenant = %auth.tenant.id,
            idp = %auth.tenant.idp,
            request = what,
            rules = ?n.applied,
            "dialect rules applied"
        );
    }
}

/// Normalises a POST or PUT body.
#[must_use]
pub fn resource_body(auth: &Authed, req: BodyKind, kind: ResourceKind, body: Value) -> Value {
    let n = dialect::normalize_body(idp_of(auth), req, auth.def(kind), body, None);
    log(auth, "body", &n);
    n.request
}

/// Normalises a PATCH body, reading the resource's stored document first only when a rule in
/// force needs it (Entra's add of a not-yet-existing `emails[type eq "work"].value`).
///
/// # Errors
/// 404 when that read finds no such resource (the PATCH would answer the same).
pub async fn patch_body(
    state: &AppState,
    ctx: &Ctx,
    auth: &Authed,
    kind: ResourceKind,
    id: &str,
    body: Value,
) -> Result<Value, HttpError> {
    let idp = idp_of(auth);
    let current = if dialect::patch_needs_current(idp, ctx.def(kind), &body) {
        Some(service::fetch(state, ctx, kind, id).await?.doc)
    } else {
        None
    };
    let n = dialect::normalize_body(idp, BodyKind::Patch, ctx.def(kind), body, current.as_ref());
    log(auth, "patch", &n);
    Ok(n.request)
}

/// Normalises a `filter`.
#[must_use]
pub fn filter(auth: &Authed, filter: Option<String>) -> Option<String> {
    let f = filter?;
    let n = dialect::normalize_filter(idp_of(auth), &f);
    log(auth, "filter", &n);
    Some(n.request)
}
