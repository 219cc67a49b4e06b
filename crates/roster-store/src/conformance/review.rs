//! The first-sync review (issue 13): held events wait for approval and then reach the feed
//! after every seq a reader has seen; a discard puts the directory back; the review survives
//! reopening the database; it cannot be switched off while it holds events.

use scim_proto::schema::{ResourceKind, GROUP_SCHEMA, USER_SCHEMA};
use serde_json::{json, Value};

use super::support::{add_group, add_user, at, events_of, new, tenant, types_of};
use super::Backend;
use crate::app::{ImportUser, LoginKey, MatchBy, RoleMapping, UserStatus};
use crate::{CreateOutcome, Deletion, ResourceUpdate, Store, StoreError};

async fn set_review(s: &dyn Store, on: bool) -> Result<(), StoreError> {
    s.update_tenant(
        "t",
        Box::new(move |t| {
            t.settings.first_sync_review = on;
            Ok(())
        }),
    )
    .await
    .map(drop)
}

fn user(user_name: &str, email: &str) -> Value {
    json!({"schemas": [USER_SCHEMA], "userName": user_name, "active": true,
           "emails": [{"value": email, "type": "work", "primary": true}]})
}

/// Imports the unmanaged app user `ann` (ann@example.com), with the direct role `viewer`.
async fn import_ann(s: &dyn Store) {
    let ann = ImportUser {
        id: "ann".into(),
        doc: user("ann", "ann@example.com"),
        roles: vec!["viewer".into()],
        groups: vec![],
        metadata: json!({}),
    };
    s.import_users("t", vec![ann], at(0)).await.unwrap();
}

async fn login(s: &dyn Store, email: &str) -> Option<crate::app::LoginRecord> {
    s.login_lookup("t", &LoginKey::Email(email.into()))
        .await
        .unwrap()
}

async fn map_editors(s: &dyn Store) {
    let m = RoleMapping {
        id: "rm".into(),
        by: MatchBy::DisplayName,
        value: "Editors".into(),
        roles: vec!["editor".into()],
        created_at: at(0),
        updated_at: at(0),
    };
    s.create_role_mapping("t", &m, at(0)).await.unwrap();
}

/// A SCIM cycle: a new user, the app user ann linked by email, a group holding both.
async fn first_sync(s: &dyn Store) {
    add_user(s, "t", "u1", user("bob", "bob@example.com")).await;
    let linked = s
        .create_resource(
            "t",
            ResourceKind::User,
            new("ignored", user("ann.smith", "ann@example.com")),
            at(1),
        )
        .await
        .unwrap();
    assert!(matches!(linked, CreateOutcome::Matched(_)), "{linked:?}");
    let mut g = new(
        "g1",
        json!({"schemas": [GROUP_SCHEMA], "displayName": "Editors"}),
    );
    g.members = vec!["u1".into(), "ann".into()];
    s.create_resource("t", ResourceKind::Group, g, at(2))
        .await
        .unwrap();
}

/// Held events stay out of the feed and the login decision until approval, then arrive in
/// order after every seq already seen; the summary and its pages describe them.
pub async fn held_events_wait_for_approval_and_follow_every_seen_seq(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "t").await;
    import_ann(s).await;
    map_editors(s).await;
    add_user(s, "t", "u0", user("zed", "zed@example.com")).await;
    set_review(s, true).await.unwrap();
    let seen = events_of(s, "t").await.last().unwrap().seq;

    first_sync(s).await;
    assert!(
        s.list_events("t", seen, &[], 100).await.unwrap().is_empty(),
        "held events must not reach the feed"
    );
    // The login decision takes the directory as it was: bob does not exist yet, ann is still
    // the app's own user with her direct role only.
    assert!(login(s, "bob@example.com").await.is_none());
    let ann = login(s, "ann@example.com").await.unwrap();
    assert!(!ann.managed);
    assert_eq!(ann.roles, vec!["viewer".to_owned()]);

    let st = s.review_status("t", None, 10).await.unwrap().unwrap();
    assert_eq!(st.summary.users_created, 1);
    assert_eq!(st.summary.users_linked_by_email, 1);
    assert_eq!(st.summary.groups_created, 1);
    assert_eq!(st.summary.memberships_added, 2);
    assert_eq!(st.summary.roles_granted.get("editor"), Some(&2));
    assert_eq!(st.users_total, 2);
    let ids: Vec<&str> = st.users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, ["ann", "u1"]);
    assert_eq!(st.users[0].actions, ["linked_by_email"]);
    assert_eq!(st.users[1].actions, ["created"]);
    let page = s.review_status("t", None, 1).await.unwrap().unwrap();
    assert_eq!(page.next_after.as_deref(), Some("ann"));
    let rest = s.review_status("t", Some("ann"), 1).await.unwrap().unwrap();
    assert_eq!(rest.users[0].id, "u1");
    assert!(rest.next_after.is_none());
    // Turning the setting off would release them unseen.
    assert!(matches!(
        set_review(s, false).await,
        Err(StoreError::Conflict(crate::tenants::CONFLICT_REVIEW_HOLDS))
    ));

    // Writes after the cycle began are held too, behind it.
    let done = s.review_approve("t").await.unwrap();
    assert_eq!(done.released, st.held_events);
    let released = s.list_events("t", seen, &[], 100).await.unwrap();
    assert_eq!(released.len() as u64, st.held_events);
    for (i, e) in released.iter().enumerate() {
        assert_eq!(e.seq, seen + 1 + i as i64, "gap-free, after every seen seq");
    }
    let types = types_of(&released);
    assert_eq!(types[0], "user.created");
    assert!(types.contains(&"user.matched"));
    assert!(types.contains(&"user.roles_changed"));
    assert!(s.review_status("t", None, 10).await.unwrap().is_none());
    let t = s.get_tenant("t").await.unwrap().unwrap();
    assert!(!t.settings.first_sync_review);
    let bob = login(s, "bob@example.com").await.unwrap();
    assert_eq!(
        (bob.status, bob.roles),
        (UserStatus::Active, vec!["editor".into()])
    );
    // After approval, writes reach the feed at once.
    add_user(s, "t", "u2", user("cy", "cy@example.com")).await;
    let last = events_of(s, "t").await;
    assert_eq!(last.last().unwrap().event_type, "user.created");
}

