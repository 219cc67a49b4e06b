//! The tenant setting `email_uniqueness` (issue 13): which users count, what each mode refuses,
//! turning it on over duplicates, and concurrent creates.

use scim_proto::schema::{ResourceKind, USER_SCHEMA};
use serde_json::{json, Value};

use super::support::{add_user, at, new, tenant, tenant_with};
use super::Backend;
use crate::app::{AppUserUpdate, ImportResult, ImportUser};
use crate::{
    CreateOutcome, Deletion, EmailUniqueness, ResourceUpdate, Store, StoreError, TenantSettings,
};

/// A User document with `emails` as `(value, primary)`.
fn with_emails(user_name: &str, emails: &[(&str, Option<bool>)]) -> Value {
    let emails: Vec<Value> = emails
        .iter()
        .map(|(v, p)| match p {
            Some(p) => json!({"value": v, "type": "work", "primary": p}),
            None => json!({"value": v, "type": "work"}),
        })
        .collect();
    json!({"schemas": [USER_SCHEMA], "userName": user_name, "active": true, "emails": emails})
}

fn mode(m: EmailUniqueness) -> TenantSettings {
    TenantSettings {
        email_uniqueness: m,
        ..TenantSettings::default()
    }
}

async fn create(s: &dyn Store, id: &str, doc: Value) -> Result<CreateOutcome, StoreError> {
    s.create_resource("t", ResourceKind::User, new(id, doc), at(1))
        .await
}

async fn replace(s: &dyn Store, id: &str, doc: Value) -> Result<(), StoreError> {
    let cur = s
        .get_resource("t", ResourceKind::User, id)
        .await
        .unwrap()
        .unwrap();
    let update = ResourceUpdate {
        doc,
        password_hash: None,
        members: vec![],
        events: vec![],
        guard: None,
    };
    s.update_resource("t", ResourceKind::User, id, cur.version, update, at(2))
        .await
        .map(|_| ())
}

fn taken(r: Result<impl std::fmt::Debug, StoreError>, value: &str) {
    match r {
        Err(StoreError::EmailTaken(v)) => assert_eq!(v, value),
        other => panic!("expected EmailTaken({value}), got {other:?}"),
    }
}

async fn set_mode(s: &dyn Store, m: EmailUniqueness) -> Result<(), StoreError> {
    s.update_tenant(
        "t",
        Box::new(move |t| {
            t.settings.email_uniqueness = m;
            Ok(())
        }),
    )
    .await
    .map(|_| ())
}

