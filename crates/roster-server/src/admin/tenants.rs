//! Tenants through the admin API (`/api/v1/tenants…`): create, list (paged), get, update
//! (name, identity provider, settings), delete (retaining or erasing the data), and SCIM
//! enablement. The operations are public so that the command line runs exactly the same code.
//!
//! Settings are changed with a JSON merge patch (RFC 7396) of the settings object, applied in
//! the store's write transaction to the current settings (so two concurrent patches of
//! different settings both take effect), then validated as a whole.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use roster_store::tenants::CONFLICT_REVIEW_HOLDS;
use roster_store::{Store, StoreError, Tenant, TenantDataMode, TenantSettings, TenantState};
use scim_proto::dialect::Idp;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

pub use super::live_tenant;
use super::tokens::{issue_first, issued_json, IssuedToken};
use super::{audit, fmt_time, page_limit, AdminAuth, ApiError, ApiJson, ApiPath, ApiQuery};
use super::{conflict, present};
use crate::urls::base_url;
use crate::AppState;

/// Longest tenant id, in characters (fits a DNS label, so it can become a subdomain).
pub const MAX_ID_LEN: usize = 63;
/// Longest tenant name, in characters.
pub const MAX_NAME_LEN: usize = 200;
/// Largest `token_ttl_days`: ten years.
pub const MAX_TTL_DAYS: u32 = 3650;
/// Largest `token_expiry_warning_days`.
pub const MAX_WARNING_DAYS: u32 = 365;
/// Largest `deprovision_guard.window_minutes`: one week.
pub const MAX_GUARD_WINDOW_MINUTES: u32 = 7 * 24 * 60;

const SCIM_ENABLED_READ_ONLY: &str = "settings.scim_enabled changes only through POST \
    …/scim/enable and …/scim/disable (`roster scim enable|disable`), which also issue or revoke \
    tokens";

/// Derives a tenant id from a name: `Acme Corp` → `acme-corp`, `Société Générale` →
/// `societe-generale` (transliterated to ASCII by deunicode, then lowercase ASCII letters and
/// digits, other runs of characters become one dash), cut to [`MAX_ID_LEN`].
#[must_use]
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in deunicode::deunicode(name.trim()).chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.truncate(MAX_ID_LEN);
    out.trim_end_matches('-').to_owned()
}

/// Checks a tenant id: 1–63 lowercase ASCII letters, digits and dashes, not starting or ending
/// with a dash (so it is safe in URLs, file names and DNS labels).
///
/// # Errors
/// A message saying what is wrong.
pub fn check_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "id must be 1–{MAX_ID_LEN} lowercase letters, digits and dashes, not starting or \
             ending with a dash, not {id:?}"
        ))
    }
}

/// Checks and trims a tenant name.
///
/// # Errors
/// A message when it is empty or too long.
pub fn check_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
        return Err(format!(
            "name must be 1–{MAX_NAME_LEN} characters (not counting surrounding spaces)"
        ));
    }
    Ok(name.to_owned())
}

/// Parses an identity provider setting into its canonical value.
///
/// # Errors
/// A message listing the accepted values.
pub fn check_idp(idp: &str) -> Result<String, String> {
    Idp::parse(idp)
        .map(|i| i.as_str().to_owned())
        .ok_or_else(|| {
            let all: Vec<&str> = Idp::ALL.iter().map(|i| i.as_str()).collect();
            format!("idp must be one of {}, not {idp:?}", all.join(", "))
        })
}

/// Checks the ranges of settings values.
///
/// # Errors
/// A message naming the first setting out of range.
pub fn validate_settings(s: &TenantSettings) -> Result<(), String> {
    if !(1..=MAX_TTL_DAYS).contains(&s.token_ttl_days) {
        return Err(format!(
            "settings.token_ttl_days must be 1–{MAX_TTL_DAYS}, not {}",
            s.token_ttl_days
        ));
    }
    if s.token_expiry_warning_days > MAX_WARNING_DAYS {
        return Err(format!(
            "settings.token_expiry_warning_days must be 0–{MAX_WARNING_DAYS} (0 = no warning), not {}",
            s.token_expiry_warning_days
        ));
    }
    let g = &s.deprovision_guard;
    if !(1..=100).contains(&g.max_percent) {
        return Err(format!(
            "settings.deprovision_guard.max_percent must be 1–100, not {}",
            g.max_percent
        ));
    }
    if !(1..=MAX_GUARD_WINDOW_MINUTES).contains(&g.window_minutes) {
        return Err(format!(
            "settings.deprovision_guard.window_minutes must be 1–{MAX_GUARD_WINDOW_MINUTES}, not {}",
            g.window_minutes
        ));
    }
    let rl = &s.rate_limit;
    for (name, rate) in [("per_token", &rl.per_token), ("per_tenant", &rl.per_tenant)] {
        if let Some(r) = rate {
            r.parse::<crate::ratelimit::Rate>()
                .map_err(|e| format!("settings.rate_limit.{name}: {e}"))?;
        }
    }
    Ok(())
}

