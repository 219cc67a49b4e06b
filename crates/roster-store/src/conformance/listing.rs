//! Listing: filters, sorting, index and cursor pagination.

use std::collections::HashSet;

use scim_proto::filter::format_datetime;
use scim_proto::filter::{CompareOp, Filter};
use scim_proto::schema::ResourceKind;
use serde_json::{json, Map, Value};

use super::support::{
    add_user, all, and, at, cmp, filtered, fixture, group_filters, ids, sorted, tenant, user_doc,
    user_filters, valid, vp,
};
use super::Backend;
use crate::{ListQuery, PageRequest, Store, StoreError, StoredResource};

/// Filters select exactly the rows RFC 7644 says: case folding, `ne` and absent values,
/// multi-valued attributes and value paths, timestamps compared as instants, `groups` and
/// `members`; deprovisioned users' rows never surface.
pub async fn filters_select_the_expected_rows(b: &dyn Backend) {
    use CompareOp::{Co, Eq, Ge, Gt, Le, Ne, Sw};
    let s = b.fresh().await;
    let s = &*s;
    fixture(s).await;
    let u = |f| filtered(s, "t", ResourceKind::User, f);
    assert_eq!(u(cmp("userName", Eq, "AUSER003")).await, ["u003"]);
    assert_eq!(
        u(cmp("externalId", Eq, "ext-4")).await,
        Vec::<String>::new()
    );
    assert_eq!(
        u(cmp("emails.value", Eq, "U6.1@example.com")).await,
        ["u006"]
    );
    assert_eq!(u(cmp("userName", Ne, "auser000")).await.len(), 159);
    assert_eq!(u(cmp("userName", Co, "")).await.len(), 160);
    // `ne` on a multi-valued attribute: no email equals it (users without emails match).
    assert_eq!(
        u(cmp("emails.value", Ne, "u6.1@example.com")).await.len(),
        159
    );
    // Absent `active` matches `ne true` and `not (eq false)`.
    let ne_true = u(cmp("active", Ne, true)).await;
    assert!(ne_true.contains(&"u001".to_owned()) && ne_true.contains(&"u000".to_owned()));
    assert!(!ne_true.contains(&"u002".to_owned()));
    assert_eq!(
        u(cmp("meta.created", Gt, "2026-01-01T00:02:38Z")).await,
        ["u159"]
    );
    // Sub-millisecond operands compare as instants, like the evaluator.
    assert_eq!(
        u(cmp("meta.created", Ge, "2026-01-01T00:02:38.000999Z")).await,
        ["u159"]
    );
    assert_eq!(
        u(cmp("meta.created", Le, "2026-01-01T00:00:01.000999Z")).await,
        ["u000", "u001"]
    );
    assert!(u(cmp("meta.created", Eq, "2026-01-01T00:00:01.5Z"))
        .await
        .is_empty());
    assert_eq!(
        u(cmp("meta.created", Eq, "2026-01-01T01:00:01+01:00")).await,
        ["u001"]
    );
    assert_eq!(u(cmp("meta.resourceType", Eq, "Group")).await.len(), 0);
    let g3: Vec<String> = (0..160)
        .filter(|i| i % 40 == 3 || i % 13 == 3)
        .map(|i| format!("u{i:03}"))
        .collect();
    assert_eq!(u(cmp("groups.value", Eq, "g03")).await, g3);
    assert_eq!(
        u(vp(
            "emails",
            and(cmp("type", Eq, "WORK"), cmp("value", Sw, "u3."))
        ))
        .await,
        ["u003"]
    );
    let g = |f| filtered(s, "t", ResourceKind::Group, f);
    assert_eq!(g(cmp("members.value", Eq, "u013")).await, ["g00", "g13"]);
    assert_eq!(
        g(vp("members", cmp("value", Eq, "u013"))).await,
        ["g00", "g13"]
    );
    assert_eq!(
        g(cmp("displayName", Eq, "group 8")).await,
        ["g08", "g17", "g26", "g35"]
    );
}

