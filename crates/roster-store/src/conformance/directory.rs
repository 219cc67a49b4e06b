//! Tenants, tokens, resources and membership rows.

use scim_proto::filter::CompareOp;
use scim_proto::schema::{ResourceKind, USER_SCHEMA};
use serde_json::{json, Value};

use super::support::{add_group, add_user, all, at, cmp, filtered, ids, new, tenant, user_doc, T0};
use super::Backend;
use crate::app::{ImportUser, LoginKey, NewAppGroup, UserStatus};
use crate::{
    CreateOutcome, GroupRef, MemberOp, ResourceUpdate, Store, StoreError, Tenant, TenantSettings,
    TokenRecord,
};

/// Tenants are unique by id; tokens are stored, listed newest first, found, touched, revoked
/// (tenant-scoped, live ones only) and rotated.
pub async fn tenants_and_tokens(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "acme").await;
    tenant(s, "beta").await;
    let dup = Tenant {
        id: "acme".into(),
        name: "x".into(),
        idp: "okta".into(),
        created_at: T0,
        settings: TenantSettings::default(),
    };
    assert!(matches!(
        s.create_tenant(&dup).await,
        Err(StoreError::Conflict("tenant"))
    ));
    assert_eq!(
        s.get_tenant("acme").await.unwrap().unwrap().name,
        "Tenant acme"
    );
    assert!(s.get_tenant("nope").await.unwrap().is_none());
    let all: Vec<_> = s
        .list_tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(all, ["acme", "beta"]);

    let tok = |prefix: &str, tenant: &str, created: i64| TokenRecord {
        prefix: prefix.into(),
        tenant_id: tenant.into(),
        hash: format!("hash-{prefix}"),
        created_at: at(created),
        expires_at: at(created + 86_400),
        last_used_at: None,
        revoked_at: None,
    };
    s.insert_token(&tok("a1", "acme", 1)).await.unwrap();
    s.insert_token(&tok("a2", "acme", 2)).await.unwrap();
    s.insert_token(&tok("b1", "beta", 1)).await.unwrap();
    assert!(matches!(
        s.insert_token(&tok("a1", "acme", 3)).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.insert_token(&tok("x1", "nope", 3)).await,
        Err(StoreError::NotFound)
    ));
    let listed: Vec<_> = s
        .list_tokens("acme")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.prefix)
        .collect();
    assert_eq!(listed, ["a2", "a1"], "newest first");
    assert_eq!(
        s.find_token("a1").await.unwrap().unwrap(),
        tok("a1", "acme", 1)
    );

    s.touch_token("a1", at(10)).await.unwrap();
    assert_eq!(
        s.find_token("a1").await.unwrap().unwrap().last_used_at,
        Some(at(10))
    );
    assert!(matches!(
        s.touch_token("zz", at(10)).await,
        Err(StoreError::NotFound)
    ));

    // Revoking is tenant-scoped and only hits live tokens.
    assert!(matches!(
        s.revoke_token("beta", "a1", at(11)).await,
        Err(StoreError::NotFound)
    ));
    s.revoke_token("acme", "a1", at(11)).await.unwrap();
    assert!(matches!(
        s.revoke_token("acme", "a1", at(12)).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        s.find_token("a1").await.unwrap().unwrap().revoked_at,
        Some(at(11))
    );

    s.rotate_tokens(&tok("a3", "acme", 20), at(20))
        .await
        .unwrap();
    let toks = s.list_tokens("acme").await.unwrap();
    assert_eq!(toks.len(), 3);
    for t in &toks {
        match t.prefix.as_str() {
            "a3" => assert_eq!(t.revoked_at, None),
            "a2" => assert_eq!(t.revoked_at, Some(at(20))),
            _ => assert_eq!(
                t.revoked_at,
                Some(at(11)),
                "already revoked stays as it was"
            ),
        }
    }
    assert_eq!(s.find_token("b1").await.unwrap().unwrap().revoked_at, None);
}