/// The settings' shape as the API shows them: every setting, `rate_limit`, `email_uniqueness`
/// and `first_sync_review` included while empty or off (storage leaves them out then).
fn settings_shape(settings: &TenantSettings) -> Result<Value, String> {
    let mut v = serde_json::to_value(settings).map_err(|e| e.to_string())?;
    if let Value::Object(m) = &mut v {
        if !m.contains_key("rate_limit") {
            let empty = serde_json::to_value(roster_store::RateLimitOverride::default())
                .map_err(|e| e.to_string())?;
            m.insert("rate_limit".into(), empty);
        }
        if !m.contains_key("email_uniqueness") {
            m.insert("email_uniqueness".into(), Value::from("off"));
        }
        if !m.contains_key("first_sync_review") {
            m.insert("first_sync_review".into(), Value::from(false));
        }
    }
    Ok(v)
}

/// RFC 7396 JSON merge patch: objects merge key by key, `null` removes a key (so the setting
/// falls back to its default), anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (_, Some(p)) => {
            *target = Value::Object(Map::new());
            merge_patch(target, &Value::Object(p.clone()));
        }
        _ => *target = patch.clone(),
    }
}

/// Refuses a patch key that names no setting (recursively for nested settings objects).
fn unknown_setting(shape: &Value, patch: &Value, at: &str) -> Result<(), String> {
    let (Some(shape), Some(patch)) = (shape.as_object(), patch.as_object()) else {
        return Ok(());
    };
    for (k, v) in patch {
        let path = format!("{at}.{k}");
        match shape.get(k) {
            None => {
                let known: Vec<&str> = shape.keys().map(String::as_str).collect();
                return Err(format!(
                    "{path} is not a setting; known settings here: {}",
                    known.join(", ")
                ));
            }
            Some(inner) => unknown_setting(inner, v, &path)?,
        }
    }
    Ok(())
}

/// Applies a settings patch (`idp` and the [`TenantSettings`] fields, as a merge patch) to a
/// tenant. `scim_enabled` is refused: it changes only through enabling or disabling SCIM,
/// which also issue or revoke tokens.
///
/// # Errors
/// A message naming the offending setting.
pub fn apply_settings_patch(t: &mut Tenant, patch: &Value) -> Result<(), String> {
    let Some(obj) = patch.as_object() else {
        return Err("the settings must be a JSON object".to_owned());
    };
    if obj.contains_key("scim_enabled") {
        return Err(SCIM_ENABLED_READ_ONLY.to_owned());
    }
    let mut rest = obj.clone();
    let idp_patch = rest.remove("idp");
    // Every key must name a setting, even with a null value: a merge patch would otherwise
    // silently drop a misspelt `"welcome_emial": null` and answer 200.
    if let Ok(defaults) = settings_shape(&TenantSettings::default()) {
        unknown_setting(&defaults, &Value::Object(rest.clone()), "settings")?;
    }
    if let Some(idp) = idp_patch {
        let s = idp
            .as_str()
            .ok_or("settings.idp must be a string such as \"okta\"")?;
        t.idp = check_idp(s)?;
    }
    let defaults = settings_shape(&TenantSettings::default())?;
    let mut current = serde_json::to_value(&t.settings).map_err(|e| e.to_string())?;
    merge_patch(&mut current, &Value::Object(rest.clone()));
    // serde would also read a nested settings object from an array of its fields.
    if let (Value::Object(merged), Value::Object(defaults)) = (&current, &defaults) {
        for (k, v) in merged {
            if defaults.get(k).is_some_and(Value::is_object) && !v.is_object() {
                return Err(format!("settings.{k} must be a JSON object"));
            }
        }
    }
    // Each changed key alone first, so that a type error names its setting.
    for key in rest.keys() {
        let mut one = Map::new();
        if let Some(v) = current.get(key) {
            one.insert(key.clone(), v.clone());
        }
        serde_json::from_value::<TenantSettings>(Value::Object(one))
            .map_err(|e| format!("settings.{key}: {e}"))?;
    }
    let next: TenantSettings =
        serde_json::from_value(current).map_err(|e| format!("settings: {e}"))?;
    validate_settings(&next)?;
    t.settings = next;
    Ok(())
}

