//! A data-protection erase: one deprovisioned User's personal data removed from everywhere the
//! store keeps it, ids kept.
//!
//! Where a user's personal data lives: its record (document, email rows, password hash, app
//! metadata), the payloads of the events about it (`user.created` carries the whole user,
//! `user.updated` old and new values, `user.imported` and the guard's events its userName),
//! the provisioning log (request bodies, the userName column, error details that quote a value)
//! and the guard's held operations (userName). The audit log names users by id only and stays as
//! it is: it must still say who erased whom.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use super::outbox::append_events;
use super::rows::Rows;
use super::stored_time;
use crate::{EventType, NewEvent, StoreError, StoreResult};

/// What an erase removed or rewrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erasure {
    /// Whether the user's record was still there (deprovisioned) and is now gone.
    pub record: bool,
    /// Events whose payload lost personal fields.
    pub events: u64,
    /// Provisioning-log rows that lost their body, name or detail.
    pub log_rows: u64,
}

/// Keys of an object about the erased user that carry no personal data and stay.
const KEPT_KEYS: [&str; 4] = ["id", "operation", "managed", "attribute"];

/// Erases the personal data of User `id` of `tenant`: a deprovisioned record is deleted (with
/// its email rows), and every event payload and provisioning-log row that names it loses its
/// personal fields; the guard forgets its userName. Emits `user.erased` with
/// `"personal_data": true` (and nothing personal).
///
/// Refused with `Invalid` while the user is live (its identity provider would only send it
/// again: it must be deprovisioned first). Works too when the record is already gone (the
/// tenant's `deprovision_on_delete` is `erase`, or the app erased it) but events or log rows
/// still name it; `NotFound` when nothing names it at all.
///
/// Refused with `Invalid` too while the tenant's first-sync review is open (its copy of the
/// directory may hold the user).
///
/// Concurrency: reads the user's row and the events and log rows that name it, then rewrites
/// them. The row must not be restored in between (a backend without SQLite's write lock takes
/// the tenant's write lock first), and no new event or log row about an erased user carries
/// personal data, since the record it would come from is gone.
pub async fn erase_personal_data<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    id: &str,
    now: OffsetDateTime,
) -> StoreResult<Erasure> {
    let now = stored_time(now);
    if rows.review_is_open(tenant).await? {
        // A discard would put the record back from the review's copy.
        return Err(StoreError::Invalid(
            "this tenant's first-sync review is open: approve or discard it first, then              erase the user"
                .to_owned(),
        ));
    }
    let mut erasure = Erasure::default();
    let mut personal = BTreeSet::new();
    match rows.user_state(tenant, id).await? {
        Some((_, false, _)) => {
            return Err(StoreError::Invalid(
                "this user is not deprovisioned: deprovision it first (the identity provider \
                 unassigns or deletes it; an app user is deleted through the app API), then \
                 erase it"
                    .to_owned(),
            ))
        }
        Some((pk, true, doc)) => {
            collect_personal(&doc, &mut personal);
            rows.delete_resource(tenant, pk).await?;
            erasure.record = true;
        }
        None => {}
    }
    let events = rows.events_naming(tenant, id).await?;
    for (_, data) in &events {
        personal_of_user(data, id, &mut personal);
    }
    for (seq, data) in events {
        let scrubbed = scrub_event(&data, id);
        if scrubbed != data {
            rows.rewrite_event_data(tenant, seq, &scrubbed).await?;
            erasure.events += 1;
        }
    }
    // Short values (a one-letter name) would match inside unrelated bodies; every value worth
    // erasing from free text is longer than this.
    let needles: Vec<String> = personal
        .iter()
        .filter(|v| v.chars().count() >= 3)
        .map(|v| v.to_lowercase())
        .collect();
    erasure.log_rows = rows.scrub_log(tenant, id, &needles).await?;
    rows.guard_forget_name(tenant, id).await?;
    if !erasure.record && erasure.events == 0 && erasure.log_rows == 0 {
        return Err(StoreError::NotFound);
    }
    let event = NewEvent::new(
        EventType::UserErased,
        json!({"user": {"id": id}, "personal_data": true}),
    );
    append_events(rows, tenant, now, vec![event]).await?;
    Ok(erasure)
}

