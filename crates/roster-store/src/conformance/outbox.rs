//! The outbox: events, their seq, snapshots and subscriptions.

use std::collections::HashSet;

use scim_proto::schema::{ResourceKind, USER_SCHEMA};
use serde_json::json;

use super::support::{add_group, add_user, at, events_of, new, tenant, types_of, user_doc};
use super::Backend;
use crate::app::{AppGroupUpdate, NewAppGroup};
use crate::{
    CreateOutcome, EventType, MemberOp, NewEvent, ResourceUpdate, StoreError, TokenRecord,
};

/// Each tenant's events get seq 1, 2, 3, … without gaps; a failed write appends nothing;
/// events page by seq and filter by type; event ids are unique.
pub async fn seq_is_per_tenant_gap_free_and_increasing(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "acme").await;
    tenant(s, "beta").await;
    add_user(s, "acme", "u1", user_doc("a")).await;
    add_user(s, "beta", "u1", user_doc("a")).await;
    add_user(s, "acme", "u2", user_doc("b")).await;
    // A failed write appends nothing: the event goes with the transaction.
    assert!(matches!(
        s.create_resource("acme", ResourceKind::User, new("u3", user_doc("A")), at(1))
            .await,
        Err(StoreError::Conflict("userName"))
    ));
    s.delete_resource(
        "acme",
        ResourceKind::User,
        "u1",
        crate::Deletion::default(),
        at(2),
    )
    .await
    .unwrap();
    let acme = events_of(s, "acme").await;
    assert_eq!(
        acme.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3],
        "{acme:?}"
    );
    assert_eq!(
        types_of(&acme),
        ["user.created", "user.created", "user.deprovisioned"]
    );
    assert_eq!(acme[0].data["user"]["userName"], "a");
    assert_eq!(acme[2].data["user"], json!({"id": "u1", "userName": "a"}));
    assert_eq!(acme[2].occurred_at, at(2));
    let beta = events_of(s, "beta").await;
    assert_eq!(beta.iter().map(|e| e.seq).collect::<Vec<_>>(), [1]);
    assert_eq!(s.last_seq("acme").await.unwrap(), 3);
    assert_eq!(s.last_seq("nobody").await.unwrap(), 0);
    let ids: HashSet<&str> = acme.iter().chain(&beta).map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 4, "event ids are unique");
    // Paging from a cursor, and filtering by type.
    let after = s.list_events("acme", 1, &[], 1).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].seq, 2);
    let only = s
        .list_events("acme", 0, &["user.deprovisioned".to_owned()], 10)
        .await
        .unwrap();
    assert_eq!(only.iter().map(|e| e.seq).collect::<Vec<_>>(), [3]);
}

/// Concurrent writers through two stores on one database (the server and the CLI) get
/// distinct, consecutive seqs.
pub async fn concurrent_writers_get_distinct_consecutive_seqs(b: &dyn Backend) {
    let db = b.shared().await;
    let s = db.open().await;
    tenant(&*s, "acme").await;
    // A second store on the same database stands for another process (the CLI).
    let other = db.open().await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let st = if i % 2 == 0 { s.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            st.create_resource(
                "acme",
                ResourceKind::User,
                new(&format!("u{i}"), user_doc(&format!("user{i}"))),
                at(i),
            )
            .await
            .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let seqs: Vec<i64> = events_of(&*s, "acme").await.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
}

/// `group.members_added`/`removed` list the member rows that really changed (the net change
/// of a request), in parts of at most 1,000 ids; a deprovisioned member's groups announce the
/// loss before the user goes.
pub async fn member_events_list_the_rows_that_really_changed_in_parts(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "acme").await;
    let n = 1500;
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("u{i:04}");
        add_user(s, "acme", &id, user_doc(&id)).await;
        ids.push(id);
    }
    add_group(s, "acme", "g1", "Admins", &["u0000"]).await;
    let before = s.last_seq("acme").await.unwrap();
    let created = s.list_events("acme", before - 2, &[], 10).await.unwrap();
    assert_eq!(types_of(&created), ["group.created", "group.members_added"]);
    assert_eq!(created[1].data["members"], json!(["u0000"]));
    // Adding all 1,500 (one already present) gives two events with 1,499 ids between them.
    s.update_members("acme", "g1", &[MemberOp::Add(ids.clone())], at(5))
        .await
        .unwrap();
    let added = s.list_events("acme", before, &[], 10).await.unwrap();
    assert_eq!(
        types_of(&added),
        ["group.members_added", "group.members_added"]
    );
    assert_eq!(added[0].data["members"].as_array().unwrap().len(), 1000);
    assert_eq!(added[1].data["members"].as_array().unwrap().len(), 499);
    assert_eq!(added[0].data["part"], 1);
    assert_eq!(added[1].data["parts"], 2);
    assert_eq!(added[0].data["group"]["displayName"], "Admins");
    // Removing one absent and one present member, then re-adding a removed-then-added one.
    let seq = s.last_seq("acme").await.unwrap();
    s.update_members(
        "acme",
        "g1",
        &[
            MemberOp::Remove(vec!["u0001".into(), "nobody".into()]),
            MemberOp::Remove(vec!["u0002".into()]),
            MemberOp::Add(vec!["u0002".into()]),
        ],
        at(6),
    )
    .await
    .unwrap();
    let changed = s.list_events("acme", seq, &[], 10).await.unwrap();
    assert_eq!(types_of(&changed), ["group.members_removed"]);
    assert_eq!(changed[0].data["members"], json!(["u0001"]));
    // Adding only present members changes no row and announces nothing.
    let seq = s.last_seq("acme").await.unwrap();
    s.update_members("acme", "g1", &[MemberOp::Add(vec!["u0003".into()])], at(7))
        .await
        .unwrap();
    assert_eq!(s.last_seq("acme").await.unwrap(), seq);
    // Deprovisioning a member: the group announces the loss, then the user goes.
    s.delete_resource(
        "acme",
        ResourceKind::User,
        "u0003",
        crate::Deletion::default(),
        at(8),
    )
    .await
    .unwrap();
    let gone = s.list_events("acme", seq, &[], 10).await.unwrap();
    assert_eq!(
        types_of(&gone),
        ["group.members_removed", "user.deprovisioned"]
    );
    s.delete_resource(
        "acme",
        ResourceKind::Group,
        "g1",
        crate::Deletion::default(),
        at(9),
    )
    .await
    .unwrap();
    let last = s.list_events("acme", seq + 2, &[], 10).await.unwrap();
    assert_eq!(types_of(&last), ["group.deleted"]);
}