/// How the API shows a tenant's settings: the identity provider and every setting.
#[must_use]
pub fn settings_json(t: &Tenant) -> Value {
    let mut v = settings_shape(&t.settings).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        let mut out = Map::new();
        out.insert("idp".into(), json!(t.idp));
        out.append(m);
        return Value::Object(out);
    }
    v
}

/// How the API shows a tenant.
#[must_use]
pub fn tenant_json(t: &Tenant, scim_base_url: &str) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "idp": t.idp,
        "created_at": fmt_time(t.created_at),
        "scim_base_url": scim_base_url,
        "settings": settings_json(t),
    })
}

/// What a new tenant gets.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// The display name.
    pub name: String,
    /// The id (default: derived from the name).
    #[serde(default, deserialize_with = "present")]
    pub id: Option<String>,
    /// The identity provider (default `generic`).
    #[serde(default, deserialize_with = "present")]
    pub idp: Option<String>,
    /// Settings different from the defaults (a merge patch of them).
    #[serde(default, deserialize_with = "present")]
    pub settings: Option<Value>,
    /// Enable SCIM now and issue the first token (default false: enable it later).
    #[serde(default)]
    pub enable_scim: bool,
}

/// Creates a tenant; with `enable_scim`, SCIM is on from the start and the first token is
/// issued (and returned, to show once).
///
/// # Errors
/// 400 for invalid input, 409 when the id is taken (also by a deleted tenant whose data is
/// retained).
pub async fn create(
    store: &dyn Store,
    now: OffsetDateTime,
    req: NewTenant,
    ttl_days: Option<u32>,
) -> Result<(Tenant, Option<IssuedToken>), ApiError> {
    let name = check_name(&req.name).map_err(ApiError::invalid)?;
    let id = match &req.id {
        Some(id) => id.clone(),
        None => match slug(&name) {
            // A name without letters or digits, even transliterated (`***`), still makes a
            // tenant.
            s if s.is_empty() => format!(
                "tenant-{}",
                crate::tokens::random_alnum(8).to_ascii_lowercase()
            ),
            s => s,
        },
    };
    check_id(&id).map_err(ApiError::invalid)?;
    let idp = check_idp(req.idp.as_deref().unwrap_or("generic")).map_err(ApiError::invalid)?;
    let mut tenant = Tenant {
        id: id.clone(),
        name,
        idp,
        created_at: now,
        settings: TenantSettings {
            scim_enabled: false,
            ..TenantSettings::default()
        },
    };
    if let Some(patch) = &req.settings {
        if patch.get("scim_enabled").is_some() {
            return Err(ApiError::invalid(
                "settings.scim_enabled is not set at creation: use enable_scim",
            ));
        }
        apply_settings_patch(&mut tenant, patch).map_err(ApiError::invalid)?;
    }
    tenant.settings.scim_enabled = req.enable_scim;
    match store.create_tenant(&tenant).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(match store.tenant_state(&id).await? {
                TenantState::Deleted { deleted_at } => conflict(format!(
                    "the id \"{id}\" belongs to a tenant deleted on {} whose data is retained; \
                     erase it (DELETE /api/v1/tenants/{id}?data=erase) or choose another id",
                    fmt_time(deleted_at)
                )),
                _ => conflict(format!("a tenant with id \"{id}\" already exists")),
            })
        }
        Err(e) => return Err(e.into()),
    }
    let issued = if req.enable_scim {
        Some(issue_first(store, &tenant, now, ttl_days).await?)
    } else {
        None
    };
    Ok((tenant, issued))
}

