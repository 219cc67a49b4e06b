//! Tenants: create, update (name, identity provider, settings), delete (retaining or erasing
//! the data), and SCIM enablement; shared by the admin API, the console and the command line.
//!
//! Settings are changed with a JSON merge patch (RFC 7396) of the settings object, applied in
//! the store's write transaction to the current settings (so two concurrent patches of
//! different settings both take effect), then validated as a whole.

use roster_store::tenants::CONFLICT_REVIEW_HOLDS;
use roster_store::{Store, StoreError, Tenant, TenantDataMode, TenantSettings, TenantState};
use scim_proto::dialect::Idp;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use super::tokens::{issue_first, IssuedToken};
use super::{audit, fmt_time, live_tenant, present, FieldError, OpError};

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
    if let Some(r) = s
        .grantable_roles
        .iter()
        .find(|r| !super::users::valid_role(r))
    {
        return Err(format!(
            "settings.grantable_roles must list role names (letters, digits, spaces and _ . : -), not {r:?}"
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

/// The settings' shape as the surfaces show them: every setting, `rate_limit`, `email_uniqueness`
/// and `first_sync_review` included while empty or off (storage leaves them out then).
pub fn settings_shape(settings: &TenantSettings) -> Result<Value, String> {
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
        if !m.contains_key("guard_decided_by") {
            m.insert("guard_decided_by".into(), Value::from("operator"));
        }
        if !m.contains_key("grantable_roles") {
            m.insert("grantable_roles".into(), Value::Array(Vec::new()));
        }
    }
    Ok(v)
}

/// The settings only an operator may change: who decides on the guard and which roles the IT
/// admin may grant (the IT admin would otherwise grant itself the right).
pub const OPERATOR_SETTINGS: [&str; 2] = ["guard_decided_by", "grantable_roles"];

/// Refuses a settings patch of the tenant's IT admin ([`super::roles::is_it_admin`]) that
/// changes one of [`OPERATOR_SETTINGS`].
///
/// # Errors
/// [`OpError::Forbidden`] naming the setting.
pub fn check_settings_actor(actor: &str, patch: &Value) -> Result<(), OpError> {
    if !super::roles::is_it_admin(actor) {
        return Ok(());
    }
    match OPERATOR_SETTINGS.iter().find(|k| patch.get(**k).is_some()) {
        Some(k) => Err(OpError::Forbidden {
            message: format!("settings.{k} is changed by the operator only"),
        }),
        None => Ok(()),
    }
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

/// A refusal of `field`, to report with the others.
fn field_error(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: Some(field.to_owned()),
        message: message.into(),
    }
}

/// Creates a tenant; with `enable_scim`, SCIM is on from the start and the first token is
/// issued (and returned, to show once).
///
/// # Errors
/// [`OpError::Invalid`] for invalid input, [`OpError::Conflict`] when the id is taken (also
/// by a deleted tenant whose data is retained).
///
/// Audited as `tenant.create` by `actor`.
pub async fn create(
    store: &dyn Store,
    now: OffsetDateTime,
    actor: &str,
    req: NewTenant,
    ttl_days: Option<u32>,
) -> Result<(Tenant, Option<IssuedToken>), OpError> {
    // Every problem of the name, id and identity provider is reported at once.
    let mut errors = Vec::new();
    let name = check_name(&req.name)
        .map_err(|m| errors.push(field_error("name", m)))
        .ok();
    let id = match (&req.id, &name) {
        (Some(id), _) => Some(id.clone()),
        (None, Some(name)) => Some(match slug(name) {
            // A name without letters or digits, even transliterated (`***`), still makes a
            // tenant.
            s if s.is_empty() => format!(
                "tenant-{}",
                crate::tokens::random_alnum(8).to_ascii_lowercase()
            ),
            s => s,
        }),
        // Derived from a name that is refused: nothing more to say about it.
        (None, None) => None,
    };
    if let Some(id) = &id {
        if let Err(m) = check_id(id) {
            errors.push(field_error("id", m));
        }
    }
    let idp = check_idp(req.idp.as_deref().unwrap_or("generic"))
        .map_err(|m| errors.push(field_error("idp", m)))
        .ok();
    let (Some(name), Some(id), Some(idp), true) = (name, id, idp, errors.is_empty()) else {
        return Err(OpError::Invalid { errors });
    };
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
            return Err(OpError::invalid_field(
                "settings.scim_enabled",
                "settings.scim_enabled is not set at creation: use enable_scim",
            ));
        }
        apply_settings_patch(&mut tenant, patch)
            .map_err(|m| OpError::invalid_field("settings", m))?;
    }
    tenant.settings.scim_enabled = req.enable_scim;
    match store.create_tenant(&tenant).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(match store.tenant_state(&id).await? {
                TenantState::Deleted { deleted_at } => OpError::conflict(format!(
                    "the id \"{id}\" belongs to a tenant deleted on {} whose data is retained; \
                     erase it (DELETE /api/v1/tenants/{id}?data=erase) or choose another id",
                    fmt_time(deleted_at)
                )),
                _ => OpError::conflict(format!("a tenant with id \"{id}\" already exists")),
            })
        }
        Err(e) => return Err(e.into()),
    }
    let issued = if req.enable_scim {
        Some(issue_first(store, &tenant, now, ttl_days).await?)
    } else {
        None
    };
    audit(
        store,
        now,
        actor,
        "tenant.create",
        Some(&tenant.id),
        Some(&tenant.id),
        json!({
            "name": tenant.name,
            "idp": tenant.idp,
            "scim_enabled": tenant.settings.scim_enabled,
            "token_prefix": issued.as_ref().map(|i| i.record.prefix.clone()),
        }),
    )
    .await;
    Ok((tenant, issued))
}

