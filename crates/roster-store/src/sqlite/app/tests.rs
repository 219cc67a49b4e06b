//! Tests of the app side of the SQLite store that are about SQLite itself: query plans, and
//! the member counts kept by triggers (migration 0008). What the app side does is tested by the
//! conformance suite (`crate::conformance::app`), which `super::super::tests` runs on SQLite.

use crate::sqlite::db;
use scim_proto::schema::{ResourceKind, GROUP_SCHEMA};
use serde_json::json;

use super::super::SqliteStore;
use super::{mapped_roles_sql, GROUP_MAPPINGS_SQL, LOGIN_BY_EMAIL_SQL, LOGIN_BY_EXTERNAL_ID_SQL};
use crate::conformance::support::{add_user, at, tenant, user_doc};
use crate::*;

async fn store() -> SqliteStore {
    let s = SqliteStore::open("sqlite::memory:").await.unwrap();
    tenant(&s, "t").await;
    s
}

#[tokio::test]
async fn the_login_and_roles_queries_use_indexes() {
    let s = store().await;
    let plan = |sql: String, binds: usize| {
        let s = s.clone();
        async move {
            let mut q = db::query_as::<(i64, i64, i64, String)>(&sql);
            for i in 0..binds {
                q = q.bind(i.to_string());
            }
            let rows = q.fetch_all(&s.reader).await.unwrap();
            rows.into_iter().map(|r| r.3).collect::<Vec<_>>()
        }
    };
    for (sql, binds) in [
        (format!("EXPLAIN QUERY PLAN {LOGIN_BY_EMAIL_SQL}"), 2),
        (format!("EXPLAIN QUERY PLAN {LOGIN_BY_EXTERNAL_ID_SQL}"), 2),
        (format!("EXPLAIN QUERY PLAN {GROUP_MAPPINGS_SQL}"), 6),
        (
            format!("EXPLAIN QUERY PLAN {}", mapped_roles_sql(3, false)),
            9,
        ),
    ] {
        let steps = plan(sql.clone(), binds).await;
        assert!(
            !steps.iter().any(|d| d.starts_with("SCAN")),
            "{sql}\nscans: {steps:?}"
        );
        if sql.contains("FROM members m") {
            // The users' member rows by `member_pk`, not the tenant's by a tenant prefix.
            assert!(
                steps
                    .iter()
                    .filter(|d| d.contains(" m ") || d.contains("members"))
                    .all(|d| d.contains("member_pk=?")),
                "{sql}\nmember rows not found by member_pk: {steps:?}"
            );
        }
        if sql.contains("role_mappings") {
            assert!(
                steps
                    .iter()
                    .filter(|d| d.contains(" rm ") || d.contains("role_mappings"))
                    .all(|d| d.contains("match_value=?")),
                "{sql}\nmappings not found by their unique index: {steps:?}"
            );
        }
    }
}

/// The `member_counts` rows the triggers keep equal each group's member rows after every kind
/// of membership change, and go with their group.
#[tokio::test]
async fn member_count_rows_follow_the_member_rows() {
    let s = store().await;
    for i in 0..5 {
        add_user(&s, "t", &format!("u{i}"), user_doc(&format!("u{i}"))).await;
    }
    let group = |id: &str, members: &[&str]| NewResource {
        id: id.into(),
        doc: json!({"schemas": [GROUP_SCHEMA], "displayName": id}),
        password_hash: None,
        members: members.iter().map(|m| (*m).to_owned()).collect(),
        events: vec![],
    };
    for (g, members) in [("g", &["u0", "u1", "u2"][..]), ("h", &["u0"][..])] {
        s.create_resource("t", ResourceKind::Group, group(g, members), at(0))
            .await
            .unwrap();
    }
    // Every group's kept count (0 when it has no row) equals its member rows.
    let check = || async {
        let rows: Vec<(String, i64, i64)> = db::query_as(
            "SELECT r.id, COALESCE((SELECT n FROM member_counts c WHERE c.group_pk = r.pk), 0), \
             (SELECT COUNT(*) FROM members m WHERE m.group_pk = r.pk) \
             FROM resources r WHERE r.kind = 'Group' ORDER BY r.pk",
        )
        .fetch_all(&s.reader)
        .await
        .unwrap();
        for (g, kept, counted) in &rows {
            assert_eq!(kept, counted, "group {g}");
        }
        rows.into_iter().map(|r| r.2).collect::<Vec<_>>()
    };
    assert_eq!(check().await, [3, 1]);
    let ops = [
        MemberOp::Add(vec!["u1".into(), "u3".into(), "u3".into()]),
        MemberOp::Remove(vec!["u4".into(), "u2".into()]),
    ];
    s.update_members("t", "g", &ops, at(1)).await.unwrap();
    assert_eq!(check().await, [3, 1]);
    s.delete_resource(
        "t",
        ResourceKind::User,
        "u0",
        crate::Deletion::default(),
        at(2),
    )
    .await
    .unwrap();
    assert_eq!(check().await, [2, 0]);
    s.erase_user("t", "u1", at(3)).await.unwrap();
    assert_eq!(check().await, [1, 0]);
    s.update_members("t", "h", &[MemberOp::Add(vec!["u4".into()])], at(4))
        .await
        .unwrap();
    assert_eq!(check().await, [1, 1]);
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
    assert_eq!(check().await, [1]);
    let left: i64 = db::query_scalar("SELECT COUNT(*) FROM member_counts")
        .fetch_one(&s.reader)
        .await
        .unwrap();
    assert_eq!(left, 1, "only g's row is left");
}