/// The email rows follow the document through replaces: kept when the emails stay the same
/// (and the rest changes), replaced when they change, in value, type or primary flag.
pub async fn email_rows_follow_replaces(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "t").await;
    let doc = |name: &str, email: &str, primary: bool| {
        json!({"schemas": [USER_SCHEMA], "userName": "u", "displayName": name,
               "emails": [{"value": email, "type": "work", "primary": primary}]})
    };
    s.create_resource(
        "t",
        ResourceKind::User,
        new("u1", doc("A", "a@x.example", true)),
        at(1),
    )
    .await
    .unwrap();
    let upd = |doc: Value| ResourceUpdate {
        doc,
        password_hash: None,
        members: vec![],
        events: vec![],
        guard: None,
    };
    let found = |f| async move { filtered(s, "t", ResourceKind::User, f).await.len() };
    let by = |v: &str| cmp("emails.value", CompareOp::Eq, v);
    s.update_resource(
        "t",
        ResourceKind::User,
        "u1",
        1,
        upd(doc("B", "a@x.example", true)),
        at(2),
    )
    .await
    .unwrap();
    assert_eq!(
        found(by("a@x.example")).await,
        1,
        "unchanged emails stay findable"
    );
    s.update_resource(
        "t",
        ResourceKind::User,
        "u1",
        2,
        upd(doc("B", "b@x.example", true)),
        at(3),
    )
    .await
    .unwrap();
    assert_eq!(
        found(by("a@x.example")).await,
        0,
        "a replaced email is gone"
    );
    assert_eq!(found(by("b@x.example")).await, 1, "the new email is found");
    s.update_resource(
        "t",
        ResourceKind::User,
        "u1",
        3,
        upd(doc("B", "b@x.example", false)),
        at(4),
    )
    .await
    .unwrap();
    let primary = cmp("emails.primary", CompareOp::Eq, true);
    assert_eq!(found(primary).await, 0, "a changed primary flag is stored");
}