/// An app group's member changes are announced like a SCIM group's: the net change, added
/// before removed, each id once; its members may be any live user, managed or not, and an
/// unknown id fails the whole change with the app API's wording.
pub async fn app_group_member_events_are_the_net_change(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "t").await;
    for u in ["a", "b", "c"] {
        add_user(s, "t", u, user_doc(u)).await;
    }
    s.import_users(
        "t",
        vec![crate::app::ImportUser {
            id: "x".into(),
            doc: user_doc("x"),
            roles: vec![],
            groups: vec![],
            metadata: json!({}),
        }],
        at(0),
    )
    .await
    .unwrap();
    let seq = s.last_seq("t").await.unwrap();
    let g = s
        .create_app_group(
            "t",
            NewAppGroup {
                id: "ag".into(),
                doc: json!({"displayName": "App"}),
                members: vec!["a".into(), "x".into(), "a".into()],
                metadata: json!({}),
            },
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(g.member_count, 2);
    let created = s.list_events("t", seq, &[], 10).await.unwrap();
    assert_eq!(types_of(&created), ["group.created", "group.members_added"]);
    assert_eq!(created[1].data["members"], json!(["a", "x"]));
    let update = |version, members| AppGroupUpdate {
        expected_version: version,
        doc: None,
        members,
        metadata: None,
        events: vec![],
    };
    // Remove a and x, add b, c and a again: a changed nothing.
    let seq = s.last_seq("t").await.unwrap();
    let g = s
        .update_app_group(
            "t",
            "ag",
            update(
                g.resource.version,
                vec![
                    MemberOp::Remove(vec!["a".into(), "x".into(), "nobody".into()]),
                    MemberOp::Add(vec!["b".into(), "c".into(), "a".into(), "b".into()]),
                ],
            ),
            at(2),
        )
        .await
        .unwrap();
    let changed = s.list_events("t", seq, &[], 10).await.unwrap();
    assert_eq!(
        types_of(&changed),
        ["group.members_added", "group.members_removed"]
    );
    assert_eq!(changed[0].data["members"], json!(["b", "c"]));
    assert_eq!(changed[1].data["members"], json!(["x"]));
    assert_eq!(
        changed[0].data["group"],
        json!({"id": "ag", "displayName": "App"})
    );
    assert_eq!(g.member_count, 3);
    // An unknown or deprovisioned user fails the whole change.
    s.delete_resource(
        "t",
        ResourceKind::User,
        "c",
        crate::Deletion::default(),
        at(3),
    )
    .await
    .unwrap();
    let g = s.get_app_group("t", "ag").await.unwrap().unwrap();
    for bad in ["nobody", "c"] {
        let seq = s.last_seq("t").await.unwrap();
        match s
            .update_app_group(
                "t",
                "ag",
                update(
                    g.resource.version,
                    vec![
                        MemberOp::RemoveAll,
                        MemberOp::Add(vec!["x".into(), bad.into()]),
                    ],
                ),
                at(4),
            )
            .await
        {
            Err(StoreError::Invalid(msg)) => {
                assert_eq!(
                    msg,
                    format!("member \"{bad}\" is not a user of this tenant")
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.last_seq("t").await.unwrap(), seq, "nothing appended");
    }
    let members: Vec<String> = s
        .list_app_group_members("t", "ag", None, 10)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(members, ["a", "b"]);
}

/// The caller's events are appended after the store's own, in the same transaction (a stale
/// update appends nothing); restore, welcome and token events; appending to an unknown tenant
/// is `NotFound`.
pub async fn caller_events_restore_and_tokens(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "acme").await;
    add_user(s, "acme", "u1", user_doc("alice")).await;
    let upd = ResourceUpdate {
        doc: json!({"schemas": [USER_SCHEMA], "userName": "alice", "active": false}),
        password_hash: None,
        members: vec![],
        events: vec![NewEvent::new(
            EventType::UserDeactivated,
            json!({"user": {"id": "u1"}}),
        )],
        guard: None,
    };
    s.update_resource("acme", ResourceKind::User, "u1", 1, upd.clone(), at(1))
        .await
        .unwrap();
    // A stale update appends nothing.
    assert!(s
        .update_resource("acme", ResourceKind::User, "u1", 1, upd, at(2))
        .await
        .is_err());
    s.delete_resource(
        "acme",
        ResourceKind::User,
        "u1",
        crate::Deletion::default(),
        at(3),
    )
    .await
    .unwrap();
    let mut again = new("ignored", user_doc("ALICE"));
    again.events = vec![NewEvent::new(EventType::UserWelcome, json!({}))];
    let restored = s
        .create_resource("acme", ResourceKind::User, again, at(4))
        .await
        .unwrap();
    assert!(matches!(restored, CreateOutcome::Restored(_)));
    let tok = TokenRecord {
        prefix: "rsct_a".into(),
        tenant_id: "acme".into(),
        hash: "h".into(),
        created_at: at(5),
        expires_at: at(500),
        last_used_at: None,
        revoked_at: None,
    };
    s.insert_token(&tok).await.unwrap();
    let tok2 = TokenRecord {
        prefix: "rsct_b".into(),
        ..tok.clone()
    };
    s.rotate_tokens(&tok2, at(6)).await.unwrap();
    s.revoke_token("acme", "rsct_b", at(7)).await.unwrap();
    let all = events_of(s, "acme").await;
    assert_eq!(
        types_of(&all),
        [
            "user.created",
            "user.deactivated",
            "user.deprovisioned",
            "user.restored",
            "user.welcome",
            "token.created",
            "token.rotated",
            "token.revoked"
        ]
    );
    assert_eq!(all[3].data["user"]["id"], "u1");
    assert_eq!(all[6].data["revoked"], json!(["rsct_a"]));
    assert!(!all[5].to_owned().data.to_string().contains("\"h\""));
    // Appending to an unknown tenant fails.
    assert!(matches!(
        s.append_events(
            "nobody",
            vec![NewEvent::new(EventType::ScimEnabled, json!({}))],
            at(8)
        )
        .await,
        Err(StoreError::NotFound)
    ));
}

/// A snapshot's users, groups and members are exactly those its seq reflects.
pub async fn snapshot_is_consistent_with_its_seq(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "acme").await;
    add_user(s, "acme", "u1", user_doc("a")).await;
    add_user(s, "acme", "u2", user_doc("b")).await;
    add_group(s, "acme", "g1", "G", &["u1", "u2"]).await;
    s.delete_resource(
        "acme",
        ResourceKind::User,
        "u2",
        crate::Deletion::default(),
        at(1),
    )
    .await
    .unwrap();
    let snap = s.snapshot("acme").await.unwrap();
    assert_eq!(snap.seq, s.last_seq("acme").await.unwrap());
    assert_eq!(
        snap.users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        ["u1"]
    );
    assert_eq!(snap.groups.len(), 1);
    assert_eq!(snap.groups[0].1, ["u1"]);
}