/// Applies an update (name, identity provider, settings patch) in one store transaction.
///
/// # Errors
/// 400 for invalid values, 404 for an unknown tenant.
pub async fn update(store: &dyn Store, id: &str, req: TenantUpdate) -> Result<Tenant, ApiError> {
    let name = req
        .name
        .as_deref()
        .map(check_name)
        .transpose()
        .map_err(ApiError::invalid)?;
    let idp = req
        .idp
        .as_deref()
        .map(check_idp)
        .transpose()
        .map_err(ApiError::invalid)?;
    let settings = req.settings;
    store
        .update_tenant(
            id,
            Box::new(move |t: &mut Tenant| {
                if let Some(n) = name {
                    t.name = n;
                }
                if let Some(i) = idp {
                    t.idp = i;
                }
                match settings {
                    Some(p) => apply_settings_patch(t, &p),
                    None => Ok(()),
                }
            }),
        )
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found(format!("no tenant \"{id}\"")),
            StoreError::Conflict(CONFLICT_REVIEW_HOLDS) => conflict(
                "first_sync_review cannot be turned off while the first-sync review holds \
                 events: approve it (the app receives them, in order) or discard it (what the \
                 identity provider did is undone), then the setting turns off by itself",
            ),
            other => other.into(),
        })
}

/// Deletes a tenant (or erases one deleted earlier with its data retained).
///
/// # Errors
/// 404 when there is no such tenant (for `retain`: no live one).
pub async fn delete(
    store: &dyn Store,
    now: OffsetDateTime,
    id: &str,
    mode: TenantDataMode,
) -> Result<(), ApiError> {
    store
        .delete_tenant(id, mode, now)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found(format!("no tenant \"{id}\"")),
            other => other.into(),
        })
}

/// Enables SCIM and issues the first token.
///
/// # Errors
/// 404 for an unknown tenant, 409 when SCIM is already enabled.
pub async fn enable_scim(
    store: &dyn Store,
    now: OffsetDateTime,
    id: &str,
    ttl_days: Option<u32>,
) -> Result<IssuedToken, ApiError> {
    let t = live_tenant(store, id).await?;
    let issued = super::tokens::new_token(&t, now, ttl_days);
    store
        .enable_scim(&issued.record, now)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => conflict(format!(
                "SCIM is already enabled for tenant \"{id}\"; create or rotate a token instead"
            )),
            StoreError::NotFound => ApiError::not_found(format!("no tenant \"{id}\"")),
            other => other.into(),
        })?;
    Ok(issued)
}

/// Disables SCIM: every token of the tenant stops working at once. Returns the revoked
/// prefixes.
///
/// # Errors
/// 404 for an unknown tenant.
pub async fn disable_scim(
    store: &dyn Store,
    now: OffsetDateTime,
    id: &str,
) -> Result<Vec<String>, ApiError> {
    store.disable_scim(id, now).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::not_found(format!("no tenant \"{id}\"")),
        other => other.into(),
    })
}

/// Body of `PATCH /tenants/{tenant}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantUpdate {
    /// A new display name.
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
    /// A new identity provider.
    #[serde(default, deserialize_with = "present")]
    pub idp: Option<String>,
    /// A merge patch of the settings.
    #[serde(default, deserialize_with = "present")]
    pub settings: Option<Value>,
}

/// Query of `GET /tenants`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Page size (1–1000, default 100).
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Query of `DELETE /tenants/{tenant}`.
#[derive(Debug, Deserialize)]
pub struct DeleteQuery {
    /// `retain` or `erase`: what happens to the tenant's users, groups, events and logs.
    pub data: Option<String>,
}

/// Parses `data=retain|erase`.
///
/// # Errors
/// 400 when absent or anything else: deleting needs an explicit choice.
pub fn data_mode(v: Option<&str>) -> Result<TenantDataMode, ApiError> {
    match v {
        Some("retain") => Ok(TenantDataMode::Retain),
        Some("erase") => Ok(TenantDataMode::Erase),
        _ => Err(ApiError::invalid(
            "say what happens to the tenant's data: ?data=retain (keep it, deactivated, for \
             audit) or ?data=erase (remove it)",
        )),
    }
}

