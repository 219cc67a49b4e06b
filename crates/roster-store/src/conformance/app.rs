//! The app's side: the deprovisioning guard over time, the login lookup, effective roles, the
//! app's user search and member counts.

use scim_proto::schema::{ResourceKind, GROUP_SCHEMA, USER_SCHEMA};
use serde_json::json;

use super::support::{at, tenant_with};
use super::Backend;
use crate::app::{
    AppUserQuery, GuardDecision, GuardOperation, GuardState, GuardSubject, GuardVerdict, LoginKey,
    MatchBy, RoleMapping, UserStatus,
};
use crate::{
    CreateOutcome, DeprovisionGuard, MemberOp, NewResource, Store, StoreError, StoredResource,
    TenantSettings,
};

async fn user(s: &dyn Store, name: &str, secs: i64) -> StoredResource {
    let new = NewResource {
        id: name.into(),
        doc: json!({"schemas": [USER_SCHEMA], "userName": name, "active": true}),
        password_hash: None,
        members: vec![],
        events: vec![],
    };
    match s
        .create_resource("t", ResourceKind::User, new, at(secs))
        .await
        .unwrap()
    {
        CreateOutcome::Created(r) => r,
        other => panic!("{other:?}"),
    }
}

fn subject(u: &StoredResource) -> GuardSubject {
    GuardSubject {
        user_id: u.id.clone(),
        user_name: u.id.clone(),
        created: u.created,
        operation: GuardOperation::Deactivate,
    }
}

async fn admit(s: &dyn Store, u: &StoredResource, secs: i64) -> bool {
    matches!(
        s.guard_admit("t", &subject(u), at(secs)).await.unwrap(),
        GuardVerdict::Allowed
    )
}

fn guard(max_percent: u32, min_count: u32, window_minutes: u32) -> TenantSettings {
    TenantSettings {
        deprovision_guard: DeprovisionGuard {
            enabled: true,
            max_percent,
            min_count,
            window_minutes,
        },
        ..TenantSettings::default()
    }
}

/// The guard's window slides by the minute and counts each user once.
pub async fn the_window_slides_and_counts_each_user_once(b: &dyn Backend) {
    // 20 users; more than 10% (2) and more than 2 trips.
    let s = b.fresh().await;
    let s = &*s;
    tenant_with(s, "t", guard(10, 2, 15)).await;
    let mut users = Vec::new();
    for i in 0..20 {
        users.push(user(s, &format!("u{i}"), 0).await);
    }
    assert!(admit(s, &users[0], 100).await);
    assert!(
        admit(s, &users[0], 110).await,
        "the same user again is not counted"
    );
    assert!(admit(s, &users[1], 200).await);
    let st = s.guard_status("t", at(200)).await.unwrap();
    assert_eq!((st.window_count, st.active_users, st.threshold), (2, 20, 2));
    // 16 minutes after the first, its count left the window.
    assert!(admit(s, &users[2], 100 + 16 * 60).await);
    assert_eq!(
        s.guard_status("t", at(100 + 16 * 60))
            .await
            .unwrap()
            .window_count,
        2
    );
    assert!(
        !admit(s, &users[3], 100 + 16 * 60 + 1).await,
        "the third in the window trips"
    );
}

