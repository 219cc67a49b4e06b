//! App users: the edits the admin API and the console make to a user (SCIM attributes of the
//! users SCIM does not manage, directly assigned roles, metadata, custom attributes), the
//! validation of what an operator types, and the data-protection erase.
//!
//! Who owns what: on a SCIM-managed user, the SCIM attributes (userName, name, displayName,
//! emails, externalId, active) belong to the identity provider, and an attempt to change them
//! here is a conflict that says so; the app-owned fields (directly assigned roles, metadata)
//! can always be changed. The tenant's custom attributes (under each custom schema's URN)
//! follow the same rule: the identity provider's on a managed user, editable on the others, and
//! validated by type against the tenant's declarations.

use roster_store::app::{AppUser, AppUserUpdate};
use roster_store::{EventType, NewEvent, StoreError};
use scim_proto::resource::normalize;
use scim_proto::schema::{ResourceKind, TypeDef, ENTERPRISE_USER_SCHEMA};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{audit, live_tenant, nullable, present, OpError};
use crate::changes::change_events;
use crate::AppState;

/// At most this many directly assigned roles per user or mapped roles per mapping.
pub const MAX_ROLES: usize = 100;
/// Longest role name, in characters.
pub const MAX_ROLE_LEN: usize = 64;
/// Largest app metadata object, serialised, in bytes.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// How many times a change is retried after losing a race with another writer.
const ATTEMPTS: usize = 5;

/// Whether `c` is white space as ECMAScript's `\s` (and so the OpenAPI patterns) defines it.
#[must_use]
pub fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// Whether a text has no character other than white space (the spec's pattern `\S`).
#[must_use]
pub fn blank(s: &str) -> bool {
    s.chars().all(is_js_space)
}

/// Whether a role name is valid: 1 to [`MAX_ROLE_LEN`] characters, a letter or digit first,
/// then letters, digits, spaces and `_ . : -`, no space at the end (the spec's `RoleName`
/// pattern, `^[A-Za-z0-9](?:[A-Za-z0-9 _.:-]*[A-Za-z0-9_.:-])?$`): a name the app can show
/// and compare safely (`<script>x</script>` and `Admin Role!!` are not role names).
#[must_use]
pub fn valid_role(r: &str) -> bool {
    let mut chars = r.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    r.len() <= MAX_ROLE_LEN
        && first.is_ascii_alphanumeric()
        && !r.ends_with(' ')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '.' | ':' | '-'))
}

/// Validates role names ([`valid_role`], at most [`MAX_ROLES`]); returns them sorted without
/// duplicates.
///
/// # Errors
/// A message naming the problem.
pub fn valid_roles(field: &str, roles: &[String]) -> Result<Vec<String>, String> {
    if roles.len() > MAX_ROLES {
        return Err(format!("{field} may list at most {MAX_ROLES} roles"));
    }
    let mut out = std::collections::BTreeSet::new();
    for r in roles {
        if !valid_role(r) {
            return Err(format!(
                "{field}: a role name has 1 to {MAX_ROLE_LEN} characters: letters, digits, \
                 spaces and _ . : - (a letter or digit first, no space at the end), not {r:?}"
            ));
        }
        out.insert(r.clone());
    }
    Ok(out.into_iter().collect())
}

/// Validates app metadata: a JSON object of at most [`MAX_METADATA_BYTES`] serialised.
///
/// # Errors
/// A message naming the problem.
pub fn valid_metadata(v: &Value) -> Result<Value, String> {
    if !v.is_object() {
        return Err("metadata must be a JSON object".to_owned());
    }
    let size = serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX);
    if size > MAX_METADATA_BYTES {
        return Err(format!(
            "metadata is {size} bytes serialised; at most {MAX_METADATA_BYTES} are kept"
        ));
    }
    Ok(v.clone())
}

/// The primary email of a User document: the one marked primary, else the first.
#[must_use]
pub fn primary_email(doc: &Value) -> Option<&str> {
    let emails = doc.get("emails")?.as_array()?;
    emails
        .iter()
        .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| emails.first())?
        .get("value")?
        .as_str()
}