/// The full representation the protocol core evaluates filters on: the stored document plus
/// `id`, `meta`, and a Group's `members` or a User's `groups`.
fn representation(r: &StoredResource, members: &[String], groups: &[(String, String)]) -> Value {
    let mut m = match &r.doc {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    m.insert("id".into(), json!(r.id));
    m.insert(
        "meta".into(),
        json!({
            "resourceType": r.kind.as_str(),
            "created": format_datetime(r.created),
            "lastModified": format_datetime(r.last_modified),
            "version": format!("W/\"{}\"", r.version),
        }),
    );
    if !members.is_empty() {
        let v: Vec<Value> = members
            .iter()
            .map(|id| json!({"value": id, "type": "User"}))
            .collect();
        m.insert("members".into(), Value::Array(v));
    }
    if !groups.is_empty() {
        let v: Vec<Value> = groups
            .iter()
            .map(|(id, d)| json!({"value": id, "display": d, "type": "direct"}))
            .collect();
        m.insert("groups".into(), Value::Array(v));
    }
    Value::Object(m)
}

/// Every filter of the filter fixture selects, in creation order, exactly the resources whose
/// representation the protocol core's evaluator ([`scim_proto::filter::ValidFilter::matches`])
/// accepts: however a backend answers a filter (SQL, an index, in memory), it means what
/// RFC 7644 says.
pub async fn filters_agree_with_the_protocol_evaluator(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    fixture(s).await;
    let mut reprs: Vec<(ResourceKind, String, Value)> = Vec::new();
    for kind in [ResourceKind::User, ResourceKind::Group] {
        let page = s.list_resources("t", kind, &all(None)).await.unwrap();
        for r in page.items {
            let (members, groups) = match kind {
                ResourceKind::Group => {
                    let ms = s.list_members("t", &r.id, None, 100_000).await.unwrap();
                    (ms.into_iter().map(|m| m.id).collect(), Vec::new())
                }
                ResourceKind::User => {
                    let gs = s.groups_of_user("t", &r.id).await.unwrap();
                    let gs = gs.into_iter().map(|g| (g.id, g.display_name)).collect();
                    (Vec::new(), gs)
                }
            };
            let repr = representation(&r, &members, &groups);
            reprs.push((kind, r.id, repr));
        }
    }
    let cases = user_filters()
        .into_iter()
        .map(|f| (ResourceKind::User, f))
        .chain(
            group_filters()
                .into_iter()
                .map(|f| (ResourceKind::Group, f)),
        );
    for (kind, f) in cases {
        let vf = valid(f.clone(), kind);
        let want: Vec<&String> = reprs
            .iter()
            .filter(|(k, _, repr)| *k == kind && vf.matches(repr))
            .map(|(_, id, _)| id)
            .collect();
        let page = s.list_resources("t", kind, &all(Some(vf))).await.unwrap();
        let got: Vec<&String> = page.items.iter().map(|r| &r.id).collect();
        assert_eq!(got, want, "filter {f:?}");
        assert_eq!(page.total, want.len() as u64, "filter {f:?}");
    }
}

/// A query answered in memory is refused with [`StoreError::TooMany`] when its SQL superset
/// is larger than `max_candidates`, and says how large it is; one SQL answers exactly is not
/// capped (it reads only its page), and `examined` reports what was evaluated in memory.
pub async fn in_memory_candidates_are_capped(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "t").await;
    for i in 0..5 {
        let mut doc = user_doc(&format!("n{i}"));
        doc["title"] = json!(if i == 3 { "Boss" } else { "Dev" });
        add_user(s, "t", &format!("u{i}"), doc).await;
    }
    let q = |f: Filter, max| ListQuery {
        max_candidates: max,
        filter: Some(valid(f, ResourceKind::User)),
        sort: None,
        page: PageRequest::Index {
            start_index: 1,
            count: 10,
        },
    };
    // `title` has no column: every user of the tenant is a candidate.
    let unindexed = cmp("title", CompareOp::Eq, "Boss");
    match s
        .list_resources("t", ResourceKind::User, &q(unindexed.clone(), Some(4)))
        .await
    {
        Err(StoreError::TooMany { candidates, limit }) => assert_eq!((candidates, limit), (5, 4)),
        other => panic!("expected TooMany, got {other:?}"),
    }
    let p = s
        .list_resources("t", ResourceKind::User, &q(unindexed, Some(5)))
        .await
        .unwrap();
    assert_eq!((p.total, p.items[0].id.as_str(), p.examined), (1, "u3", 5));
    let exact = cmp("userName", CompareOp::Eq, "n2");
    let p = s
        .list_resources("t", ResourceKind::User, &q(exact, Some(1)))
        .await
        .unwrap();
    assert_eq!((p.total, p.examined), (1, 0));
}