/// An update that deactivates carries its admission (`ResourceUpdate::guard`): admitted, it is
/// counted with the update in one transaction; a stale update leaves no count behind; refused,
/// the update is not made and the refusal is recorded.
pub async fn an_update_carries_its_admission(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant_with(s, "t", guard(10, 2, 15)).await;
    let mut users = Vec::new();
    for i in 0..20 {
        users.push(user(s, &format!("u{i}"), 0).await);
    }
    let off = |u: &StoredResource| crate::ResourceUpdate {
        doc: json!({"schemas": [USER_SCHEMA], "userName": u.id, "active": false}),
        password_hash: None,
        members: vec![],
        events: vec![],
        guard: Some(subject(u)),
    };
    // A stale version: nothing is written, the guard's count included.
    let stale = s
        .update_resource("t", ResourceKind::User, "u0", 99, off(&users[0]), at(60))
        .await;
    assert!(matches!(stale, Err(StoreError::Stale)), "{stale:?}");
    assert_eq!(s.guard_status("t", at(60)).await.unwrap().window_count, 0);
    for u in &users[..2] {
        s.update_resource("t", ResourceKind::User, &u.id, u.version, off(u), at(60))
            .await
            .unwrap();
    }
    assert_eq!(s.guard_status("t", at(60)).await.unwrap().window_count, 2);
    // The third trips the guard: refused, not deactivated, held.
    let refused = s
        .update_resource(
            "t",
            ResourceKind::User,
            "u2",
            users[2].version,
            off(&users[2]),
            at(60),
        )
        .await;
    match refused {
        Err(StoreError::GuardRefused(st)) => assert_eq!(st.state, GuardState::Tripped),
        other => panic!("{other:?}"),
    }
    let u2 = s
        .get_resource("t", ResourceKind::User, "u2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u2.doc["active"], true, "a refused update is not made");
    let st = s.guard_status("t", at(60)).await.unwrap();
    assert_eq!((st.state, st.held_count), (GuardState::Tripped, 1));
}

/// A SCIM delete carries its admission too: a stale version writes nothing (no count), a
/// refused delete deletes nothing and is held as a `delete`, and with `deprovision_on_delete =
/// erase` an admitted delete erases the user.
pub async fn a_delete_carries_its_admission(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    let mut settings = guard(10, 2, 15);
    settings.deprovision_on_delete = crate::DeprovisionMode::Erase;
    tenant_with(s, "t", settings).await;
    let mut users = Vec::new();
    for i in 0..20 {
        users.push(user(s, &format!("u{i}"), 0).await);
    }
    let del = |u: &StoredResource, version: i64| crate::Deletion {
        expected_version: Some(version),
        guard: Some(GuardSubject {
            operation: GuardOperation::Delete,
            ..subject(u)
        }),
    };
    let stale = s
        .delete_resource("t", ResourceKind::User, "u0", del(&users[0], 99), at(60))
        .await;
    assert!(matches!(stale, Err(StoreError::Stale)), "{stale:?}");
    assert_eq!(s.guard_status("t", at(60)).await.unwrap().window_count, 0);
    for u in &users[..2] {
        s.delete_resource("t", ResourceKind::User, &u.id, del(u, u.version), at(60))
            .await
            .unwrap();
    }
    assert_eq!(s.guard_status("t", at(60)).await.unwrap().window_count, 2);
    let erased = s.get_app_user("t", "u0").await.unwrap();
    assert!(erased.is_none(), "erase mode erases: {erased:?}");
    let refused = s
        .delete_resource(
            "t",
            ResourceKind::User,
            "u2",
            del(&users[2], users[2].version),
            at(60),
        )
        .await;
    match refused {
        Err(StoreError::GuardRefused(st)) => assert_eq!(st.state, GuardState::Tripped),
        other => panic!("{other:?}"),
    }
    assert!(
        s.get_resource("t", ResourceKind::User, "u2")
            .await
            .unwrap()
            .is_some(),
        "a refused delete is not made"
    );
    let st = s.guard_status("t", at(60)).await.unwrap();
    assert_eq!((st.state, st.held_count), (GuardState::Tripped, 1));
    assert_eq!(st.held[0].operation, "delete");
}

/// A tripped guard holds operations until an operator decides; a confirmed or rejected batch ends
/// after a quiet window, and the guard counts afresh.
pub async fn tripped_waits_for_an_operator_and_decisions_end_after_a_quiet_window(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant_with(s, "t", guard(10, 2, 15)).await;
    let mut users = Vec::new();
    for i in 0..20 {
        users.push(user(s, &format!("u{i}"), 0).await);
    }
    assert!(admit(s, &users[0], 60).await);
    assert!(admit(s, &users[1], 60).await);
    assert!(!admit(s, &users[2], 60).await);
    // Tripped does not expire by itself.
    assert!(!admit(s, &users[3], 60 + 86_400).await);
    let st = s.guard_status("t", at(60 + 86_400)).await.unwrap();
    assert_eq!(st.state, GuardState::Tripped);
    assert_eq!(st.held_count, 2);
    assert_eq!(st.trips, 1);
    let types = ["tenant.deprovision_guard_tripped".to_owned()];
    assert_eq!(s.list_events("t", 0, &types, 10).await.unwrap().len(), 1);

    // Reject: refused while the identity provider keeps sending (each refusal extends it) …
    let t = 100_000;
    let st = s
        .guard_decide("t", GuardDecision::Reject, "op", at(t))
        .await
        .unwrap();
    assert_eq!(st.state, GuardState::Rejected);
    assert_eq!(st.held_count, 2, "the rejected batch stays listed");
    assert!(!admit(s, &users[2], t + 600).await);
    assert!(!admit(s, &users[4], t + 1200).await);
    assert_eq!(
        s.guard_status("t", at(t + 1200 + 899)).await.unwrap().state,
        GuardState::Rejected
    );
    // … and re-arms once it has been quiet for a window: counted afresh.
    assert_eq!(
        s.guard_status("t", at(t + 1200 + 900)).await.unwrap().state,
        GuardState::Armed
    );
    assert!(admit(s, &users[2], t + 2200).await);
    let st = s.guard_status("t", at(t + 2200)).await.unwrap();
    assert_eq!(
        (st.state, st.window_count, st.held_count),
        (GuardState::Armed, 1, 0)
    );
    // (The store test submits to the guard without deactivating anyone: 20 stay active.)
    assert_eq!(
        st.active_users, 20,
        "the base is counted again for the new window"
    );

    // Nothing to decide while armed.
    assert!(matches!(
        s.guard_decide("t", GuardDecision::Confirm, "op", at(t + 2200))
            .await,
        Err(StoreError::Invalid(_))
    ));

    // Trip again, confirm: the batch passes, uncounted, until a quiet window.
    assert!(admit(s, &users[5], t + 2300).await);
    assert!(!admit(s, &users[6], t + 2300).await);
    let st = s
        .guard_decide("t", GuardDecision::Confirm, "op", at(t + 2400))
        .await
        .unwrap();
    assert_eq!(
        (st.state, st.held_count, st.trips),
        (GuardState::Confirmed, 0, 2)
    );
    for (i, u) in users[6..16].iter().enumerate() {
        assert!(admit(s, u, t + 2500 + 600 * i as i64).await);
    }
    let last = t + 2500 + 600 * 9;
    assert_eq!(
        s.guard_status("t", at(last + 899)).await.unwrap().state,
        GuardState::Confirmed
    );
    assert_eq!(
        s.guard_status("t", at(last + 900)).await.unwrap().state,
        GuardState::Armed
    );
    // Armed again, counting afresh.
    assert!(admit(s, &users[16], last + 1000).await);
    assert!(admit(s, &users[17], last + 1000).await);
    assert!(!admit(s, &users[18], last + 1000).await);

    let resolved = s
        .list_events("t", 0, &["tenant.deprovision_guard_resolved".into()], 10)
        .await
        .unwrap();
    let decisions: Vec<&str> = resolved
        .iter()
        .map(|e| e.data["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["rejected", "confirmed"]);
}

/// Users created after the window opened are not counted; a disabled guard admits everything.
pub async fn users_created_after_the_window_opened_are_not_counted_and_off_means_off(
    b: &dyn Backend,
) {
    let s = b.fresh().await;
    let s = &*s;
    tenant_with(s, "t", guard(10, 1, 15)).await;
    let old = user(s, "old", 0).await;
    assert!(admit(s, &old, 100).await);
    for i in 0..20 {
        let u = user(s, &format!("new{i}"), 200 + i).await;
        assert!(admit(s, &u, 300 + i).await);
    }
    assert_eq!(s.guard_status("t", at(400)).await.unwrap().window_count, 1);

    let off = TenantSettings {
        deprovision_guard: DeprovisionGuard {
            enabled: false,
            ..DeprovisionGuard::default()
        },
        ..TenantSettings::default()
    };
    let s = b.fresh().await;
    let s = &*s;
    tenant_with(s, "t", off).await;
    for i in 0..30 {
        let u = user(s, &format!("u{i}"), 0).await;
        assert!(admit(s, &u, 100).await);
    }
    assert_eq!(s.guard_status("t", at(100)).await.unwrap().window_count, 0);
}

/// The login lookup prefers a live record to a deprovisioned one with the same email.
pub async fn login_lookup_prefers_live_managed_active_records(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant_with(s, "t", TenantSettings::default()).await;
    let old = user(s, "ann@example.com", 0).await;
    s.delete_resource(
        "t",
        ResourceKind::User,
        &old.id,
        crate::Deletion::default(),
        at(1),
    )
    .await
    .unwrap();
    let r = s
        .login_lookup("t", &LoginKey::Email("ANN@example.com".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status, UserStatus::Deprovisioned);
    // Another user with that email: the live one wins.
    let new = NewResource {
        id: "ann2".into(),
        doc: json!({"schemas": [USER_SCHEMA], "userName": "ann2",
                    "emails": [{"value": "ann@example.com", "primary": true}]}),
        password_hash: None,
        members: vec![],
        events: vec![],
    };
    s.create_resource("t", ResourceKind::User, new, at(2))
        .await
        .unwrap();
    let r = s
        .login_lookup("t", &LoginKey::Email("ann@example.com".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.id.as_str(), r.status), ("ann2", UserStatus::Active));
    assert!(s
        .login_lookup("t", &LoginKey::ExternalId("nope".into()))
        .await
        .unwrap()
        .is_none());
}

/// Effective roles are the roles mapped to a user's groups by id, externalId (case-exact) or
/// displayName (case-insensitive); each change appends `user.roles_changed`.
pub async fn effective_roles_follow_mappings_and_status(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant_with(s, "t", TenantSettings::default()).await;
    let u = user(s, "u", 0).await;
    let new = NewResource {
        id: "g".into(),
        doc: json!({"schemas": [GROUP_SCHEMA], "displayName": "Admins", "externalId": "x-1"}),
        password_hash: None,
        members: vec![u.id.clone()],
        events: vec![],
    };
    s.create_resource("t", ResourceKind::Group, new, at(1))
        .await
        .unwrap();
    for (i, (by, value, role)) in [
        (MatchBy::Id, "g", "a"),
        (MatchBy::ExternalId, "x-1", "b"),
        (MatchBy::DisplayName, "ADMINS", "c"),
        (MatchBy::ExternalId, "X-1", "never"),
    ]
    .into_iter()
    .enumerate()
    {
        let m = RoleMapping {
            id: format!("rm{i}"),
            by,
            value: value.into(),
            roles: vec![role.into()],
            created_at: at(2),
            updated_at: at(2),
        };
        s.create_role_mapping("t", &m, at(2)).await.unwrap();
    }
    let got = s.get_app_user("t", "u").await.unwrap().unwrap();
    assert_eq!(got.roles, ["a", "b", "c"], "externalId is case-exact");
    let g = s.get_app_group("t", "g").await.unwrap().unwrap();
    assert_eq!(g.roles, ["a", "b", "c"]);
    let events = s
        .list_events("t", 0, &["user.roles_changed".into()], 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 3, "the fourth mapping changed nobody");
}

/// The app's search matches userName or email prefixes, case-insensitively.
pub async fn search_matches_user_name_or_email_prefixes(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant_with(s, "t", TenantSettings::default()).await;
    for (name, email) in [
        ("ann", "ann.lee@example.com"),
        ("bob", "robert@corp.example"),
        ("annette", "annette@example.com"),
    ] {
        let new = NewResource {
            id: name.into(),
            doc: json!({"schemas": [USER_SCHEMA], "userName": name,
                        "emails": [{"value": email, "primary": true}]}),
            password_hash: None,
            members: vec![],
            events: vec![],
        };
        s.create_resource("t", ResourceKind::User, new, at(0))
            .await
            .unwrap();
    }
    let ids = |q: &str| {
        let q = q.to_owned();
        async move {
            let page = s
                .list_app_users(
                    "t",
                    &AppUserQuery {
                        search: Some(q),
                        limit: 10,
                        ..AppUserQuery::default()
                    },
                )
                .await
                .unwrap();
            page.items
                .into_iter()
                .map(|u| u.resource.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(ids("ANN").await, ["ann", "annette"]);
    assert_eq!(ids("rob").await, ["bob"], "by email");
    assert_eq!(ids("ann.").await, ["ann"]);
    assert!(ids("zed").await.is_empty());
}

/// A group's member count equals its members after every kind of membership change.
pub async fn member_counts_follow_every_membership_change(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant_with(s, "t", TenantSettings::default()).await;
    for i in 0..5 {
        user(s, &format!("u{i}"), 0).await;
    }
    let group = |id: &str, members: &[&str]| NewResource {
        id: id.into(),
        doc: json!({"schemas": [GROUP_SCHEMA], "displayName": id}),
        password_hash: None,
        members: members.iter().map(|m| (*m).to_owned()).collect(),
        events: vec![],
    };
    s.create_resource(
        "t",
        ResourceKind::Group,
        group("g", &["u0", "u1", "u2"]),
        at(0),
    )
    .await
    .unwrap();
    s.create_resource("t", ResourceKind::Group, group("h", &["u0"]), at(0))
        .await
        .unwrap();
    // Every group's count equals its members, as SCIM and the app list them.
    let check = |want: &'static [(&'static str, u64)]| async move {
        for (g, n) in want {
            let got = s.get_app_group("t", g).await.unwrap().unwrap().member_count;
            let scim = s.list_members("t", g, None, 100).await.unwrap().len();
            let app = s
                .list_app_group_members("t", g, None, 100)
                .await
                .unwrap()
                .items
                .len();
            assert_eq!(
                (got, scim, app),
                (*n, *n as usize, *n as usize),
                "group {g}"
            );
        }
    };
    check(&[("g", 3), ("h", 1)]).await;
    // Adding present members and removing absent ones changes nothing.
    let ops = [
        MemberOp::Add(vec!["u1".into(), "u3".into(), "u3".into()]),
        MemberOp::Remove(vec!["u4".into(), "u2".into()]),
    ];
    s.update_members("t", "g", &ops, at(1)).await.unwrap();
    check(&[("g", 3), ("h", 1)]).await;
    // A deprovisioned user leaves its groups.
    s.delete_resource(
        "t",
        ResourceKind::User,
        "u0",
        crate::Deletion::default(),
        at(2),
    )
    .await
    .unwrap();
    check(&[("g", 2), ("h", 0)]).await;
    s.update_members("t", "g", &[MemberOp::RemoveAll], at(3))
        .await
        .unwrap();
    check(&[("g", 0)]).await;
    s.update_members("t", "h", &[MemberOp::Add(vec!["u4".into()])], at(4))
        .await
        .unwrap();
    check(&[("h", 1)]).await;
    // A deleted group takes its count along.
    s.delete_resource(
        "t",
        ResourceKind::Group,
        "h",
        crate::Deletion::default(),
        at(5),
    )
    .await
    .unwrap();
    assert!(s.get_app_group("t", "h").await.unwrap().is_none());
    check(&[("g", 0)]).await;
}
