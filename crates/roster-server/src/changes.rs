//! The events that describe a change to a resource's document, built by the service from the
//! document it read and the one it writes (the store then appends them in the write's
//! transaction, after checking the version it was read at: so the diff is exact).
//!
//! Member changes and lifecycle events (created, restored, deprovisioned, deleted) are emitted
//! by the store itself, which alone sees which rows really changed.

use roster_store::events::resource_ref;
use roster_store::{EventType, NewEvent};
use scim_proto::diff::diff;
use scim_proto::schema::{ResourceKind, TypeDef};
use serde_json::{json, Value};

/// A User without `active` counts as active (docs/scim.md).
fn is_active(doc: &Value) -> bool {
    doc.get("active").and_then(Value::as_bool) != Some(false)
}

/// The events for replacing `old` by `new` (and, when `password_changed`, a new password),
/// plus the names of the changed attributes for the provisioning log.
///
/// A User gets `user.updated` listing every changed attribute except `active` (old and new
/// values; `password` by name only), then `user.deactivated` or `user.reactivated` when
/// `active` flipped. A Group gets `group.updated`. Nothing changed, nothing emitted.
#[must_use]
pub fn change_events(
    def: TypeDef,
    id: &str,
    old: &Value,
    new: &Value,
    password_changed: bool,
) -> (Vec<NewEvent>, Vec<String>) {
    let kind = def.kind;
    let changes = diff(def, old, new);
    let mut names: Vec<String> = changes.iter().map(|c| c.attribute.clone()).collect();
    let mut listed: Vec<Value> = changes
        .iter()
        .filter(|c| !(kind == ResourceKind::User && c.attribute == "active"))
        .map(|c| json!({"attribute": c.attribute, "old": c.old, "new": c.new}))
        .collect();
    if password_changed {
        names.push("password".to_owned());
        // Named, never valued.
        listed.push(json!({"attribute": "password"}));
    }
    let mut events = Vec::new();
    match kind {
        ResourceKind::User => {
            let user = resource_ref(id, new);
            if !listed.is_empty() {
                events.push(NewEvent::new(
                    EventType::UserUpdated,
                    json!({"user": user, "changes": listed}),
                ));
            }
            match (is_active(old), is_active(new)) {
                (true, false) => events.push(NewEvent::new(
                    EventType::UserDeactivated,
                    json!({"user": user}),
                )),
                (false, true) => events.push(NewEvent::new(
                    EventType::UserReactivated,
                    json!({"user": user}),
                )),
                _ => {}
            }
            // `user.roles_changed` (effective roles emptied or restored) is the store's: it
            // computes effective roles from rows in the write's transaction.
        }
        ResourceKind::Group => {
            if !listed.is_empty() {
                events.push(NewEvent::new(
                    EventType::GroupUpdated,
                    json!({"group": resource_ref(id, new), "changes": listed}),
                ));
            }
        }
    }
    (events, names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(e: &[NewEvent]) -> Vec<&str> {
        e.iter().map(|e| e.event_type.as_str()).collect()
    }

    #[test]
    fn deactivation_alone_is_one_event() {
        let (e, names) = change_events(
            ResourceKind::User.def(),
            "u1",
            &json!({"userName": "a", "active": true}),
            &json!({"userName": "a", "active": false}),
            false,
        );
        assert_eq!(types(&e), ["user.deactivated"]);
        assert_eq!(names, ["active"]);
        assert_eq!(e[0].data["user"], json!({"id": "u1", "userName": "a"}));
    }

    #[test]
    fn updates_list_old_and_new_values_and_name_the_password_only() {
        let (e, names) = change_events(
            ResourceKind::User.def(),
            "u1",
            &json!({"userName": "a", "active": false, "title": "x"}),
            &json!({"userName": "b", "active": true, "title": "x"}),
            true,
        );
        assert_eq!(types(&e), ["user.updated", "user.reactivated"]);
        assert_eq!(names, ["userName", "active", "password"]);
        assert_eq!(
            e[0].data["changes"],
            json!([{"attribute": "userName", "old": "a", "new": "b"}, {"attribute": "password"}])
        );
    }

    #[test]
    fn absent_active_counts_as_active_and_no_change_is_silent() {
        let (e, _) = change_events(
            ResourceKind::User.def(),
            "u1",
            &json!({"userName": "a", "active": true}),
            &json!({"userName": "a"}),
            false,
        );
        assert!(e.is_empty(), "{e:?}");
        let (g, _) = change_events(
            ResourceKind::Group.def(),
            "g",
            &json!({"displayName": "A"}),
            &json!({"displayName": "B"}),
            false,
        );
        assert_eq!(types(&g), ["group.updated"]);
    }
}