/// `startIndex`/`count`: the total, the slice, `startIndex < 1` read as 1, `count = 0` counts
/// only, pages past the end are empty, huge values are no error; the same with a filter that
/// cannot be answered from indexed columns alone.
pub async fn index_pagination(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "t").await;
    for i in 0..25 {
        add_user(s, "t", &format!("u{i:02}"), user_doc(&format!("n{i:02}"))).await;
    }
    let page = |start_index, count| ListQuery {
        max_candidates: None,
        filter: None,
        sort: None,
        page: PageRequest::Index { start_index, count },
    };
    let p = s
        .list_resources("t", ResourceKind::User, &page(1, 10))
        .await
        .unwrap();
    assert_eq!((p.total, p.items.len()), (25, 10));
    assert_eq!(p.items[0].id, "u00");
    let p = s
        .list_resources("t", ResourceKind::User, &page(21, 10))
        .await
        .unwrap();
    assert_eq!(
        p.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["u20", "u21", "u22", "u23", "u24"]
    );
    let p = s
        .list_resources("t", ResourceKind::User, &page(0, 1))
        .await
        .unwrap();
    assert_eq!(p.items[0].id, "u00", "startIndex < 1 is 1");
    let p = s
        .list_resources("t", ResourceKind::User, &page(5, 0))
        .await
        .unwrap();
    assert_eq!((p.total, p.items.len()), (25, 0));
    let p = s
        .list_resources("t", ResourceKind::User, &page(100, 10))
        .await
        .unwrap();
    assert_eq!((p.total, p.items.len()), (25, 0));
    let p = s
        .list_resources("t", ResourceKind::User, &page(u64::MAX, u64::MAX))
        .await
        .unwrap();
    assert_eq!((p.total, p.items.len()), (25, 0));
    // Same with a filter on an attribute that is not indexed.
    let mut q = page(21, 10);
    q.filter = Some(valid(
        cmp("nickName", CompareOp::Eq, "x"),
        ResourceKind::User,
    ));
    let _ = s.list_resources("t", ResourceKind::User, &q).await.unwrap();
}

/// Sorting: missing values last ascending and first descending, case-insensitive strings,
/// multi-valued attributes by their primary (else first) value, creation order by default.
pub async fn sort_puts_missing_values_last_ascending_first_descending(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "t").await;
    add_user(
        s,
        "t",
        "u1",
        json!({"userName": "a", "displayName": "Zed", "title": "b"}),
    )
    .await;
    add_user(s, "t", "u2", json!({"userName": "b"})).await;
    add_user(
        s,
        "t",
        "u3",
        json!({"userName": "c", "displayName": "adam", "title": "A"}),
    )
    .await;
    add_user(s, "t", "u4", json!({"userName": "d", "displayName": "Bob", "emails": [{"value": "z@x"}, {"value": "a@x", "primary": true}]})).await;
    add_user(
        s,
        "t",
        "u5",
        json!({"userName": "e", "emails": [{"value": "m@x"}]}),
    )
    .await;
    let q = |sort| ListQuery {
        max_candidates: None,
        filter: None,
        sort,
        page: PageRequest::Index {
            start_index: 1,
            count: 100,
        },
    };
    assert_eq!(
        ids(s, "t", ResourceKind::User, &q(sorted("displayName", false))).await,
        ["u3", "u4", "u1", "u2", "u5"]
    );
    assert_eq!(
        ids(s, "t", ResourceKind::User, &q(sorted("displayName", true))).await,
        ["u5", "u2", "u1", "u4", "u3"]
    );
    // `title` is not indexed; caseExact=false sorts folded.
    assert_eq!(
        ids(s, "t", ResourceKind::User, &q(sorted("title", false))).await,
        ["u3", "u1", "u2", "u4", "u5"]
    );
    assert_eq!(
        ids(s, "t", ResourceKind::User, &q(sorted("title", true))).await,
        ["u5", "u4", "u2", "u1", "u3"]
    );
    // Multi-valued: the primary value, else the first.
    assert_eq!(
        ids(s, "t", ResourceKind::User, &q(sorted("emails", false))).await,
        ["u4", "u5", "u1", "u2", "u3"]
    );
    assert_eq!(
        ids(
            s,
            "t",
            ResourceKind::User,
            &q(sorted("emails.value", false))
        )
        .await,
        ["u4", "u5", "u1", "u2", "u3"]
    );
    assert_eq!(
        ids(s, "t", ResourceKind::User, &q(sorted("userName", true))).await,
        ["u5", "u4", "u3", "u2", "u1"]
    );
    assert_eq!(
        ids(s, "t", ResourceKind::User, &q(None)).await,
        ["u1", "u2", "u3", "u4", "u5"]
    );
}