/// Every string of a user document that could identify the person: userName, externalId,
/// displayName, nickName, names, emails, phone numbers, addresses and extension attributes.
fn collect_personal(doc: &Value, out: &mut BTreeSet<String>) {
    match doc {
        Value::String(s) if !s.is_empty() => {
            out.insert(s.clone());
        }
        Value::Array(a) => a.iter().for_each(|v| collect_personal(v, out)),
        Value::Object(m) => {
            for (k, v) in m {
                // Structure, not the person: schema URNs, metadata, type labels, flags.
                if matches!(
                    k.as_str(),
                    "schemas" | "meta" | "id" | "type" | "primary" | "active" | "$ref"
                ) {
                    continue;
                }
                collect_personal(v, out);
            }
        }
        _ => {}
    }
}

/// The personal values an event payload holds about user `id`: its `user` object (and a
/// `previous` one), the old and new values of its changes, and any object with its id.
fn personal_of_user(data: &Value, id: &str, out: &mut BTreeSet<String>) {
    match data {
        Value::Object(m) if names_user(m, id) => {
            for (k, v) in m {
                if k != "id" && k != "operation" {
                    collect_personal(v, out);
                }
            }
        }
        Value::Object(m) => {
            let about = m
                .get("user")
                .and_then(Value::as_object)
                .is_some_and(|u| names_user(u, id));
            for (k, v) in m {
                match k.as_str() {
                    "group" => {}
                    "changes" if about => {
                        for change in v.as_array().into_iter().flatten() {
                            for key in ["old", "new"] {
                                if let Some(value) = change.get(key) {
                                    collect_personal(value, out);
                                }
                            }
                        }
                    }
                    "previous" if about => collect_personal(v, out),
                    _ => personal_of_user(v, id, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| personal_of_user(v, id, out)),
        _ => {}
    }
}

fn names_user(m: &Map<String, Value>, id: &str) -> bool {
    m.get("id").and_then(Value::as_str) == Some(id)
}

/// An event payload without personal data about user `id`: every object that names it keeps
/// only its id (and the operation or managed flag); when the event is about the user, its
/// `changes` keep only attribute names and a `previous` reference only its id. Objects under
/// `group` are groups, never the user, and stay. Adds `"personal_data_erased": true` when
/// anything changed.
#[must_use]
pub fn scrub_event(data: &Value, id: &str) -> Value {
    let mut out = scrub(data, id);
    if out != *data {
        if let Value::Object(m) = &mut out {
            m.insert("personal_data_erased".into(), Value::Bool(true));
        }
    }
    out
}

fn scrub(v: &Value, id: &str) -> Value {
    match v {
        Value::Object(m) if names_user(m, id) => Value::Object(
            m.iter()
                .filter(|(k, _)| KEPT_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        Value::Object(m) => {
            let about = m
                .get("user")
                .and_then(Value::as_object)
                .is_some_and(|u| names_user(u, id));
            let mut out = Map::new();
            for (k, v) in m {
                let new = match k.as_str() {
                    "group" => v.clone(),
                    "changes" if about => names_only(v),
                    "previous" if about => json!({"id": id}),
                    _ => scrub(v, id),
                };
                out.insert(k.clone(), new);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| scrub(v, id)).collect()),
        other => other.clone(),
    }
}

/// `user.updated` changes without their values: `[{"attribute": name}]`.
fn names_only(changes: &Value) -> Value {
    match changes {
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|c| match c.get("attribute") {
                    Some(name) => json!({"attribute": name}),
                    None => json!({}),
                })
                .collect(),
        ),
        _ => Value::Array(vec![]),
    }
}

/// The one statement of [`Rows::scrub_log`] and its arguments (strings, in placeholder order),
/// for a backend whose case-insensitive "`column` contains the next argument" test is
/// `contains` (given the column, it returns SQL with one `?`). Rows about the user (its id, or
/// a name among `needles`) lose name and body; any row whose body, detail or hint holds a
/// needle loses that; rows with nothing left to remove are not touched, so the count is of rows changed.
#[must_use]
pub fn scrub_log_statement(
    tenant: &str,
    id: &str,
    needles: &[String],
    contains: fn(&str) -> String,
) -> (String, Vec<String>) {
    let hit = |column: &str, args: &mut Vec<String>| {
        if needles.is_empty() {
            return "1 = 0".to_owned();
        }
        args.extend(needles.iter().cloned());
        let tests: Vec<String> = needles.iter().map(|_| contains(column)).collect();
        format!("({column} IS NOT NULL AND ({}))", tests.join(" OR "))
    };
    let about = |args: &mut Vec<String>| {
        args.push(id.to_owned());
        if needles.is_empty() {
            return "resource_id = ?".to_owned();
        }
        args.extend(needles.iter().cloned());
        let marks = vec!["?"; needles.len()].join(", ");
        format!("(resource_id = ? OR name_lc IN ({marks}))")
    };
    let mut args = Vec::new();
    let name = about(&mut args);
    let name_lc = about(&mut args);
    let body = format!("{} OR {}", about(&mut args), hit("body", &mut args));
    let detail = hit("detail", &mut args);
    let hint = hit("hint", &mut args);
    args.push(tenant.to_owned());
    let rows = format!(
        "({} AND (name IS NOT NULL OR body IS NOT NULL)) OR {} OR {} OR {}",
        about(&mut args),
        hit("body", &mut args),
        hit("detail", &mut args),
        hit("hint", &mut args)
    );
    let sql = format!(
        "UPDATE provisioning_log SET \
         name = CASE WHEN {name} THEN NULL ELSE name END, \
         name_lc = CASE WHEN {name_lc} THEN NULL ELSE name_lc END, \
         body = CASE WHEN {body} THEN NULL ELSE body END, \
         detail = CASE WHEN {detail} THEN NULL ELSE detail END, \
         hint = CASE WHEN {hint} THEN NULL ELSE hint END \
         WHERE tenant_id = ? AND ({rows})"
    );
    (sql, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_object_keeps_its_id_and_changes_their_names() {
        let data = json!({
            "user": {"id": "u1", "userName": "bjensen@example.com", "externalId": "bj"},
            "changes": [{"attribute": "title", "old": "Guide", "new": "Head"}, {"attribute": "password"}],
        });
        assert_eq!(
            scrub_event(&data, "u1"),
            json!({
                "user": {"id": "u1"},
                "changes": [{"attribute": "title"}, {"attribute": "password"}],
                "personal_data_erased": true,
            })
        );
        let mut found = BTreeSet::new();
        personal_of_user(&data, "u1", &mut found);
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            ["Guide", "Head", "bj", "bjensen@example.com"]
        );
    }

    #[test]
    fn lists_lose_only_the_erased_entry_and_groups_stay() {
        let imported = json!({"users": [{"id": "u1", "userName": "a"}, {"id": "u2", "userName": "b"}], "part": 1});
        assert_eq!(
            scrub_event(&imported, "u1"),
            json!({"users": [{"id": "u1"}, {"id": "u2", "userName": "b"}], "part": 1, "personal_data_erased": true})
        );
        let held = json!({"held": [{"id": "u1", "userName": "a", "operation": "delete"}]});
        assert_eq!(
            scrub_event(&held, "u1")["held"],
            json!([{"id": "u1", "operation": "delete"}])
        );
        let members = json!({"group": {"id": "u1", "displayName": "G"}, "members": ["u1"]});
        assert_eq!(scrub_event(&members, "u1"), members, "ids only: unchanged");
        let matched = json!({"user": {"id": "u1", "userName": "a"}, "previous": {"id": "u1", "userName": "old"}, "matched_by": "email"});
        assert_eq!(
            scrub_event(&matched, "u1"),
            json!({"user": {"id": "u1"}, "previous": {"id": "u1"}, "matched_by": "email", "personal_data_erased": true})
        );
    }

    #[test]
    fn personal_values_of_a_document() {
        let doc = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "u1", "userName": "bjensen", "active": false,
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "bj@example.com", "type": "work", "primary": true}],
            "meta": {"resourceType": "User"},
        });
        let mut found = BTreeSet::new();
        collect_personal(&doc, &mut found);
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            ["Barbara", "Jensen", "bj@example.com", "bjensen"]
        );
    }
}