/// A subscriber wakes after a commit that appended events.
pub async fn subscribers_wake_on_commits_with_events(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "acme").await;
    let mut rx = s.subscribe();
    let before = *rx.borrow_and_update();
    add_user(s, "acme", "u1", user_doc("a")).await;
    // A bound on a hang, not a timed assertion: the wake-up follows the commit at once.
    tokio::time::timeout(std::time::Duration::from_secs(5), rx.changed())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(*rx.borrow(), before);
}

/// Many events appended by one write get consecutive seqs, in order, whatever batching the
/// backend uses to insert them (250 crosses the SQLite backend's 100-row insert).
pub async fn many_events_of_one_write_get_consecutive_seqs(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "t").await;
    let first = s
        .append_events(
            "t",
            vec![NewEvent::new(EventType::UserCreated, json!({"n": 0}))],
            at(0),
        )
        .await
        .unwrap();
    let base = first[0].seq;
    let many: Vec<NewEvent> = (1..=250)
        .map(|n| NewEvent::new(EventType::UserCreated, json!({"n": n})))
        .collect();
    let appended = s.append_events("t", many, at(1)).await.unwrap();
    let seqs: Vec<i64> = appended.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (base + 1..=base + 250).collect::<Vec<_>>());
    let listed = s.list_events("t", base, &[], 1000).await.unwrap();
    assert_eq!(listed.len(), 250);
    for (i, e) in listed.iter().enumerate() {
        assert_eq!(e.seq, base + 1 + i64::try_from(i).unwrap());
        assert_eq!(e.data, json!({"n": i + 1}));
        assert_eq!(e.id, appended[i].id);
    }
}