/// Applies an update (name, identity provider, settings patch) in one store transaction.
///
/// # Errors
/// [`OpError::Invalid`] for invalid values, [`OpError::NotFound`] for an unknown tenant.
///
/// Audited by `actor` as `tenant.settings` (the patch) when only settings change, as
/// `tenant.update` (name, identity provider, settings) otherwise.
pub async fn update(
    store: &dyn Store,
    now: OffsetDateTime,
    actor: &str,
    id: &str,
    req: TenantUpdate,
) -> Result<Tenant, OpError> {
    let (action, details) = match (&req.name, &req.idp, &req.settings) {
        (None, None, Some(patch)) => ("tenant.settings", patch.clone()),
        (name, idp, settings) => (
            "tenant.update",
            json!({"name": name, "idp": idp, "settings": settings}),
        ),
    };
    let mut errors = Vec::new();
    let name = req
        .name
        .as_deref()
        .map(check_name)
        .transpose()
        .map_err(|m| errors.push(field_error("name", m)))
        .ok()
        .flatten();
    let idp = req
        .idp
        .as_deref()
        .map(check_idp)
        .transpose()
        .map_err(|m| errors.push(field_error("idp", m)))
        .ok()
        .flatten();
    if !errors.is_empty() {
        return Err(OpError::Invalid { errors });
    }
    let settings = req.settings;
    let t = store
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
            StoreError::NotFound => OpError::no_tenant(id),
            StoreError::Conflict(CONFLICT_REVIEW_HOLDS) => OpError::conflict(
                "first_sync_review cannot be turned off while the first-sync review holds \
                 events: approve it (the app receives them, in order) or discard it (what the \
                 identity provider did is undone), then the setting turns off by itself",
            ),
            other => other.into(),
        })?;
    audit(store, now, actor, action, Some(id), Some(id), details).await;
    Ok(t)
}

/// Deletes a tenant (or erases one deleted earlier with its data retained), audited as
/// `actor`.
///
/// # Errors
/// [`OpError::NotFound`] when there is no such tenant (for `retain`: no live one).
pub async fn delete(
    store: &dyn Store,
    now: OffsetDateTime,
    id: &str,
    mode: TenantDataMode,
    actor: &str,
) -> Result<(), OpError> {
    store
        .delete_tenant(id, mode, now)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => OpError::no_tenant(id),
            other => other.into(),
        })?;
    audit(
        store,
        now,
        actor,
        "tenant.delete",
        Some(id),
        Some(id),
        json!({"data": mode}),
    )
    .await;
    Ok(())
}