/// `off` allows duplicates; `primary` refuses a second user with the same primary email (by
/// create, replace, restore, an app user's import or edit) but not a shared secondary one;
/// `any` refuses any shared email; case does not matter; deprovisioned users do not count,
/// deactivated and app users do; a deprovisioned user's restore that would duplicate is
/// refused and changes nothing.
pub async fn each_mode_refuses_what_it_counts(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;

    // off: anything goes.
    tenant(s, "t").await;
    add_user(s, "t", "o1", with_emails("o1", &[("same@x.example", None)])).await;
    add_user(s, "t", "o2", with_emails("o2", &[("SAME@x.example", None)])).await;
    s.delete_tenant("t", crate::TenantDataMode::Erase, at(0))
        .await
        .unwrap();

    // primary
    tenant_with(s, "t", mode(EmailUniqueness::Primary)).await;
    add_user(
        s,
        "t",
        "a",
        with_emails(
            "ann",
            &[("ann@x.example", Some(true)), ("shared@x.example", None)],
        ),
    )
    .await;
    taken(
        create(s, "b", with_emails("bob", &[("Ann@X.example", Some(true))])).await,
        "Ann@X.example",
    );
    // The only email, unmarked, is a primary email too.
    taken(
        create(s, "b", with_emails("bob", &[("ANN@x.example", None)])).await,
        "ANN@x.example",
    );
    // A secondary email may be shared; several unmarked emails have no primary one.
    create(
        s,
        "b",
        with_emails(
            "bob",
            &[("bob@x.example", Some(true)), ("shared@x.example", None)],
        ),
    )
    .await
    .unwrap();
    create(
        s,
        "c",
        with_emails("cat", &[("ann@x.example", None), ("cat@x.example", None)]),
    )
    .await
    .unwrap();
    // A replace that takes ann's primary email is refused and changes nothing.
    taken(
        replace(s, "b", with_emails("bob", &[("ann@x.example", Some(true))])).await,
        "ann@x.example",
    );
    let bob = s.get_resource("t", ResourceKind::User, "b").await.unwrap();
    assert_eq!(bob.unwrap().version, 1);
    // A user may keep, reorder or re-case its own email.
    replace(s, "a", with_emails("ann", &[("ANN@x.example", Some(true))]))
        .await
        .unwrap();
    // Deactivated users count.
    let mut off = with_emails("ann", &[("ANN@x.example", Some(true))]);
    off["active"] = json!(false);
    replace(s, "a", off).await.unwrap();
    taken(
        create(s, "d", with_emails("dan", &[("ann@x.example", Some(true))])).await,
        "ann@x.example",
    );
    // Deprovisioned users do not; their restore is refused while the email is taken.
    s.delete_resource("t", ResourceKind::User, "a", Deletion::default(), at(3))
        .await
        .unwrap();
    create(s, "d", with_emails("dan", &[("ann@x.example", Some(true))]))
        .await
        .unwrap();
    taken(
        create(
            s,
            "a2",
            with_emails("ann", &[("ann@x.example", Some(true))]),
        )
        .await,
        "ann@x.example",
    );
    assert!(s
        .get_resource("t", ResourceKind::User, "a")
        .await
        .unwrap()
        .is_none());
    match create(
        s,
        "a2",
        with_emails("ann", &[("ann2@x.example", Some(true))]),
    )
    .await
    .unwrap()
    {
        CreateOutcome::Restored(r) => assert_eq!(r.id, "a"),
        other => panic!("expected a restore, got {other:?}"),
    }
    // Erased users do not count either.
    s.erase_user("t", "d", at(4)).await.unwrap();
    create(s, "e", with_emails("eve", &[("ann@x.example", Some(true))]))
        .await
        .unwrap();

    // App users count: an import line is skipped, an edit refused.
    let import = |id: &str, name: &str, email: &str| ImportUser {
        id: id.into(),
        doc: with_emails(name, &[(email, Some(true))]),
        roles: vec![],
        groups: vec![],
        metadata: json!({}),
    };
    let results = s
        .import_users(
            "t",
            vec![
                import("app1", "app1", "ANN@x.example"),
                import("app2", "app2", "app@x.example"),
                import("app3", "app3", "App@x.example"),
            ],
            at(5),
        )
        .await
        .unwrap();
    assert!(matches!(&results[0], ImportResult::Skipped(m) if m.contains("ANN@x.example")));
    assert_eq!(results[1], ImportResult::Imported);
    assert!(matches!(&results[2], ImportResult::Skipped(m) if m.contains("App@x.example")));
    let edit = AppUserUpdate {
        expected_version: 1,
        doc: Some(with_emails("app2", &[("bob@x.example", Some(true))])),
        roles: None,
        metadata: None,
        events: vec![],
    };
    taken(
        s.update_app_user("t", "app2", edit, at(6)).await,
        "bob@x.example",
    );

    // any: c's unmarked ann@ now duplicates e's primary one, so the switch is refused.
    assert!(matches!(
        set_mode(s, EmailUniqueness::Any).await,
        Err(StoreError::EmailDuplicates(_))
    ));
    s.delete_tenant("t", crate::TenantDataMode::Erase, at(7))
        .await
        .unwrap();
    tenant_with(s, "t", mode(EmailUniqueness::Any)).await;
    add_user(
        s,
        "t",
        "a",
        with_emails(
            "ann",
            &[("ann@x.example", Some(true)), ("sec@x.example", None)],
        ),
    )
    .await;
    taken(
        create(
            s,
            "b",
            with_emails(
                "bob",
                &[("b@x.example", Some(true)), ("SEC@x.example", None)],
            ),
        )
        .await,
        "SEC@x.example",
    );
    // The same email twice in one user is one claim.
    create(
        s,
        "b",
        with_emails("bob", &[("b@x.example", Some(true)), ("B@x.example", None)]),
    )
    .await
    .unwrap();
}