/// The custom attributes of a User document: each custom schema extension's object under its
/// URN (every extension key but the built-in enterprise one).
#[must_use]
pub fn custom_attributes(doc: &Value) -> Value {
    let out: Map<String, Value> = doc
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| {
            k.contains(':') && !k.eq_ignore_ascii_case(ENTERPRISE_USER_SCHEMA) && v.is_object()
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(out)
}

/// The user `id` of `tenant`.
///
/// # Errors
/// [`OpError::NotFound`] naming it.
pub async fn fetch_user(state: &AppState, tenant: &str, id: &str) -> Result<AppUser, OpError> {
    state
        .store
        .get_app_user(tenant, id)
        .await?
        .ok_or_else(|| OpError::not_found(format!("no user \"{id}\" in tenant \"{tenant}\"")))
}

/// Body of `PATCH /tenants/{tenant}/users/{id}`: every field optional; `null` clears an
/// optional attribute.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// userName (IdP-owned on a managed user).
    #[serde(default, deserialize_with = "present")]
    pub user_name: Option<String>,
    /// displayName (IdP-owned on a managed user).
    #[serde(default, deserialize_with = "nullable")]
    pub display_name: Option<Option<String>>,
    /// name.givenName (IdP-owned on a managed user).
    #[serde(default, deserialize_with = "nullable")]
    pub given_name: Option<Option<String>>,
    /// name.familyName (IdP-owned on a managed user).
    #[serde(default, deserialize_with = "nullable")]
    pub family_name: Option<Option<String>>,
    /// The primary email (IdP-owned on a managed user).
    #[serde(default, deserialize_with = "nullable")]
    pub email: Option<Option<String>>,
    /// externalId (IdP-owned on a managed user).
    #[serde(default, deserialize_with = "nullable")]
    pub external_id: Option<Option<String>>,
    /// active (IdP-owned on a managed user).
    #[serde(default, deserialize_with = "present")]
    pub active: Option<bool>,
    /// Directly assigned roles (app-owned), replacing the previous ones.
    #[serde(default, deserialize_with = "present")]
    pub roles: Option<Vec<String>>,
    /// App metadata (app-owned), replacing the previous object.
    #[serde(default, deserialize_with = "present")]
    pub metadata: Option<Value>,
    /// Custom attributes (IdP-owned on a managed user): a custom schema's URN → the attributes
    /// to set, each validated by its declared type; `null` for an attribute removes it, `null`
    /// for a URN removes all of that schema's. The attributes not named keep their values.
    #[serde(default, deserialize_with = "present")]
    pub custom_attributes: Option<Map<String, Value>>,
    /// The version the change was made against (`version` of the user as read): when the
    /// user has changed since, the change is refused rather than written over the other one.
    #[serde(default, deserialize_with = "present")]
    pub version: Option<i64>,
}

/// Whether `s` looks like an email address, as `docs/openapi.json`'s pattern
/// `^[^@\s]+@[^@\s]+\.[^@\s]+$` says: one `@`, something before it, a dot with something on
/// both sides after it, no white space. Only for what operators type (the admin API, the
/// console, imports); an identity provider's email is never refused for its shape.
#[must_use]
pub fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let clean = |p: &str| !p.is_empty() && !p.contains('@') && !p.chars().any(is_js_space);
    clean(local)
        && clean(domain)
        && domain
            .char_indices()
            .any(|(i, c)| c == '.' && i > 0 && i + 1 < domain.len())
}

/// The refusal of an email an operator typed that is not one.
#[must_use]
pub fn not_an_email(field: &str, value: &str) -> String {
    format!("{field} {value:?} is not an email address (like name@example.com)")
}

fn set_opt(doc: &mut Map<String, Value>, key: &str, v: &Option<Option<String>>) {
    match v {
        Some(Some(s)) => {
            doc.insert(key.to_owned(), Value::String(s.clone()));
        }
        Some(None) => {
            doc.remove(key);
        }
        None => {}
    }
}