/// Walks every cursor page, applying `between` after each page.
async fn walk(
    s: &dyn Store,
    q: ListQuery,
    mut between: impl FnMut(usize) -> Option<(bool, String)>,
) -> Vec<String> {
    let mut q = q;
    let mut seen = Vec::new();
    for round in 0.. {
        let page = s.list_resources("t", ResourceKind::User, &q).await.unwrap();
        seen.extend(page.items.iter().map(|r| r.id.clone()));
        let Some(next) = page.next_cursor else { break };
        assert!(next
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        if let Some((insert, id)) = between(round) {
            if insert {
                add_user(s, "t", &id, user_doc(&id)).await;
            } else {
                s.delete_resource(
                    "t",
                    ResourceKind::User,
                    &id,
                    crate::Deletion::default(),
                    at(1),
                )
                .await
                .unwrap();
            }
        }
        if let PageRequest::Cursor { cursor, .. } = &mut q.page {
            *cursor = Some(next);
        }
    }
    seen
}

/// Cursor pages (RFC 9865) never return a row twice and never skip a row that existed
/// throughout, while rows are inserted and deleted between pages, for every sort; cursors are
/// URL-safe.
pub async fn cursor_pagination_is_stable_under_writes(b: &dyn Backend) {
    for (sort, filter) in [
        (None, None),
        (sorted("userName", false), None),
        (sorted("userName", true), None),
        (sorted("displayName", false), None),
        (sorted("title", true), None),
        (None, Some(cmp("nickName", CompareOp::Ne, "zzz"))),
        (
            sorted("userName", false),
            Some(cmp("title", CompareOp::Ne, "t1")),
        ),
    ] {
        let s = b.fresh().await;
        let s = &*s;
        tenant(s, "t").await;
        for i in 0..40 {
            let mut doc = user_doc(&format!("m{:02}", (i * 7) % 40));
            if i % 3 == 0 {
                doc["displayName"] = json!(format!("d{}", i % 5));
                doc["title"] = json!(format!("t{}", i % 4));
            }
            add_user(s, "t", &format!("u{i:02}"), doc).await;
        }
        let q = ListQuery {
            max_candidates: None,
            filter: filter.clone().map(|f: Filter| valid(f, ResourceKind::User)),
            sort: sort.clone(),
            page: PageRequest::Cursor {
                cursor: None,
                count: 6,
            },
        };
        let first = s.list_resources("t", ResourceKind::User, &q).await.unwrap();
        let mut everything = q.clone();
        everything.page = PageRequest::Index {
            start_index: 1,
            count: 1000,
        };
        let before = ids(s, "t", ResourceKind::User, &everything).await;
        assert_eq!(before.len() as u64, first.total);
        if filter.is_none() {
            assert_eq!(first.total, 40);
        }
        // Between pages: insert new users (some sort before the cursor, some after) and delete
        // users that were not yet seen or already seen.
        let deleted: Vec<String> = ["u05", "u33", "u17", "u38"].map(String::from).to_vec();
        let mut ops = vec![
            (true, "a-new".to_owned()),
            (false, deleted[0].clone()),
            (true, "zz-new".to_owned()),
            (false, deleted[1].clone()),
            (false, deleted[2].clone()),
            (true, "m-new".to_owned()),
            (false, deleted[3].clone()),
        ]
        .into_iter();
        let seen = walk(s, q, |_| ops.next()).await;
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "no row twice ({sort:?}): {seen:?}"
        );
        for id in &before {
            if !deleted.contains(id) {
                assert!(unique.contains(id), "{id} skipped ({sort:?} {filter:?})");
            }
        }
    }
}

/// A cursor is valid only for the query that issued it; junk is `Invalid`; the last page has
/// no next cursor.
pub async fn cursor_belongs_to_its_query(b: &dyn Backend) {
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "t").await;
    for i in 0..5 {
        add_user(s, "t", &format!("u{i}"), user_doc(&format!("n{i}"))).await;
    }
    let q = |sort, cursor| ListQuery {
        max_candidates: None,
        filter: None,
        sort,
        page: PageRequest::Cursor { cursor, count: 2 },
    };
    let p = s
        .list_resources("t", ResourceKind::User, &q(None, None))
        .await
        .unwrap();
    let c = p.next_cursor.unwrap();
    assert!(matches!(
        s.list_resources(
            "t",
            ResourceKind::User,
            &q(sorted("userName", false), Some(c.clone()))
        )
        .await,
        Err(StoreError::Invalid(_))
    ));
    for junk in ["", "zz", "7b7d", &c[..c.len() - 2]] {
        assert!(matches!(
            s.list_resources("t", ResourceKind::User, &q(None, Some(junk.to_owned())))
                .await,
            Err(StoreError::Invalid(_))
        ));
    }
    let p = s
        .list_resources("t", ResourceKind::User, &q(None, Some(c)))
        .await
        .unwrap();
    assert_eq!(
        p.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["u2", "u3"]
    );
    let last = s
        .list_resources("t", ResourceKind::User, &q(None, p.next_cursor))
        .await
        .unwrap();
    assert_eq!(last.items.len(), 1);
    assert_eq!(last.next_cursor, None, "no cursor when nothing follows");
}