/// Turning the setting on is refused, listing the duplicates, while counted users share an
/// email; deprovisioned users are not listed; once they are resolved it is accepted and then
/// enforced; off again empties the claims (duplicates are allowed again).
pub async fn turning_it_on_over_duplicates_is_refused_with_the_list(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "t").await;
    add_user(
        s,
        "t",
        "u1",
        with_emails("one", &[("dup@x.example", Some(true))]),
    )
    .await;
    add_user(s, "t", "u2", with_emails("two", &[("DUP@x.example", None)])).await;
    add_user(
        s,
        "t",
        "u3",
        with_emails(
            "three",
            &[("three@x.example", Some(true)), ("sec@x.example", None)],
        ),
    )
    .await;
    add_user(
        s,
        "t",
        "u4",
        with_emails(
            "four",
            &[("four@x.example", Some(true)), ("sec@x.example", None)],
        ),
    )
    .await;
    add_user(
        s,
        "t",
        "u5",
        with_emails("five", &[("dup@x.example", Some(true))]),
    )
    .await;
    s.delete_resource("t", ResourceKind::User, "u5", Deletion::default(), at(1))
        .await
        .unwrap();

    match set_mode(s, EmailUniqueness::Primary).await {
        Err(StoreError::EmailDuplicates(d)) => {
            assert_eq!(d.mode, EmailUniqueness::Primary);
            assert_eq!(d.total, 1);
            assert_eq!(d.shown.len(), 1);
            assert_eq!(d.shown[0].email, "dup@x.example");
            let users: Vec<&str> = d.shown[0].users.iter().map(|u| u.0.as_str()).collect();
            assert_eq!(users, ["u1", "u2"], "the deprovisioned u5 does not count");
            assert_eq!(d.shown[0].users[0].1, "one");
        }
        other => panic!("expected EmailDuplicates, got {other:?}"),
    }
    match set_mode(s, EmailUniqueness::Any).await {
        Err(StoreError::EmailDuplicates(d)) => {
            let emails: Vec<&str> = d.shown.iter().map(|d| d.email.as_str()).collect();
            assert_eq!(emails, ["dup@x.example", "sec@x.example"]);
        }
        other => panic!("expected EmailDuplicates, got {other:?}"),
    }
    let t = s.get_tenant("t").await.unwrap().unwrap();
    assert_eq!(
        t.settings.email_uniqueness,
        EmailUniqueness::Off,
        "nothing changed"
    );

    // u2 gets its own email: primary is accepted (sec@ is a secondary email), any is not.
    replace(s, "u2", with_emails("two", &[("two@x.example", None)]))
        .await
        .unwrap();
    set_mode(s, EmailUniqueness::Primary).await.unwrap();
    taken(
        create(s, "u6", with_emails("six", &[("Dup@x.example", None)])).await,
        "Dup@x.example",
    );
    assert!(matches!(
        set_mode(s, EmailUniqueness::Any).await,
        Err(StoreError::EmailDuplicates(_))
    ));
    // The development command's path (settings replaced whole) is checked the same way.
    assert!(matches!(
        s.put_tenant_settings("t", &mode(EmailUniqueness::Any))
            .await,
        Err(StoreError::EmailDuplicates(_))
    ));
    // Off again: duplicates are allowed, and turning it on again finds them.
    s.put_tenant_settings("t", &mode(EmailUniqueness::Off))
        .await
        .unwrap();
    create(s, "u6", with_emails("six", &[("dup@x.example", None)]))
        .await
        .unwrap();
    assert!(matches!(
        set_mode(s, EmailUniqueness::Primary).await,
        Err(StoreError::EmailDuplicates(_))
    ));
}

/// Concurrent creates of users with the same email, from two stores on one database (two
/// processes): exactly one succeeds, the others are refused with the email.
pub async fn concurrent_creates_of_one_email_admit_one(b: &dyn Backend) {
    let db = b.shared().await;
    let s = db.open().await;
    tenant_with(&*s, "t", mode(EmailUniqueness::Any)).await;
    let other = db.open().await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let st = if i % 2 == 0 { s.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            let email = if i % 2 == 0 {
                "same@x.example"
            } else {
                "SAME@x.example"
            };
            let doc = with_emails(&format!("user{i}"), &[(email, None)]);
            st.create_resource("t", ResourceKind::User, new(&format!("u{i}"), doc), at(i))
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::EmailTaken(v)) => assert_eq!(v.to_lowercase(), "same@x.example"),
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(ok, 1);
}