/// The document with the patch's SCIM attributes applied.
fn apply(doc: &Value, p: &UserPatch) -> Value {
    let mut m = doc.as_object().cloned().unwrap_or_default();
    if let Some(u) = &p.user_name {
        m.insert("userName".into(), Value::String(u.clone()));
    }
    set_opt(&mut m, "displayName", &p.display_name);
    set_opt(&mut m, "externalId", &p.external_id);
    if p.given_name.is_some() || p.family_name.is_some() {
        let mut name = m
            .get("name")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        set_opt(&mut name, "givenName", &p.given_name);
        set_opt(&mut name, "familyName", &p.family_name);
        if name.is_empty() {
            m.remove("name");
        } else {
            m.insert("name".into(), Value::Object(name));
        }
    }
    match &p.email {
        Some(Some(e)) => {
            let mut emails = m
                .get("emails")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let i = emails
                .iter()
                .position(|x| x.get("primary").and_then(Value::as_bool) == Some(true))
                .unwrap_or(0);
            match emails.get_mut(i).and_then(Value::as_object_mut) {
                Some(x) => {
                    x.insert("value".into(), Value::String(e.clone()));
                    x.insert("primary".into(), Value::Bool(true));
                }
                None => emails = vec![json!({"value": e, "type": "work", "primary": true})],
            }
            m.insert("emails".into(), Value::Array(emails));
        }
        Some(None) => {
            m.remove("emails");
        }
        None => {}
    }
    if let Some(a) = p.active {
        m.insert("active".into(), Value::Bool(a));
    }
    Value::Object(m)
}

/// Custom attribute changes resolved against the tenant's definition: for each custom schema
/// (its URN as declared), the attributes to set (`null` removes), or `None` to remove them all.
type CustomChanges = Vec<(&'static str, Option<Vec<(&'static str, Value)>>)>;

/// Resolves `custom_attributes` against `def`: every URN must be one of the tenant's custom
/// schemas and every name one of its attributes (both case-insensitively); the values' types
/// are checked when the document is normalised.
fn resolve_custom(def: TypeDef, custom: &Map<String, Value>) -> Result<CustomChanges, String> {
    let built_in = def.kind.def();
    let schemas: Vec<_> = def
        .extensions
        .iter()
        .filter(|e| !built_in.extensions.iter().any(|b| b.id == e.id))
        .collect();
    let mut out = Vec::new();
    for (urn, v) in custom {
        let Some(schema) = schemas.iter().find(|s| s.id.eq_ignore_ascii_case(urn)) else {
            let declared: Vec<&str> = schemas.iter().map(|s| s.id).collect();
            return Err(format!(
                "custom_attributes: {urn:?} is not a custom schema of this tenant's users ({})",
                if declared.is_empty() {
                    "it declares none".to_owned()
                } else {
                    format!("declared: {}", declared.join(", "))
                }
            ));
        };
        match v {
            Value::Null => out.push((schema.id, None)),
            Value::Object(attrs) => {
                let mut set = Vec::new();
                for (name, value) in attrs {
                    let Some(a) = schema.attribute(name) else {
                        let names: Vec<&str> = schema.attributes.iter().map(|a| a.name).collect();
                        return Err(format!(
                            "custom_attributes: {name:?} is not an attribute of {:?} (it has {})",
                            schema.id,
                            names.join(", ")
                        ));
                    };
                    set.push((a.name, value.clone()));
                }
                out.push((schema.id, Some(set)));
            }
            _ => {
                return Err(format!(
                    "custom_attributes: the value of {urn:?} must be an object of its attributes, \
                     or null"
                ))
            }
        }
    }
    Ok(out)
}

/// The document with custom attribute changes applied (the values are validated afterwards,
/// by normalising the document against the tenant's definition).
fn apply_custom(doc: &Value, changes: &CustomChanges) -> Value {
    let mut m = doc.as_object().cloned().unwrap_or_default();
    for (urn, attrs) in changes {
        let key = m
            .keys()
            .find(|k| k.eq_ignore_ascii_case(urn))
            .cloned()
            .unwrap_or_else(|| (*urn).to_owned());
        let mut obj = match m.get(&key) {
            Some(Value::Object(o)) => o.clone(),
            _ => Map::new(),
        };
        match attrs {
            None => obj.clear(),
            Some(set) => {
                for (name, v) in set {
                    obj.retain(|k, _| !k.eq_ignore_ascii_case(name));
                    if !v.is_null() {
                        obj.insert((*name).to_owned(), v.clone());
                    }
                }
            }
        }
        if obj.is_empty() {
            m.remove(&key);
        } else {
            m.insert(key, Value::Object(obj));
        }
    }
    Value::Object(m)
}