/// `POST /api/v1/tenants`: 201 with the tenant (and, with `enable_scim`, its first token,
/// shown this once).
///
/// # Errors
/// 400, 401, 409.
pub async fn create_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    headers: HeaderMap,
    ApiJson(req): ApiJson<NewTenant>,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let (t, issued) = create(state.store.as_ref(), now, req, None).await?;
    audit(
        state.store.as_ref(),
        now,
        &auth.actor(),
        "tenant.create",
        Some(&t.id),
        Some(&t.id),
        json!({
            "name": t.name,
            "idp": t.idp,
            "scim_enabled": t.settings.scim_enabled,
            "token_prefix": issued.as_ref().map(|i| i.record.prefix.clone()),
        }),
    )
    .await;
    let base = base_url(&state, &headers, &t.id);
    let mut body = tenant_json(&t, &base);
    if let Some(i) = &issued {
        body["token"] = issued_json(i, &base);
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /api/v1/tenants`: a page of tenants ordered by id.
///
/// # Errors
/// 400, 401.
pub async fn list_handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let n = page_limit(q.limit)?;
    let mut page = state
        .store
        .list_tenants_page(q.cursor.as_deref(), n.saturating_add(1))
        .await?;
    let more = page.len() as u64 > n;
    page.truncate(usize::try_from(n).unwrap_or(usize::MAX));
    let next = if more {
        page.last().map(|t| t.id.clone())
    } else {
        None
    };
    let tenants: Vec<Value> = page
        .iter()
        .map(|t| tenant_json(t, &base_url(&state, &headers, &t.id)))
        .collect();
    Ok(Json(json!({"tenants": tenants, "next_cursor": next})))
}

/// `GET /api/v1/tenants/{tenant}`
///
/// # Errors
/// 401, 404.
pub async fn get_handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let t = live_tenant(state.store.as_ref(), &id).await?;
    Ok(Json(tenant_json(&t, &base_url(&state, &headers, &t.id))))
}

/// `PATCH /api/v1/tenants/{tenant}`: name, identity provider and settings.
///
/// # Errors
/// 400, 401, 404.
pub async fn update_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<TenantUpdate>,
) -> Result<Json<Value>, ApiError> {
    let details = json!({"name": req.name, "idp": req.idp, "settings": req.settings});
    let t = update(state.store.as_ref(), &id, req).await?;
    audit(
        state.store.as_ref(),
        state.clock.now(),
        &auth.actor(),
        "tenant.update",
        Some(&id),
        Some(&id),
        details,
    )
    .await;
    Ok(Json(tenant_json(&t, &base_url(&state, &headers, &t.id))))
}

/// `DELETE /api/v1/tenants/{tenant}?data=retain|erase`: 204; every token stops working at once.
///
/// # Errors
/// 400 (no `data`), 401, 404.
pub async fn delete_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    let mode = data_mode(q.data.as_deref())?;
    let now = state.clock.now();
    delete(state.store.as_ref(), now, &id, mode).await?;
    audit(
        state.store.as_ref(),
        now,
        &auth.actor(),
        "tenant.delete",
        Some(&id),
        Some(&id),
        json!({"data": mode}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/tenants/{tenant}/settings`
///
/// # Errors
/// 401, 404.
pub async fn get_settings_handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let t = live_tenant(state.store.as_ref(), &id).await?;
    Ok(Json(settings_json(&t)))
}

/// `PATCH /api/v1/tenants/{tenant}/settings`: a merge patch of the settings (and `idp`).
///
/// # Errors
/// 400, 401, 404.
pub async fn update_settings_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    if !patch.is_object() {
        return Err(ApiError::invalid(
            "the settings patch must be a JSON object",
        ));
    }
    let req = TenantUpdate {
        settings: Some(patch.clone()),
        ..TenantUpdate::default()
    };
    let t = update(state.store.as_ref(), &id, req).await?;
    audit(
        state.store.as_ref(),
        state.clock.now(),
        &auth.actor(),
        "tenant.settings",
        Some(&id),
        Some(&id),
        patch,
    )
    .await;
    Ok(Json(settings_json(&t)))
}

/// `POST /api/v1/tenants/{tenant}/scim/enable`: the SCIM base URL and the first token, shown
/// this once.
///
/// # Errors
/// 401, 404, 409 (already enabled).
pub async fn enable_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let now = state.clock.now();
    let issued = enable_scim(state.store.as_ref(), now, &id, None).await?;
    audit(
        state.store.as_ref(),
        now,
        &auth.actor(),
        "scim.enable",
        Some(&id),
        Some(&issued.record.prefix),
        json!({"expires_at": fmt_time(issued.record.expires_at)}),
    )
    .await;
    Ok(Json(issued_json(&issued, &base_url(&state, &headers, &id))))
}

/// Body of `POST /tenants/{tenant}/scim/disable`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisableScim {
    /// Must be `true`: disabling invalidates every token at once.
    pub confirm: bool,
}

