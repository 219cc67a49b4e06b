//! The lists of users and groups the console shows and exports: the contains-search (indexed
//! on both backends), sort orders, keyset pages in both directions, and totals.

use scim_proto::schema::{ResourceKind, GROUP_SCHEMA, USER_SCHEMA};
use serde_json::{json, Value};

use super::support::{at, tenant_with};
use super::Backend;
use crate::app::{AppGroupQuery, AppSort, AppUserQuery};
use crate::{DeprovisionMode, NewResource, ResourceUpdate, Store, TenantSettings};

fn new(id: &str, doc: Value) -> NewResource {
    NewResource {
        id: id.into(),
        doc,
        password_hash: None,
        members: vec![],
        events: vec![],
    }
}

fn person(user_name: &str, given: &str, family: &str, email: &str) -> Value {
    json!({"schemas": [USER_SCHEMA], "userName": user_name, "active": true,
           "name": {"givenName": given, "familyName": family},
           "emails": [{"value": email, "type": "work", "primary": true}]})
}

async fn users(s: &dyn Store, tenant: &str, q: AppUserQuery) -> Vec<String> {
    s.list_app_users(tenant, &AppUserQuery { limit: 50, ..q })
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|u| u.resource.id)
        .collect()
}

async fn containing(s: &dyn Store, tenant: &str, text: &str) -> Vec<String> {
    let mut ids = users(
        s,
        tenant,
        AppUserQuery {
            contains: Some(text.into()),
            ..AppUserQuery::default()
        },
    )
    .await;
    ids.sort();
    ids
}