/// The top-level attributes whose values differ between two documents.
fn changed_attributes(old: &Value, new: &Value) -> Vec<String> {
    let empty = Map::new();
    let (o, n) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| o.get(*k) != n.get(*k))
        .cloned()
        .collect()
}

/// Adds `extra` changes to the `user.updated` (or `group.updated`) event of `events`, creating
/// one in front when the document itself did not change.
pub fn add_changes(
    events: &mut Vec<NewEvent>,
    event_type: EventType,
    subject: (&str, Value),
    extra: Vec<Value>,
) {
    if extra.is_empty() {
        return;
    }
    if let Some(e) = events.iter_mut().find(|e| e.event_type == event_type) {
        if let Some(list) = e.data.get_mut("changes").and_then(Value::as_array_mut) {
            list.extend(extra);
            return;
        }
    }
    events.insert(
        0,
        NewEvent::new(event_type, json!({subject.0: subject.1, "changes": extra})),
    );
}

/// The conflict of a change made against a version that is no longer the user's.
fn stale(sent: i64, now: i64) -> OpError {
    OpError::conflict(format!(
        "this user changed since it was read (version {sent}, now {now}): nothing was saved; \
         read it again and make the change on the current values"
    ))
}

/// Changes a user (the operation behind `PATCH /users/{id}` and the console's user page),
/// audited as `actor`. On a SCIM-managed user only the app-owned fields may change.
///
/// # Errors
/// [`OpError::NotFound`]; [`OpError::Invalid`] (invalid values); [`OpError::Conflict`] (an
/// IdP-owned field of a managed user; a taken userName; a custom schema or attribute the
/// tenant does not declare; a stale `version`).
pub async fn update(
    state: &AppState,
    actor: &str,
    tenant: &str,
    id: &str,
    p: &UserPatch,
) -> Result<AppUser, OpError> {
    let t = live_tenant(state.store.as_ref(), tenant).await?;
    let def = t.def(ResourceKind::User);
    if p.user_name.as_deref().is_some_and(str::is_empty) {
        return Err(OpError::invalid_field(
            "user_name",
            "user_name must not be empty",
        ));
    }
    if let Some(Some(e)) = &p.email {
        if !looks_like_email(e) {
            return Err(OpError::invalid_field("email", not_an_email("email", e)));
        }
    }
    let roles = p
        .roles
        .as_deref()
        .map(|r| valid_roles("roles", r))
        .transpose()
        .map_err(|m| OpError::invalid_field("roles", m))?;
    let metadata = p
        .metadata
        .as_ref()
        .map(valid_metadata)
        .transpose()
        .map_err(|m| OpError::invalid_field("metadata", m))?;
    for _ in 0..ATTEMPTS {
        let cur = fetch_user(state, tenant, id).await?;
        if let Some(v) = p.version.filter(|v| *v != cur.resource.version) {
            return Err(stale(v, cur.resource.version));
        }
        // A schema or attribute this tenant does not declare (yet) is a conflict with its
        // declarations, not a malformed request: the same request works once it is declared.
        let custom = p
            .custom_attributes
            .as_ref()
            .map(|c| resolve_custom(def, c))
            .transpose()
            .map_err(|m| {
                OpError::conflict(format!("{m}; declare it first (PUT …/custom-schemas)"))
            })?
            .unwrap_or_default();
        let mut new_doc = apply_custom(&apply(&cur.resource.doc, p), &custom);
        let changed = changed_attributes(&cur.resource.doc, &new_doc);
        if !changed.is_empty() && cur.managed {
            return Err(OpError::conflict(format!(
                "{} owned by the identity provider: this user is managed by SCIM, so change \
                 {} there. The app-owned fields (roles, metadata) can be changed here",
                if changed.len() == 1 {
                    format!("{} is", changed.join(", "))
                } else {
                    format!("{} are", changed.join(", "))
                },
                if changed.len() == 1 { "it" } else { "them" },
            )));
        }
        if !changed.is_empty() {
            new_doc = normalize(def, &new_doc, None)
                .map_err(|e| OpError::invalid(e.detail))?
                .doc;
        }
        let doc_changed = new_doc != cur.resource.doc;
        let roles = roles.clone().filter(|r| *r != cur.direct_roles);
        if let Some(r) = &roles {
            super::roles::check_grant(state, &t, actor, "roles", r, &cur.direct_roles).await?;
        }
        let metadata = metadata.clone().filter(|m| *m != cur.metadata);
        if !doc_changed && roles.is_none() && metadata.is_none() {
            return Ok(cur);
        }
        let mut events = if doc_changed {
            change_events(def, id, &cur.resource.doc, &new_doc, false).0
        } else {
            Vec::new()
        };
        let mut extra = Vec::new();
        if let Some(r) = &roles {
            extra.push(json!({"attribute": "direct_roles", "old": cur.direct_roles, "new": r}));
        }
        if let Some(m) = &metadata {
            extra.push(json!({"attribute": "metadata", "old": cur.metadata, "new": m}));
        }
        add_changes(
            &mut events,
            EventType::UserUpdated,
            ("user", roster_store::events::resource_ref(id, &new_doc)),
            extra,
        );
        let update = AppUserUpdate {
            expected_version: cur.resource.version,
            doc: doc_changed.then(|| new_doc.clone()),
            roles: roles.clone(),
            metadata: metadata.clone(),
            events,
        };
        match state
            .store
            .update_app_user(tenant, id, update, state.clock.now())
            .await
        {
            Ok(u) => {
                audit(
                    state.store.as_ref(),
                    state.clock.now(),
                    actor,
                    "user.update",
                    Some(tenant),
                    Some(id),
                    json!({
                        "attributes": changed,
                        "roles": roles,
                        "metadata": metadata.is_some(),
                    }),
                )
                .await;
                return Ok(u);
            }
            // Changed between the read and the write: a change made against a version the
            // caller named is refused; one without is applied to the new state.
            Err(StoreError::Stale) if p.version.is_some() => {
                let now = fetch_user(state, tenant, id).await?.resource.version;
                return Err(stale(p.version.unwrap_or_default(), now));
            }
            Err(StoreError::Stale) => {}
            Err(StoreError::Conflict("userName")) => {
                return Err(OpError::conflict(format!(
                    "userName {:?} is already taken by another user of this tenant",
                    new_doc
                        .get("userName")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                )))
            }
            Err(StoreError::NotFound) => {
                return Err(OpError::not_found(format!("no user \"{id}\"")))
            }
            Err(StoreError::Invalid(m)) => return Err(OpError::conflict(m)),
            Err(e) => return Err(e.into()),
        }
    }
    Err(OpError::conflict(
        "the user kept changing concurrently; retry",
    ))
}

