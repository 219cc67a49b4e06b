//! The login decision (`POST /tenants/{tenant}/login-decision`): may this person sign in to the
//! app, as which user, with which roles?
//!
//! One primary-key read of the tenant, then one indexed lookup of the user (by email: the
//! `emails_value` and `resources_user_name` indexes; by external id: `resources_external_id`),
//! then its effective roles from its membership rows and the role mappings. The reasons:
//!
//! | reason | allowed | when |
//! |---|---|---|
//! | `unknown_tenant` | no | no such tenant |
//! | `scim_disabled` | yes | the tenant does not use SCIM: Roster has no say, the app applies its own rules |
//! | `active` | yes | a SCIM-provisioned, active user |
//! | `deactivated` | no | the user exists with `active: false` |
//! | `deprovisioned` | no | the identity provider deleted the user (the record is retained) |
//! | `not_provisioned` | unless `sso_enforced` | no such user, or an app user SCIM does not manage: allowed as just-in-time, denied when the tenant enforces SSO |

use axum::extract::State;
use axum::Json;
use roster_store::app::{LoginKey, LoginRecord, UserStatus};
use serde::Deserialize;
use serde_json::{json, Value};

use super::present;
use super::users::ApiObject;
use super::{AdminAuth, ApiError, ApiPath};
use crate::AppState;

/// Longest accepted email or external id, in characters.
pub const MAX_KEY_LEN: usize = 1024;

/// Body of the login decision: exactly one of `email` and `external_id`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The email the person signed in with (compared with users' emails and userNames,
    /// case-insensitively).
    #[serde(default, deserialize_with = "present")]
    pub email: Option<String>,
    /// The identity provider's id for the person (compared with users' externalId).
    #[serde(default, deserialize_with = "present")]
    pub external_id: Option<String>,
}

impl LoginRequest {
    fn key(self) -> Result<LoginKey, ApiError> {
        let check = |name: &str, v: &str| {
            if v.is_empty() || v.chars().count() > MAX_KEY_LEN {
                Err(ApiError::invalid(format!(
                    "{name} must have 1 to {MAX_KEY_LEN} characters"
                )))
            } else {
                Ok(())
            }
        };
        match (self.email, self.external_id) {
            (Some(e), None) => {
                check("email", &e)?;
                Ok(LoginKey::Email(e))
            }
            (None, Some(x)) => {
                check("external_id", &x)?;
                Ok(LoginKey::ExternalId(x))
            }
            _ => Err(ApiError::invalid(
                "send exactly one of \"email\" and \"external_id\"",
            )),
        }
    }
}

/// The decision as the API returns it.
#[must_use]
pub fn decision(allowed: bool, reason: &str, user: Option<&LoginRecord>) -> Value {
    let roles: &[String] = match user {
        Some(u) if allowed => &u.roles,
        _ => &[],
    };
    json!({
        "allowed": allowed,
        "reason": reason,
        "user_id": user.map(|u| u.id.as_str()),
        "roles": roles,
    })
}

/// `POST /api/v1/tenants/{tenant}/login-decision`. An unknown tenant is an answer
/// (`unknown_tenant`), not a 404: the app asks on every sign-in and needs a decision.
///
/// # Errors
/// 401; 400 unless exactly one of `email` and `external_id` is given.
pub async fn handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
    ApiObject(req): ApiObject<LoginRequest>,
) -> Result<Json<Value>, ApiError> {
    let key = req.key()?;
    // From the authentication cache: a disabled or deleted tenant moves the same counters
    // that refuse its tokens, so the decision never sees a tenant older than they do.
    let Some(t) = state.auth.tenant(state.store.as_ref(), &tenant).await? else {
        return Ok(Json(decision(false, "unknown_tenant", None)));
    };
    let found = state.store.login_lookup(&tenant, &key).await?;
    let s = &t.settings;
    let d = if !s.scim_enabled {
        // Without SCIM, Roster's directory is not kept current by the identity provider: it
        // objects to nothing, and names the user it knows, if any and active.
        let user = found.as_ref().filter(|u| u.status == UserStatus::Active);
        decision(true, "scim_disabled", user)
    } else {
        match &found {
            Some(u) if u.status == UserStatus::Deprovisioned => {
                decision(false, "deprovisioned", Some(u))
            }
            Some(u) if u.status == UserStatus::Deactivated => {
                decision(false, "deactivated", Some(u))
            }
            Some(u) if u.managed => decision(true, "active", Some(u)),
            // An app user that SCIM does not manage is not provisioned by the identity
            // provider: with SSO enforced, it may not sign in.
            other => decision(!s.sso_enforced, "not_provisioned", other.as_ref()),
        }
    };
    Ok(Json(d))
}