/// A discard deletes what the review created, puts back what it changed or deleted, releases
/// nothing and disables SCIM.
pub async fn a_discarded_review_puts_the_directory_back_and_disables_scim(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "t").await;
    import_ann(s).await;
    let u0 = add_user(s, "t", "u0", user("zed", "zed@example.com")).await;
    add_group(s, "t", "g0", "Staff", &["u0"]).await;
    set_review(s, true).await.unwrap();
    let seen = events_of(s, "t").await.last().unwrap().seq;

    first_sync(s).await;
    // zed renamed, given another email and deactivated; Staff deleted.
    let update = ResourceUpdate {
        doc: json!({"schemas": [USER_SCHEMA], "userName": "zed2", "active": false,
                    "emails": [{"value": "other@example.com", "primary": true}]}),
        password_hash: None,
        members: vec![],
        events: vec![],
        guard: None,
    };
    s.update_resource("t", ResourceKind::User, "u0", u0.version, update, at(3))
        .await
        .unwrap();
    s.delete_resource("t", ResourceKind::Group, "g0", Deletion::default(), at(4))
        .await
        .unwrap();

    let done = s.review_discard("t", at(5)).await.unwrap();
    assert_eq!((done.deleted, done.restored), (2, 3), "{done:?}");
    assert!(done.dropped > 0);
    for (kind, id) in [(ResourceKind::User, "u1"), (ResourceKind::Group, "g1")] {
        assert!(s.get_resource("t", kind, id).await.unwrap().is_none());
    }
    let zed = s
        .get_resource("t", ResourceKind::User, "u0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(zed.doc, u0.doc);
    assert!(zed.version > u0.version + 1, "versions are never reused");
    let staff = s
        .get_resource("t", ResourceKind::Group, "g0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(staff.doc["displayName"], "Staff");
    let members = s.list_members("t", "g0", None, 10).await.unwrap();
    assert_eq!(members.len(), 1, "{members:?}");
    let ann = s.get_app_user("t", "ann").await.unwrap().unwrap();
    assert!(!ann.managed);
    assert_eq!(ann.resource.doc["userName"], "ann");
    // The emails are the old ones again: the login finds zed by his, not by the new one.
    assert_eq!(login(s, "zed@example.com").await.unwrap().id, "u0");
    assert!(login(s, "other@example.com").await.is_none());

    let after: Vec<Value> = s
        .list_events("t", seen, &[], 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| json!(e.event_type))
        .collect();
    assert_eq!(
        after,
        vec![json!("scim.disabled")],
        "nothing held is released"
    );
    let t = s.get_tenant("t").await.unwrap().unwrap();
    assert!(!t.settings.scim_enabled && !t.settings.first_sync_review);
    assert!(matches!(
        s.review_approve("t").await,
        Err(StoreError::Invalid(_))
    ));
}

/// A review is kept in the database (another store on it sees it) and holds only its
/// tenant's events.
pub async fn a_review_survives_reopening_and_is_per_tenant(b: &dyn Backend) {
    let db = b.shared().await;
    let s = db.open().await;
    tenant(&*s, "t").await;
    tenant(&*s, "other").await;
    set_review(&*s, true).await.unwrap();
    add_user(&*s, "t", "u1", user("bob", "bob@example.com")).await;
    add_user(&*s, "other", "o1", user("bob", "bob@example.com")).await;
    drop(s);
    let s = db.open().await;
    let st = s.review_status("t", None, 10).await.unwrap().unwrap();
    assert_eq!(st.held_events, 1);
    assert_eq!(types_of(&events_of(&*s, "other").await), ["user.created"]);
    assert!(s.review_status("other", None, 10).await.unwrap().is_none());
    s.review_approve("t").await.unwrap();
    assert_eq!(types_of(&events_of(&*s, "t").await), ["user.created"]);
}