/// Erases one deprovisioned user's personal data and audits it (the admin API and the CLI).
///
/// # Errors
/// [`OpError::NotFound`] when nothing names the user, [`OpError::Conflict`] while it is live,
/// and store failures.
pub async fn erase_personal_data(
    state: &AppState,
    actor: &str,
    tenant: &str,
    id: &str,
) -> Result<Value, OpError> {
    // Rows still queued for the provisioning log would be written after the erase.
    state
        .provlog
        .settle(std::time::Duration::from_secs(2))
        .await;
    let erased = match state
        .store
        .erase_personal_data(tenant, id, state.clock.now())
        .await
    {
        Ok(e) => e,
        Err(StoreError::NotFound) => {
            return Err(OpError::not_found(format!(
                "nothing of this tenant names a user \"{id}\""
            )))
        }
        Err(StoreError::Invalid(m)) => return Err(OpError::conflict(m)),
        Err(e) => return Err(e.into()),
    };
    let body = json!({
        "id": id,
        "record_erased": erased.record,
        "events_rewritten": erased.events,
        "log_rows_rewritten": erased.log_rows,
    });
    audit(
        state.store.as_ref(),
        state.clock.now(),
        actor,
        "user.erase_personal_data",
        Some(tenant),
        Some(id),
        body.clone(),
    )
    .await;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_emails_need_an_address_shape() {
        for good in ["a@b.c", "ann.lee+x@example.co.uk", "ü@bücher.de"] {
            assert!(looks_like_email(good), "{good}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "@b.c",
            "a@.c",
            "a@b.",
            "a@@b.c",
            "a b@c.d",
            "a@b.c\u{3000}",
            "a@b@c.d",
        ] {
            assert!(!looks_like_email(bad), "{bad}");
        }
    }

    #[test]
    fn patch_applies_to_the_document() {
        let doc = json!({"userName": "a", "name": {"givenName": "A"}, "emails": [{"value": "a@x", "primary": true}]});
        let p = UserPatch {
            user_name: Some("b".into()),
            family_name: Some(Some("F".into())),
            given_name: Some(None),
            email: Some(Some("b@x".into())),
            active: Some(false),
            ..UserPatch::default()
        };
        let new = apply(&doc, &p);
        assert_eq!(
            new,
            json!({"userName": "b", "name": {"familyName": "F"}, "emails": [{"value": "b@x", "primary": true}], "active": false})
        );
        assert_eq!(
            changed_attributes(&doc, &new),
            ["active", "emails", "name", "userName"]
        );
        assert!(changed_attributes(&doc, &apply(&doc, &UserPatch::default())).is_empty());
    }

    #[test]
    fn custom_attributes_merge_into_their_schema_and_are_validated_by_type() {
        let urn = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";
        let decl: Vec<scim_proto::custom::CustomSchema> = serde_json::from_value(json!([{
            "urn": urn, "resource": "User",
            "attributes": [{"name": "costCenter", "type": "string"},
                           {"name": "level", "type": "integer"}]}]))
        .unwrap();
        let def = scim_proto::custom::resource_type(ResourceKind::User, &decl);
        let doc = json!({"schemas": [scim_proto::schema::USER_SCHEMA, urn], "userName": "a",
                         urn: {"costCenter": "R1", "level": 1}});
        let set = |v: Value| resolve_custom(def, v.as_object().unwrap());
        // Names are matched case-insensitively; null removes; others keep their values.
        let c = set(json!({urn.to_uppercase(): {"LEVEL": 4, "costCenter": null}})).unwrap();
        let new = apply_custom(&doc, &c);
        assert_eq!(new[urn], json!({"level": 4}));
        assert_eq!(
            normalize(def, &new, None).unwrap().doc[urn],
            json!({"level": 4})
        );
        // The whole schema's values go with a null URN.
        let gone = apply_custom(&doc, &set(json!({urn: null})).unwrap());
        assert!(gone.get(urn).is_none());
        // Wrong types are refused when the document is normalised, naming the attribute.
        let bad = apply_custom(&doc, &set(json!({urn: {"level": "abc"}})).unwrap());
        let e = normalize(def, &bad, None).unwrap_err();
        assert!(e.detail.contains(&format!("{urn}:level")), "{}", e.detail);
        // Unknown schemas and attributes are named; the enterprise extension is not custom.
        assert!(set(json!({"urn:x:y": {}})).unwrap_err().contains("urn:x:y"));
        assert!(set(json!({urn: {"nope": 1}}))
            .unwrap_err()
            .contains("\"nope\""));
        assert!(set(json!({ENTERPRISE_USER_SCHEMA: {"department": "x"}})).is_err());
        assert!(set(json!({urn: 3})).is_err());
        assert_eq!(
            custom_attributes(&doc),
            json!({urn: {"costCenter": "R1", "level": 1}})
        );
    }

    #[test]
    fn roles_are_validated_and_sorted() {
        assert_eq!(
            valid_roles("roles", &["b".into(), "a b".into(), "b".into()]).unwrap(),
            ["a b", "b"]
        );
        assert!(valid_roles("roles", &[String::new()]).is_err());
        assert!(valid_roles("roles", &[" a".into()]).is_err());
        assert!(valid_roles("roles", &["a\u{feff}".into()]).is_err());
        assert!(blank(" \u{3000}\t") && !blank(" x") && !blank("\u{85}"));
        assert!(valid_roles("roles", &["x\ny".into()]).is_err());
        for bad in ["<script>x</script>", "Admin Role!!", "a ", "-a", "é"] {
            assert!(valid_roles("roles", &[bad.into()]).is_err(), "{bad}");
        }
        assert!(valid_roles("roles", &["app:admin".into(), "team_lead-2.0".into()]).is_ok());
        assert!(valid_roles("roles", &["x".repeat(65)]).is_err());
        assert!(valid_metadata(&json!([1])).is_err());
        assert!(valid_metadata(&json!({"k": "x".repeat(20_000)})).is_err());
    }
}