/// `POST /api/v1/tenants/{tenant}/scim/disable` with `{"confirm": true}`: every token stops
/// working at once.
///
/// # Errors
/// 400 (no confirmation), 401, 404.
pub async fn disable_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(id): ApiPath<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let unconfirmed = || {
        ApiError::invalid(
            "disabling SCIM stops every token of the tenant at once and the identity provider's \
             syncs fail until SCIM is enabled again; confirm with the body {\"confirm\": true}",
        )
    };
    live_tenant(state.store.as_ref(), &id).await?;
    let confirmed = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| super::from_json::<DisableScim>(v).ok())
        .is_some_and(|r| r.confirm);
    if !confirmed {
        return Err(unconfirmed());
    }
    let now = state.clock.now();
    let revoked = disable_scim(state.store.as_ref(), now, &id).await?;
    audit(
        state.store.as_ref(),
        now,
        &auth.actor(),
        "scim.disable",
        Some(&id),
        Some(&id),
        json!({"revoked": revoked}),
    )
    .await;
    Ok(Json(
        json!({"tenant": id, "scim_enabled": false, "revoked": revoked}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> Tenant {
        Tenant {
            id: "acme".into(),
            name: "Acme".into(),
            idp: "generic".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            settings: TenantSettings::default(),
        }
    }

    #[test]
    fn slugs_and_ids() {
        assert_eq!(slug("Acme Corp"), "acme-corp");
        assert_eq!(slug("  --Ünïcode & Co!! "), "unicode-co");
        assert_eq!(slug("Société Générale"), "societe-generale");
        assert_eq!(slug("Müller & Söhne GmbH"), "muller-sohne-gmbh");
        assert_eq!(slug("Łódź Ørsted"), "lodz-orsted");
        assert_eq!(slug("東京"), "dong-jing");
        assert_eq!(slug("🦀"), "crab");
        assert_eq!(slug("***"), "");
        assert_eq!(slug(&"a".repeat(100)).len(), MAX_ID_LEN);
        assert_eq!(slug(&format!("{}-b", "a".repeat(62))), "a".repeat(62));
        for ok in ["a", "acme-corp", "0x1", &"a".repeat(63)] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "Acme", "a_b", "a b", "ü", &"a".repeat(64)] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
        assert_eq!(check_name("  Acme  ").unwrap(), "Acme");
        assert!(check_name("   ").is_err());
        assert!(check_name(&"x".repeat(201)).is_err());
        assert_eq!(check_idp("Okta").unwrap(), "okta");
        assert!(check_idp("azure").unwrap_err().contains("entra"));
    }

    #[test]
    fn unknown_settings_are_refused_even_when_null() {
        let mut t = tenant();
        for patch in [
            json!({"": null}),
            json!({"welcome_emial": true}),
            json!({"deprovision_guard": {"x": null}}),
        ] {
            let err = apply_settings_patch(&mut t, &patch).unwrap_err();
            assert!(err.contains("is not a setting"), "{err}");
        }
        assert_eq!(t.settings, TenantSettings::default());
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut v = json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge_patch(&mut v, &json!({"a": null, "b": {"c": 4}, "e": [1]}));
        assert_eq!(v, json!({"b": {"c": 4, "d": 3}, "e": [1]}));
        let mut v = json!(1);
        merge_patch(&mut v, &json!({"x": {"y": null, "z": 1}}));
        assert_eq!(v, json!({"x": {"z": 1}}));
    }

    #[test]
    fn settings_patches() {
        let mut t = tenant();
        apply_settings_patch(
            &mut t,
            &json!({
                "idp": "ENTRA",
                "groups_enabled": false,
                "deprovision_on_delete": "erase",
                "deprovision_guard": {"max_percent": 50},
            }),
        )
        .unwrap();
        assert_eq!(t.idp, "entra");
        assert!(!t.settings.groups_enabled);
        assert_eq!(
            t.settings.deprovision_on_delete,
            roster_store::DeprovisionMode::Erase
        );
        assert_eq!(t.settings.deprovision_guard.max_percent, 50);
        assert_eq!(t.settings.deprovision_guard.min_count, 10, "merged");
        // null resets to the default.
        apply_settings_patch(&mut t, &json!({"groups_enabled": null})).unwrap();
        assert!(t.settings.groups_enabled);

        let before = t.clone();
        for (patch, says) in [
            (json!({"groups_enabled": "no"}), "settings.groups_enabled"),
            (json!({"colour": "red"}), "settings.colour is not a setting"),
            (json!({"": null}), "is not a setting"),
            (
                json!({"deprovision_guard": {"oops": null}}),
                "deprovision_guard.oops",
            ),
            (
                json!({"deprovision_on_delete": "shred"}),
                "deprovision_on_delete",
            ),
            (json!({"token_ttl_days": 0}), "token_ttl_days"),
            (json!({"token_ttl_days": -1}), "token_ttl_days"),
            (json!({"token_expiry_warning_days": 400}), "warning"),
            (
                json!({"deprovision_guard": {"max_percent": 0}}),
                "max_percent",
            ),
            (
                json!({"deprovision_guard": {"window_minutes": 0}}),
                "window",
            ),
            (json!({"deprovision_guard": {"oops": 1}}), "oops"),
            (json!({"deprovision_guard": [true, 20, 10, 15]}), "object"),
            (json!({"scim_enabled": false}), "scim/disable"),
            (json!({"scim_enabled": true}), "scim/disable"),
            (json!({"idp": 3}), "idp"),
            (json!({"idp": "azure"}), "idp"),
            (json!([1]), "object"),
        ] {
            let mut t2 = t.clone();
            let err = apply_settings_patch(&mut t2, &patch).unwrap_err();
            assert!(err.contains(says), "{patch}: {err}");
        }
        assert_eq!(t, before);
    }

    #[test]
    fn settings_json_lists_idp_and_every_setting() {
        let v = settings_json(&tenant());
        assert_eq!(v["idp"], "generic");
        for k in [
            "scim_enabled",
            "groups_enabled",
            "deprovision_on_delete",
            "on_existing_user",
            "welcome_email",
            "sso_enforced",
            "token_ttl_days",
            "token_expiry_warning_days",
            "deprovision_guard",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
    }

    #[test]
    fn openapi_documents_the_tenant_routes_and_shapes() {
        let spec: Value = serde_json::from_str(super::super::OPENAPI).unwrap();
        for (path, methods) in [
            ("/api/v1/tenants", &["get", "post"][..]),
            ("/api/v1/tenants/{tenant}", &["get", "patch", "delete"]),
            ("/api/v1/tenants/{tenant}/settings", &["get", "patch"]),
            ("/api/v1/tenants/{tenant}/scim/enable", &["post"]),
            ("/api/v1/tenants/{tenant}/scim/disable", &["post"]),
            ("/api/v1/tenants/{tenant}/tokens", &["get", "post"]),
            ("/api/v1/tenants/{tenant}/tokens/rotate", &["post"]),
            ("/api/v1/tenants/{tenant}/tokens/{prefix}", &["delete"]),
        ] {
            for m in methods {
                assert!(spec["paths"][path][m].is_object(), "{m} {path}");
            }
        }
        // What the handlers return has every field the schemas require.
        let t = tenant();
        let now = OffsetDateTime::UNIX_EPOCH;
        let issued = super::super::tokens::new_token(&t, now, None);
        for (schema, value) in [
            ("Tenant", tenant_json(&t, "http://x/scim/v2/acme")),
            ("TenantSettings", settings_json(&t)),
            (
                "IssuedToken",
                super::super::tokens::issued_json(&issued, "b"),
            ),
            (
                "Token",
                super::super::tokens::token_json(&issued.record, now),
            ),
        ] {
            let s = &spec["components"]["schemas"][schema];
            for field in s["required"].as_array().unwrap() {
                let f = field.as_str().unwrap();
                assert!(value.get(f).is_some(), "{schema}.{f} missing in {value}");
            }
            for (k, _) in value.as_object().unwrap() {
                assert!(s["properties"].get(k).is_some(), "{schema} lacks {k}");
            }
        }
        // The settings patch schema names every setting but scim_enabled.
        let patch = &spec["components"]["schemas"]["TenantSettingsPatch"]["properties"];
        for (k, _) in settings_json(&t).as_object().unwrap() {
            assert_eq!(patch.get(k).is_some(), k != "scim_enabled", "{k}");
        }
    }

    #[test]
    fn delete_needs_an_explicit_choice() {
        assert_eq!(data_mode(Some("retain")).unwrap(), TenantDataMode::Retain);
        assert_eq!(data_mode(Some("erase")).unwrap(), TenantDataMode::Erase);
        assert!(data_mode(None).is_err());
        assert!(data_mode(Some("ERASE")).is_err());
    }
}