/// "Anderson" finds "Ann Anderson" (a prefix search would not: her userName is `ann`), in
/// any case, by name, userName or email; the search follows replaces and erasures and never
/// crosses tenants; fewer than 3 characters search by prefix.
pub async fn contains_search_follows_writes_and_stays_in_its_tenant(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    let erase = TenantSettings {
        deprovision_on_delete: DeprovisionMode::Erase,
        ..TenantSettings::default()
    };
    tenant_with(s, "t", erase.clone()).await;
    tenant_with(s, "u", erase).await;
    for (id, doc) in [
        ("ann", person("ann", "Ann", "Anderson", "ann@corp.example")),
        ("bob", person("bob", "Bob", "Builder", "bob@corp.example")),
        (
            "carla",
            person("carla", "Carla", "Diaz", "c.diaz@anderssen.example"),
        ),
        ("x%_y", person("x%_y", "Per", "Cent", "pc@corp.example")),
    ] {
        s.create_resource("t", ResourceKind::User, new(id, doc), at(1))
            .await
            .unwrap();
    }
    s.create_resource(
        "u",
        ResourceKind::User,
        new("other", person("other", "Ann", "Anderson", "ann@u.example")),
        at(1),
    )
    .await
    .unwrap();
    assert_eq!(containing(s, "t", "Anderson").await, ["ann"], "family name");
    assert_eq!(
        containing(s, "t", "nDeRs").await,
        ["ann", "carla"],
        "name or email"
    );
    assert_eq!(
        containing(s, "t", "corp.exam").await,
        ["ann", "bob", "x%_y"]
    );
    assert_eq!(containing(s, "t", "uilde").await, ["bob"]);
    assert_eq!(
        containing(s, "t", "%_y").await,
        ["x%_y"],
        "LIKE characters are text"
    );
    assert_eq!(containing(s, "t", "zzz").await, Vec::<String>::new());
    assert_eq!(
        containing(s, "t", "bo").await,
        ["bob"],
        "two characters: a prefix"
    );
    assert_eq!(containing(s, "t", "ob").await, Vec::<String>::new());
    assert_eq!(containing(s, "u", "anderson").await, ["other"]);

    // A replace changes what is found.
    s.update_resource(
        "t",
        ResourceKind::User,
        "ann",
        1,
        ResourceUpdate {
            doc: person("ann", "Ann", "Baker", "ann.baker@corp.example"),
            password_hash: None,
            members: vec![],
            events: vec![],
            guard: None,
        },
        at(2),
    )
    .await
    .unwrap();
    assert_eq!(containing(s, "t", "Anderson").await, Vec::<String>::new());
    assert_eq!(containing(s, "t", "baker").await, ["ann"]);
    // A change of nothing searched (active) keeps what is found.
    let mut doc = person("ann", "Ann", "Baker", "ann.baker@corp.example");
    doc["active"] = json!(false);
    s.update_resource(
        "t",
        ResourceKind::User,
        "ann",
        2,
        ResourceUpdate {
            doc,
            password_hash: None,
            members: vec![],
            events: vec![],
            guard: None,
        },
        at(2),
    )
    .await
    .unwrap();
    assert_eq!(containing(s, "t", "baker").await, ["ann"]);
    assert_eq!(containing(s, "t", "Anderson").await, Vec::<String>::new());
    // An erased user is found no more.
    s.delete_resource(
        "t",
        ResourceKind::User,
        "carla",
        crate::Deletion::default(),
        at(3),
    )
    .await
    .unwrap();
    assert_eq!(containing(s, "t", "anders").await, Vec::<String>::new());
    assert_eq!(containing(s, "u", "anders").await, ["other"]);

    // Groups by displayName.
    for (id, name) in [("g1", "Engineering"), ("g2", "Sales"), ("g3", "Pre-Sales")] {
        let doc = json!({"schemas": [GROUP_SCHEMA], "displayName": name});
        s.create_resource("t", ResourceKind::Group, new(id, doc), at(4))
            .await
            .unwrap();
    }
    let groups = |text: &str| {
        let text = text.to_owned();
        async move {
            let mut ids: Vec<String> = s
                .list_app_groups(
                    "t",
                    &AppGroupQuery {
                        contains: Some(text),
                        limit: 10,
                        ..AppGroupQuery::default()
                    },
                )
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|g| g.resource.id)
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(groups("SALES").await, ["g2", "g3"]);
    assert_eq!(groups("gineer").await, ["g1"]);
    assert_eq!(groups("pr").await, ["g3"], "a prefix");
}

/// Each order pages forwards and backwards through the same rows (never more than a page
/// loaded), with ties broken by creation order, and the total counts every match.
pub async fn lists_sort_page_both_ways_and_count(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant_with(s, "t", TenantSettings::default()).await;
    // Created in this order (a second apart), named out of order.
    let names = ["dora", "alma", "gus", "cleo", "bea", "fay", "eve"];
    for (i, n) in names.iter().enumerate() {
        let secs = i64::try_from(i).unwrap();
        s.create_resource(
            "t",
            ResourceKind::User,
            new(n, person(n, n, "Test", &format!("{n}@x.example"))),
            at(10 + secs),
        )
        .await
        .unwrap();
    }
    let page = |sort: AppSort, desc: bool, cursor: Option<String>, before: Option<String>| async move {
        s.list_app_users(
            "t",
            &AppUserQuery {
                limit: 3,
                sort,
                desc,
                cursor,
                before,
                count: true,
                ..AppUserQuery::default()
            },
        )
        .await
        .unwrap()
    };
    let ids = |p: &crate::app::AppPage<crate::app::AppUser>| {
        p.items
            .iter()
            .map(|u| u.resource.id.clone())
            .collect::<Vec<_>>()
    };
    let p1 = page(AppSort::Name, false, None, None).await;
    assert_eq!(ids(&p1), ["alma", "bea", "cleo"]);
    assert_eq!(p1.total, Some(7));
    assert_eq!(p1.prev_cursor, None, "the first page has no previous");
    let p2 = page(AppSort::Name, false, p1.next_cursor.clone(), None).await;
    assert_eq!(ids(&p2), ["dora", "eve", "fay"]);
    let p3 = page(AppSort::Name, false, p2.next_cursor.clone(), None).await;
    assert_eq!(ids(&p3), ["gus"]);
    assert_eq!(p3.next_cursor, None);
    let back2 = page(AppSort::Name, false, None, p3.prev_cursor.clone()).await;
    assert_eq!(ids(&back2), ["dora", "eve", "fay"]);
    assert!(back2.next_cursor.is_some());
    let back1 = page(AppSort::Name, false, None, back2.prev_cursor.clone()).await;
    assert_eq!(ids(&back1), ["alma", "bea", "cleo"]);
    assert_eq!(back1.prev_cursor, None, "back at the start");

    let d1 = page(AppSort::Name, true, None, None).await;
    assert_eq!(ids(&d1), ["gus", "fay", "eve"]);
    let c1 = page(AppSort::Created, true, None, None).await;
    assert_eq!(ids(&c1), ["eve", "fay", "bea"], "newest first");
    let c2 = page(AppSort::Created, true, c1.next_cursor.clone(), None).await;
    assert_eq!(ids(&c2), ["cleo", "gus", "alma"]);
    let c1again = page(AppSort::Created, true, None, c2.prev_cursor.clone()).await;
    assert_eq!(ids(&c1again), ids(&c1));

    // A change moves a user to the end of "last changed".
    s.update_resource(
        "t",
        ResourceKind::User,
        "alma",
        1,
        ResourceUpdate {
            doc: person("alma", "Alma", "Test", "alma@x.example"),
            password_hash: None,
            members: vec![],
            events: vec![],
            guard: None,
        },
        at(100),
    )
    .await
    .unwrap();
    let m = page(AppSort::LastModified, true, None, None).await;
    assert_eq!(ids(&m)[0], "alma");

    // A cursor of another order is refused, not misread.
    let wrong = s
        .list_app_users(
            "t",
            &AppUserQuery {
                limit: 3,
                sort: AppSort::Created,
                cursor: p1.next_cursor.clone(),
                ..AppUserQuery::default()
            },
        )
        .await;
    assert!(matches!(wrong, Err(crate::StoreError::Invalid(_))));

    // The total counts the filtered rows, not the page.
    let few = s
        .list_app_users(
            "t",
            &AppUserQuery {
                limit: 1,
                contains: Some("ora".into()),
                count: true,
                ..AppUserQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(few.total, Some(1), "only dora has 'ora'");
    assert_eq!(few.items.len(), 1);
    let all: Vec<String> = users(s, "t", AppUserQuery::default()).await;
    assert_eq!(all.len(), 7);
}

/// A group's members come in name order (folded userName, then id), a page at a time, and a
/// renamed user moves to its new place.
pub async fn group_members_come_in_name_order_and_follow_renames(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant_with(s, "t", TenantSettings::default()).await;
    for (id, name) in [("u1", "Zed"), ("u2", "amy"), ("u3", "Kim"), ("u4", "bo")] {
        s.create_resource(
            "t",
            ResourceKind::User,
            new(id, person(name, name, "X", &format!("{id}@x.example"))),
            at(1),
        )
        .await
        .unwrap();
    }
    let mut g = new("g", json!({"schemas": [GROUP_SCHEMA], "displayName": "G"}));
    g.members = vec!["u1".into(), "u2".into(), "u3".into(), "u4".into()];
    s.create_resource("t", ResourceKind::Group, g, at(2))
        .await
        .unwrap();
    let all = || async move {
        let mut names = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let p = s
                .list_app_group_members("t", "g", cursor.as_deref(), 2)
                .await
                .unwrap();
            assert!(p.items.len() <= 2);
            names.extend(p.items.into_iter().map(|m| m.user_name));
            match p.next_cursor {
                Some(c) => cursor = Some(c),
                None => return names,
            }
        }
    };
    assert_eq!(all().await, ["amy", "bo", "Kim", "Zed"]);
    s.update_resource(
        "t",
        ResourceKind::User,
        "u1",
        1,
        ResourceUpdate {
            doc: person("Abe", "Abe", "X", "u1@x.example"),
            password_hash: None,
            members: vec![],
            events: vec![],
            guard: None,
        },
        at(3),
    )
    .await
    .unwrap();
    assert_eq!(all().await, ["Abe", "amy", "bo", "Kim"]);
}