/// Create, read, replace (with its version precondition) and delete a User; what the stored
/// document never holds; the data survives closing and reopening the database.
pub async fn crud_round_trip_survives_reopening(b: &dyn Backend) {
    let db = b.shared().await;
    let s = db.open().await;
    tenant(&*s, "t").await;
    let doc = json!({
        "schemas": [USER_SCHEMA],
        "userName": "Alice",
        "emails": [{"value": "Alice@Example.com", "type": "work", "primary": true}],
        // Never stored, whatever the caller passes.
        "id": "bogus",
        "meta": {"version": "x"},
        "password": "secret",
    });
    let mut n = new("u1", doc);
    n.password_hash = Some("argon".into());
    let created = match s
        .create_resource("t", ResourceKind::User, n, at(1))
        .await
        .unwrap()
    {
        CreateOutcome::Created(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(created.version, 1);
    assert!(created.doc.get("id").is_none() && created.doc.get("password").is_none());
    let got = s
        .get_resource("t", ResourceKind::User, "u1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, created);
    assert!(s
        .get_resource("t", ResourceKind::Group, "u1")
        .await
        .unwrap()
        .is_none());

    let upd = |doc: Value| ResourceUpdate {
        doc,
        password_hash: None,
        members: vec![],
        events: vec![],
        guard: None,
    };
    let updated = s
        .update_resource(
            "t",
            ResourceKind::User,
            "u1",
            1,
            upd(user_doc("alice2")),
            at(2),
        )
        .await
        .unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.created, at(1));
    assert_eq!(updated.last_modified, at(2));
    assert_eq!(
        s.get_resource("t", ResourceKind::User, "u1")
            .await
            .unwrap()
            .unwrap(),
        updated
    );
    assert!(matches!(
        s.update_resource("t", ResourceKind::User, "u1", 1, upd(user_doc("x")), at(3))
            .await,
        Err(StoreError::Stale)
    ));
    assert!(matches!(
        s.update_resource(
            "t",
            ResourceKind::User,
            "nope",
            1,
            upd(user_doc("x")),
            at(3)
        )
        .await,
        Err(StoreError::NotFound)
    ));
    // The old email is gone with the replaced document.
    let by_mail = filtered(
        &*s,
        "t",
        ResourceKind::User,
        cmp("emails.value", CompareOp::Eq, "alice@example.com"),
    )
    .await;
    assert!(by_mail.is_empty());

    // Reopening the database sees the same data (opening an existing schema is idempotent).
    drop(s);
    let s = db.open().await;
    assert_eq!(
        s.get_resource("t", ResourceKind::User, "u1")
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    s.delete_resource(
        "t",
        ResourceKind::User,
        "u1",
        crate::Deletion::default(),
        at(4),
    )
    .await
    .unwrap();
    assert!(s
        .get_resource("t", ResourceKind::User, "u1")
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        s.delete_resource(
            "t",
            ResourceKind::User,
            "u1",
            crate::Deletion::default(),
            at(5)
        )
        .await,
        Err(StoreError::NotFound)
    ));
}

/// Indexed values (userName, externalId, displayName, emails) longer than an index key may be
/// are refused before anything is written, the same on every backend.
pub async fn indexed_values_have_a_bound(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "t").await;
    let max = crate::domain::MAX_INDEXED_BYTES;
    let mut doc = user_doc("alice");
    doc["displayName"] = json!("é".repeat(max / 2 + 1));
    assert!(matches!(
        s.create_resource("t", ResourceKind::User, new("u1", doc.clone()), at(1)).await,
        Err(StoreError::Invalid(d)) if d.contains("displayName")
    ));
    doc["displayName"] = json!("x".repeat(max));
    add_user(s, "t", "u1", doc.clone()).await;
    doc["externalId"] = json!("e".repeat(max + 1));
    let update = ResourceUpdate {
        doc,
        password_hash: None,
        members: vec![],
        events: vec![],
        guard: None,
    };
    assert!(matches!(
        s.update_resource("t", ResourceKind::User, "u1", 1, update, at(2)).await,
        Err(StoreError::Invalid(d)) if d.contains("externalId")
    ));
    let stored = s
        .get_resource("t", ResourceKind::User, "u1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.version, 1, "nothing was written");
}

/// userName is unique per tenant, case-insensitively, on create and on replace; ids are
/// unique; changing one's own userName's case is no conflict.
pub async fn user_name_is_unique_case_insensitively(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "t").await;
    add_user(s, "t", "u1", user_doc("Alice")).await;
    add_user(s, "t", "u2", user_doc("bob")).await;
    assert!(matches!(
        s.create_resource("t", ResourceKind::User, new("u3", user_doc("ALICE")), at(1))
            .await,
        Err(StoreError::Conflict("userName"))
    ));
    assert!(matches!(
        s.create_resource("t", ResourceKind::User, new("u1", user_doc("carol")), at(1))
            .await,
        Err(StoreError::Conflict("id"))
    ));
    let rename = ResourceUpdate {
        doc: user_doc("aLiCe"),
        password_hash: None,
        members: vec![],
        events: vec![],
        guard: None,
    };
    assert!(matches!(
        s.update_resource("t", ResourceKind::User, "u2", 1, rename, at(1))
            .await,
        Err(StoreError::Conflict("userName"))
    ));
    // Changing one's own userName's case is fine.
    let recase = ResourceUpdate {
        doc: user_doc("ALICE"),
        password_hash: None,
        members: vec![],
        events: vec![],
        guard: None,
    };
    s.update_resource("t", ResourceKind::User, "u1", 1, recase, at(1))
        .await
        .unwrap();
}

/// A deleted User is deprovisioned: invisible to SCIM, out of its groups (whose version
/// changes), not addable as a member; a create with its userName restores it with its id,
/// `created` and the new document.
pub async fn deprovision_then_restore(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "t").await;
    add_user(s, "t", "u1", user_doc("Alice")).await;
    add_user(s, "t", "u2", user_doc("bob")).await;
    add_group(s, "t", "g1", "Admins", &["u1", "u2"]).await;

    s.delete_resource(
        "t",
        ResourceKind::User,
        "u1",
        crate::Deletion::default(),
        at(5),
    )
    .await
    .unwrap();
    assert!(s
        .get_resource("t", ResourceKind::User, "u1")
        .await
        .unwrap()
        .is_none());
    assert_eq!(ids(s, "t", ResourceKind::User, &all(None)).await, ["u2"]);
    let g = s
        .get_resource("t", ResourceKind::Group, "g1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.version, 2, "the group lost a member");
    assert_eq!(g.last_modified, at(5));
    let members: Vec<_> = s
        .list_members("t", "g1", None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(members, ["u2"]);
    // Deprovisioned users cannot be added as members.
    let add = ResourceUpdate {
        doc: json!({"displayName": "Admins"}),
        password_hash: None,
        members: vec![MemberOp::Add(vec!["u1".into()])],
        events: vec![],
        guard: None,
    };
    assert!(matches!(
        s.update_resource("t", ResourceKind::Group, "g1", 2, add, at(6))
            .await,
        Err(StoreError::Invalid(_))
    ));
    // Filters never see it.
    assert!(filtered(
        s,
        "t",
        ResourceKind::User,
        cmp("userName", CompareOp::Eq, "alice")
    )
    .await
    .is_empty());

    let mut again = new("u-new", json!({"userName": "ALICE", "displayName": "Back"}));
    again.password_hash = Some("h2".into());
    let restored = match s
        .create_resource("t", ResourceKind::User, again, at(9))
        .await
        .unwrap()
    {
        CreateOutcome::Restored(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(restored.id, "u1");
    assert_eq!(
        restored.version, 3,
        "created 1, deprovisioned 2, restored 3"
    );
    assert_eq!(restored.created, at(0));
    assert_eq!(restored.last_modified, at(9));
    assert_eq!(
        restored.doc,
        json!({"userName": "ALICE", "displayName": "Back"})
    );
    assert_eq!(
        s.get_resource("t", ResourceKind::User, "u1")
            .await
            .unwrap()
            .unwrap(),
        restored
    );
    assert!(s
        .get_resource("t", ResourceKind::User, "u-new")
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        s.create_resource(
            "t",
            ResourceKind::User,
            new("u9", user_doc("alice")),
            at(10)
        )
        .await,
        Err(StoreError::Conflict("userName"))
    ));
}

/// A deprovisioned user's record is kept inactive: its document says `active: false` and the
/// app sees it deprovisioned, also when signing in.
pub async fn deprovisioned_user_is_inactive(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "t").await;
    add_user(s, "t", "u1", user_doc("a")).await;
    s.delete_resource(
        "t",
        ResourceKind::User,
        "u1",
        crate::Deletion::default(),
        at(1),
    )
    .await
    .unwrap();
    let u = s.get_app_user("t", "u1").await.unwrap().unwrap();
    assert_eq!(u.resource.doc["active"], false);
    assert_eq!(u.status, UserStatus::Deprovisioned);
    assert!(u.roles.is_empty());
    let login = s
        .login_lookup("t", &LoginKey::Email("a".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(login.status, UserStatus::Deprovisioned);
}

/// Member ids must be live Users of the tenant (`Invalid` otherwise, nothing written);
/// add/remove/remove-all apply in order; keyset listing of members; the groups of a user;
/// deleting a group removes its memberships; Users have no members.
#[allow(clippy::too_many_lines)] // One story, step by step.
pub async fn membership_operations(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "t").await;
    tenant(s, "other").await;
    for i in 0..5 {
        add_user(s, "t", &format!("u{i}"), user_doc(&format!("user{i}"))).await;
    }
    add_user(s, "other", "x1", user_doc("x")).await;
    add_group(s, "other", "gx", "Other", &[]).await;
    // Unknown, other-tenant and Group ids are not members.
    for bad in ["nope", "x1", "gx"] {
        let mut n = new("g1", json!({"displayName": "G"}));
        n.members = vec!["u0".into(), bad.into()];
        match s.create_resource("t", ResourceKind::Group, n, at(0)).await {
            Err(StoreError::Invalid(msg)) => assert_eq!(
                msg,
                format!("member \"{bad}\" is not a User of this tenant")
            ),
            other => panic!("{other:?}"),
        }
    }
    assert!(
        s.get_resource("t", ResourceKind::Group, "g1")
            .await
            .unwrap()
            .is_none(),
        "nothing written"
    );
    add_group(s, "t", "g1", "G", &["u0", "u1", "u1"]).await;
    add_group(s, "t", "g2", "H", &["u1"]).await;

    let members = || async move {
        s.list_members("t", "g1", None, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(members().await, ["u0", "u1"]);
    let upd = |ops: Vec<MemberOp>| ResourceUpdate {
        doc: json!({"displayName": "G"}),
        password_hash: None,
        members: ops,
        events: vec![],
        guard: None,
    };
    let g = s
        .update_resource(
            "t",
            ResourceKind::Group,
            "g1",
            1,
            upd(vec![
                MemberOp::Add(vec!["u2".into(), "u3".into(), "u0".into()]),
                MemberOp::Remove(vec!["u1".into(), "absent".into()]),
            ]),
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(g.version, 2);
    assert_eq!(members().await, ["u0", "u2", "u3"]);
    // A bad id fails the whole update: no doc change, no member change.
    assert!(matches!(
        s.update_resource(
            "t",
            ResourceKind::Group,
            "g1",
            2,
            upd(vec![MemberOp::RemoveAll, MemberOp::Add(vec!["x1".into()])]),
            at(2)
        )
        .await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(members().await, ["u0", "u2", "u3"]);
    assert_eq!(
        s.get_resource("t", ResourceKind::Group, "g1")
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    // Keyset listing.
    let page: Vec<_> = s
        .list_members("t", "g1", Some("u0"), 1)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(page, ["u2"]);
    assert!(matches!(
        s.list_members("t", "nope", None, 1).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.list_members("other", "g1", None, 1).await,
        Err(StoreError::NotFound)
    ));

    let groups: Vec<_> = s.groups_of_user("t", "u0").await.unwrap();
    assert_eq!(
        groups,
        [GroupRef {
            id: "g1".into(),
            display_name: "G".into()
        }]
    );
    let groups = s.groups_of_user("t", "u1").await.unwrap();
    assert_eq!(
        groups,
        [GroupRef {
            id: "g2".into(),
            display_name: "H".into()
        }]
    );

    s.update_resource(
        "t",
        ResourceKind::Group,
        "g1",
        2,
        upd(vec![MemberOp::RemoveAll]),
        at(3),
    )
    .await
    .unwrap();
    assert!(members().await.is_empty());

    // Deleting a group removes its memberships: no user belongs to any group any more.
    s.delete_resource(
        "t",
        ResourceKind::Group,
        "g2",
        crate::Deletion::default(),
        at(4),
    )
    .await
    .unwrap();
    assert!(s.groups_of_user("t", "u1").await.unwrap().is_empty());
    for i in 0..5 {
        let u = s
            .get_app_user("t", &format!("u{i}"))
            .await
            .unwrap()
            .unwrap();
        assert!(u.groups.is_empty(), "u{i} is in {:?}", u.groups);
    }
    assert!(s
        .snapshot("t")
        .await
        .unwrap()
        .groups
        .iter()
        .all(|(_, m)| m.is_empty()));
    // Users have no members.
    let mut n = new("u9", user_doc("nine"));
    n.members = vec!["u0".into()];
    assert!(matches!(
        s.create_resource("t", ResourceKind::User, n, at(0)).await,
        Err(StoreError::Invalid(_))
    ));
}

/// Every read, filter, membership and delete is scoped to its tenant.
pub async fn tenants_are_isolated(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "a").await;
    tenant(s, "b").await;
    add_user(
        s,
        "a",
        "u1",
        json!({"userName": "same", "emails": [{"value": "x@y"}]}),
    )
    .await;
    add_user(s, "b", "u1", json!({"userName": "same"})).await;
    add_group(s, "a", "g", "G", &["u1"]).await;
    add_user(s, "a", "only-a", user_doc("only")).await;

    assert!(s
        .get_resource("b", ResourceKind::User, "only-a")
        .await
        .unwrap()
        .is_none());
    assert_eq!(ids(s, "b", ResourceKind::User, &all(None)).await, ["u1"]);
    assert!(ids(s, "b", ResourceKind::Group, &all(None))
        .await
        .is_empty());
    assert!(filtered(
        s,
        "b",
        ResourceKind::User,
        cmp("emails.value", CompareOp::Eq, "x@y")
    )
    .await
    .is_empty());
    assert!(filtered(
        s,
        "b",
        ResourceKind::User,
        cmp("groups.value", CompareOp::Eq, "g")
    )
    .await
    .is_empty());
    assert!(filtered(
        s,
        "b",
        ResourceKind::User,
        cmp("userName", CompareOp::Eq, "only")
    )
    .await
    .is_empty());
    assert!(s.groups_of_user("b", "u1").await.unwrap().is_empty());
    assert!(matches!(
        s.list_members("b", "g", None, 10).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.delete_resource(
            "b",
            ResourceKind::User,
            "only-a",
            crate::Deletion::default(),
            at(1)
        )
        .await,
        Err(StoreError::NotFound)
    ));
    let mut g = new("gb", json!({"displayName": "B"}));
    g.members = vec!["only-a".into()];
    assert!(matches!(
        s.create_resource("b", ResourceKind::Group, g, at(1)).await,
        Err(StoreError::Invalid(_))
    ));
    s.delete_resource(
        "b",
        ResourceKind::User,
        "u1",
        crate::Deletion::default(),
        at(1),
    )
    .await
    .unwrap();
    assert!(s
        .get_resource("a", ResourceKind::User, "u1")
        .await
        .unwrap()
        .is_some());
}

/// However a user leaves — SCIM `DELETE` (deprovisioned), the operator's erase, the app API's
/// erase of an unmanaged user — each of its groups, managed or not, announces the loss first
/// (in the groups' creation order) and gets a new version and `lastModified`; then the user's
/// own event. Groups it was not in are untouched.
#[allow(clippy::too_many_lines)] // Three exits, the same checks.
pub async fn a_leaving_user_leaves_its_groups_first(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "t").await;
    for u in ["dep", "era", "stay"] {
        add_user(s, "t", u, user_doc(u)).await;
    }
    // An unmanaged user, for the app API's erase.
    s.import_users(
        "t",
        vec![ImportUser {
            id: "app".into(),
            doc: user_doc("app"),
            roles: vec![],
            groups: vec![],
            metadata: json!({}),
        }],
        at(0),
    )
    .await
    .unwrap();
    add_group(s, "t", "g1", "One", &["dep", "era", "stay"]).await;
    add_group(s, "t", "g2", "Two", &["stay"]).await;
    add_group(s, "t", "g3", "Three", &["era", "dep"]).await;
    s.create_app_group(
        "t",
        NewAppGroup {
            id: "ag".into(),
            doc: json!({"displayName": "App"}),
            members: vec!["dep".into(), "app".into(), "era".into()],
            metadata: json!({}),
        },
        at(0),
    )
    .await
    .unwrap();
    let version = |id: &'static str| async move {
        let g = s.get_app_group("t", id).await.unwrap().unwrap();
        (g.resource.version, g.resource.last_modified)
    };
    let exits: [(&str, i64, &str, Value); 3] = [
        (
            "dep",
            10,
            "user.deprovisioned",
            json!({"user": {"id": "dep", "userName": "dep"}}),
        ),
        (
            "era",
            20,
            "user.erased",
            json!({"user": {"id": "era", "userName": "era"}}),
        ),
        (
            "app",
            30,
            "user.erased",
            json!({"user": {"id": "app", "userName": "app"}, "managed": false}),
        ),
    ];
    for (user, secs, user_event, user_data) in exits {
        let groups_before: Vec<String> = s
            .get_app_user("t", user)
            .await
            .unwrap()
            .unwrap()
            .groups
            .into_iter()
            .map(|g| g.id)
            .collect();
        let mut before = Vec::new();
        for g in ["g1", "g2", "g3", "ag"] {
            before.push((g, version(g).await));
        }
        let seq = s.last_seq("t").await.unwrap();
        match user {
            "dep" => {
                s.delete_resource(
                    "t",
                    ResourceKind::User,
                    user,
                    crate::Deletion::default(),
                    at(secs),
                )
                .await
            }
            "era" => s.erase_user("t", user, at(secs)).await,
            _ => s.delete_app_user("t", user, at(secs)).await,
        }
        .unwrap();
        let events = s.list_events("t", seq, &[], 100).await.unwrap();
        let want: Vec<String> = groups_before
            .iter()
            .map(|_| "group.members_removed".to_owned())
            .chain([user_event.to_owned()])
            .collect();
        assert_eq!(
            events.iter().map(|e| &e.event_type).collect::<Vec<_>>(),
            want.iter().collect::<Vec<_>>(),
            "{user}"
        );
        for (e, g) in events.iter().zip(&groups_before) {
            assert_eq!(e.data["group"]["id"], json!(g), "{user}");
            assert_eq!(e.data["members"], json!([user]), "{user}");
        }
        assert_eq!(events.last().unwrap().data, user_data, "{user}");
        for (g, (v, lm)) in before {
            let (v2, lm2) = version(g).await;
            if groups_before.iter().any(|x| x == g) {
                assert_eq!((v2, lm2), (v + 1, at(secs)), "{user} left {g}");
                let members = s
                    .list_app_group_members("t", g, None, 100)
                    .await
                    .unwrap()
                    .items;
                assert!(members.iter().all(|m| m.id != user), "{user} still in {g}");
            } else {
                assert_eq!((v2, lm2), (v, lm), "{user} was not in {g}");
            }
        }
    }
    // The groups, in creation order, of the users as they were.
    let seen: Vec<(String, String)> = events_by_type(s, "group.members_removed").await;
    assert_eq!(
        seen,
        [
            ("g1", "dep"),
            ("g3", "dep"),
            ("ag", "dep"),
            ("g1", "era"),
            ("g3", "era"),
            ("ag", "era"),
            ("ag", "app"),
        ]
        .map(|(g, u)| (g.to_owned(), u.to_owned()))
    );
    // The deprovisioned user is kept; the erased ones are gone.
    assert_eq!(
        s.get_app_user("t", "dep").await.unwrap().unwrap().status,
        UserStatus::Deprovisioned
    );
    assert!(s.get_app_user("t", "era").await.unwrap().is_none());
    assert!(s.get_app_user("t", "app").await.unwrap().is_none());
    let stay = s.get_app_user("t", "stay").await.unwrap().unwrap();
    assert_eq!(
        stay.groups
            .iter()
            .map(|g| g.id.as_str())
            .collect::<Vec<_>>(),
        ["g1", "g2"]
    );
    // An erased userName is free for a new record; a deprovisioned one restores.
    let out = s
        .create_resource(
            "t",
            ResourceKind::User,
            new("era2", user_doc("era")),
            at(40),
        )
        .await
        .unwrap();
    assert!(matches!(out, CreateOutcome::Created(_)));
    let out = s
        .create_resource(
            "t",
            ResourceKind::User,
            new("dep2", user_doc("dep")),
            at(41),
        )
        .await
        .unwrap();
    assert!(matches!(out, CreateOutcome::Restored(r) if r.id == "dep"));
    // A managed user is not the app API's to erase.
    assert!(matches!(
        s.delete_app_user("t", "stay", at(42)).await,
        Err(StoreError::Invalid(_))
    ));
}

/// `(group id, member id)` of every event of `event_type`, in seq order.
async fn events_by_type(s: &dyn Store, event_type: &str) -> Vec<(String, String)> {
    s.list_events("t", 0, &[event_type.to_owned()], 1000)
        .await
        .unwrap()
        .iter()
        .flat_map(|e| {
            let g = e.data["group"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            e.data["members"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |m| (g.clone(), m.as_str().unwrap_or_default().to_owned()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Concurrent writes and reads through one store, then a second store on the same database
/// (the CLI beside the server) sees every write.
pub async fn writers_and_readers_share_a_database(b: &dyn Backend) {
    let db = b.shared().await;
    let s = db.open().await;
    tenant(&*s, "t").await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.create_resource(
                "t",
                ResourceKind::User,
                new(&format!("u{i}"), user_doc(&format!("n{i}"))),
                at(i),
            )
            .await
            .unwrap();
            s.list_resources("t", ResourceKind::User, &all(None))
                .await
                .unwrap()
                .total
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap() >= 1);
    }
    let other = db.open().await;
    assert_eq!(
        other
            .list_resources("t", ResourceKind::User, &all(None))
            .await
            .unwrap()
            .total,
        20
    );
}

/// A data-protection erase: refused while the user is live; afterwards its record is gone
/// (the same userName makes a new user), no event payload or provisioning-log row holds its
/// personal data, ids stay, other users' rows are untouched, and `user.erased` says so.
pub async fn a_deprovisioned_users_personal_data_is_erased(b: &dyn Backend) {
    use crate::ops::{LogQuery, ProvisioningEntry};
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "t").await;
    let doc = json!({
        "schemas": [USER_SCHEMA], "userName": "bjensen@example.com", "active": true,
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "Barbara.Jensen@Example.com", "primary": true}],
    });
    add_user(s, "t", "u1", doc).await;
    add_user(s, "t", "u2", user_doc("other@example.com")).await;
    add_group(s, "t", "g1", "Admins", &["u1", "u2"]).await;
    let row = |i: i64, id: Option<&str>, name: &str, body: Value, detail: Option<&str>| {
        ProvisioningEntry {
            id: 0,
            at: at(i),
            tenant_id: "t".into(),
            request_id: format!("r{i}"),
            idp: None,
            user_agent: None,
            method: "POST".into(),
            path: "/scim/v2/t/Users".into(),
            resource_type: Some("User".into()),
            resource_id: id.map(str::to_owned),
            name: Some(name.into()),
            status: if detail.is_some() { 409 } else { 201 },
            scim_type: None,
            detail: detail.map(str::to_owned),
            hint: None,
            changed: vec![],
            duration_ms: 1,
            body: Some(body),
            source_addr: None,
            token_prefix: None,
        }
    };
    s.append_provisioning(&[
        row(
            1,
            Some("u1"),
            "bjensen@example.com",
            json!({"userName": "bjensen@example.com"}),
            None,
        ),
        row(
            2,
            None,
            "BJensen@example.com",
            json!({"userName": "BJensen@example.com"}),
            Some("userName \"BJensen@example.com\" is already taken"),
        ),
        row(
            3,
            Some("g1"),
            "Admins",
            json!({"members": [{"value": "u1", "display": "barbara.jensen@example.com"}]}),
            None,
        ),
        row(
            4,
            Some("u2"),
            "other@example.com",
            json!({"userName": "other@example.com"}),
            None,
        ),
    ])
    .await
    .unwrap();

    assert!(
        matches!(
            s.erase_personal_data("t", "u1", at(5)).await,
            Err(StoreError::Invalid(_))
        ),
        "a live user is refused"
    );
    s.delete_resource(
        "t",
        ResourceKind::User,
        "u1",
        crate::Deletion::default(),
        at(6),
    )
    .await
    .unwrap();
    let erased = s.erase_personal_data("t", "u1", at(7)).await.unwrap();
    assert!(erased.record);
    assert_eq!(erased.log_rows, 3, "{erased:?}");
    assert!(
        erased.events >= 2,
        "user.created and user.deprovisioned: {erased:?}"
    );

    let personal = |text: &str| {
        let t = text.to_lowercase();
        t.contains("bjensen") || t.contains("barbara") || t.contains("jensen")
    };
    let events = s.list_events("t", 0, &[], 1000).await.unwrap();
    for e in &events {
        assert!(
            !personal(&e.data.to_string()),
            "{} {}",
            e.event_type,
            e.data
        );
    }
    let last = events.last().unwrap();
    assert_eq!(last.event_type, "user.erased");
    assert_eq!(
        last.data,
        json!({"user": {"id": "u1"}, "personal_data": true})
    );
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "user.created" && e.data["user"]["id"] == "u1"),
        "ids stay"
    );
    let log = s
        .list_provisioning(
            "t",
            &LogQuery {
                limit: 10,
                ..LogQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(log.len(), 4);
    for r in &log {
        let text = format!("{:?} {:?} {:?}", r.name, r.body, r.detail);
        assert!(!personal(&text), "{text}");
    }
    let other = log
        .iter()
        .find(|r| r.resource_id.as_deref() == Some("u2"))
        .unwrap();
    assert_eq!(
        other.name.as_deref(),
        Some("other@example.com"),
        "others untouched"
    );
    assert!(other.body.is_some());
    assert_eq!(
        log.iter()
            .find(|r| r.request_id == "r1")
            .unwrap()
            .resource_id
            .as_deref(),
        Some("u1")
    );

    // Nothing left to erase; the same userName is a new user, not a restore.
    assert!(matches!(
        s.erase_personal_data("t", "u1", at(8)).await,
        Err(StoreError::NotFound)
    ));
    let again = s
        .create_resource(
            "t",
            ResourceKind::User,
            new("u3", user_doc("bjensen@example.com")),
            at(9),
        )
        .await
        .unwrap();
    assert!(matches!(again, CreateOutcome::Created(r) if r.id == "u3"));
    assert!(matches!(
        s.erase_personal_data("t", "nobody", at(9)).await,
        Err(StoreError::NotFound)
    ));
}