/// Enables SCIM and issues the first token, audited as `actor`.
///
/// # Errors
/// [`OpError::NotFound`] for an unknown tenant, [`OpError::Conflict`] when SCIM is already
/// enabled.
pub async fn enable_scim(
    store: &dyn Store,
    now: OffsetDateTime,
    id: &str,
    ttl_days: Option<u32>,
    actor: &str,
) -> Result<IssuedToken, OpError> {
    let t = live_tenant(store, id).await?;
    let issued = super::tokens::new_token(&t, now, ttl_days);
    store
        .enable_scim(&issued.record, now)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => OpError::conflict(format!(
                "SCIM is already enabled for tenant \"{id}\"; create or rotate a token instead"
            )),
            StoreError::NotFound => OpError::no_tenant(id),
            other => other.into(),
        })?;
    audit(
        store,
        now,
        actor,
        "scim.enable",
        Some(id),
        Some(&issued.record.prefix),
        json!({"expires_at": fmt_time(issued.record.expires_at)}),
    )
    .await;
    Ok(issued)
}

/// Disables SCIM, audited as `actor`: every token of the tenant stops working at once.
/// Returns the revoked prefixes.
///
/// # Errors
/// [`OpError::NotFound`] for an unknown tenant.
pub async fn disable_scim(
    store: &dyn Store,
    now: OffsetDateTime,
    id: &str,
    actor: &str,
) -> Result<Vec<String>, OpError> {
    let revoked = store.disable_scim(id, now).await.map_err(|e| match e {
        StoreError::NotFound => OpError::no_tenant(id),
        other => other.into(),
    })?;
    audit(
        store,
        now,
        actor,
        "scim.disable",
        Some(id),
        Some(id),
        json!({"revoked": revoked}),
    )
    .await;
    Ok(revoked)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    /// The operations against a real (SQLite) store: refusals name their field, and a change
    /// is audited as the actor the surface passed, whichever surface it is.
    #[tokio::test]
    async fn operations_refuse_by_field_and_audit_as_the_actor() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("r.db").display());
        let store = roster_store::sqlite::SqliteStore::open(&url).await.unwrap();
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let blank = NewTenant {
            name: "   ".into(),
            ..NewTenant::default()
        };
        match create(&store, now, "cli:test", blank, None).await {
            Err(OpError::Invalid { errors }) => {
                assert_eq!(errors.len(), 1);
                assert_eq!(errors[0].field.as_deref(), Some("name"));
            }
            other => panic!("{other:?}"),
        }
        // Every problem at once: a blank name, a bad id and an unknown identity provider.
        let bad = NewTenant {
            name: String::new(),
            id: Some("Not An Id!".into()),
            idp: Some("myspace".into()),
            ..NewTenant::default()
        };
        match create(&store, now, "cli:test", bad, None).await {
            Err(OpError::Invalid { errors }) => {
                let fields: Vec<_> = errors.iter().filter_map(|e| e.field.as_deref()).collect();
                assert_eq!(fields, ["name", "id", "idp"], "{errors:?}");
            }
            other => panic!("{other:?}"),
        }
        let acme = NewTenant {
            name: "Acme".into(),
            ..NewTenant::default()
        };
        let (t, issued) = create(&store, now, "cli:test", acme.clone(), None)
            .await
            .unwrap();
        assert!(issued.is_none());
        assert!(matches!(
            create(&store, now, "cli:test", acme, None).await,
            Err(OpError::Conflict { .. })
        ));
        assert!(matches!(
            enable_scim(&store, now, "nope", None, "cli:ann").await,
            Err(OpError::NotFound { message }) if message == "no tenant \"nope\""
        ));
        let issued = enable_scim(&store, now, &t.id, None, "console:operator:ann")
            .await
            .unwrap();
        let audit = roster_store::LogStore::list_audit(&store, None, 10)
            .await
            .unwrap();
        let e = audit.iter().find(|e| e.action == "scim.enable").unwrap();
        assert_eq!(e.actor, "console:operator:ann");
        assert_eq!(e.target.as_deref(), Some(issued.record.prefix.as_str()));
    }
}
