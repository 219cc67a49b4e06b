//! The index behind custom attributes declared `indexed`: built online, kept by writes, and
//! answering filters and sorts exactly as the protocol's evaluator does.

use scim_proto::custom::{CustomAttribute, CustomResource, CustomSchema, CustomType};
use scim_proto::filter::{AttrPath, CompValue, CompareOp, Filter, ValidFilter};
use scim_proto::schema::{ResourceKind, TypeDef};
use serde_json::{json, Value};

use super::support::{add_user, at, new, tenant};
use super::Backend;
use crate::domain::list::representation;
use crate::{
    indexed_attributes, Deletion, IndexState, ListQuery, PageRequest, ResourceUpdate, SortSpec,
    Store, StoreError,
};

const URN: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";

fn attr(name: &str, ty: CustomType, multi: bool, case_exact: bool) -> CustomAttribute {
    CustomAttribute {
        name: name.into(),
        attr_type: ty,
        multi_valued: multi,
        case_exact,
        description: String::new(),
        canonical_values: Vec::new(),
        indexed: true,
    }
}

fn schemas() -> Vec<CustomSchema> {
    vec![CustomSchema {
        urn: URN.into(),
        resource: CustomResource::User,
        name: "Acme".into(),
        description: String::new(),
        attributes: vec![
            attr("costCenter", CustomType::String, false, false),
            attr("badge", CustomType::String, false, true),
            attr("level", CustomType::Integer, false, false),
            attr("score", CustomType::Decimal, false, false),
            attr("remote", CustomType::Boolean, false, false),
            attr("since", CustomType::DateTime, false, false),
            attr("regions", CustomType::String, true, false),
        ],
    }]
}

fn def() -> TypeDef {
    scim_proto::custom::resource_type(ResourceKind::User, &schemas())
}

fn ext(name: &str, op: CompareOp, v: impl Into<Value>) -> Filter {
    let v = match v.into() {
        Value::String(s) => CompValue::Str(s),
        Value::Bool(b) => CompValue::Bool(b),
        Value::Number(n) => CompValue::Number(n),
        _ => CompValue::Null,
    };
    Filter::Compare(path(name), op, v)
}

fn path(name: &str) -> AttrPath {
    AttrPath {
        urn: Some(URN.into()),
        attr: name.into(),
        sub_attr: None,
    }
}

fn valid(f: &Filter) -> ValidFilter {
    f.validate(def()).unwrap()
}

fn query(f: Option<&Filter>, sort: Option<(&str, bool)>, max: Option<u64>) -> ListQuery {
    ListQuery {
        max_candidates: max,
        filter: f.map(valid),
        sort: sort.map(|(name, descending)| SortSpec {
            urn: Some(URN.into()),
            attr: name.into(),
            sub_attr: None,
            descending,
            case_exact: name == "badge",
        }),
        page: PageRequest::Index {
            start_index: 1,
            count: 100_000,
        },
    }
}

/// The user `i` of the fixture: every type, some values absent, empty or of the wrong type.
fn doc(i: usize) -> Value {
    let mut acme = serde_json::Map::new();
    let centers = ["Sales", "sales", "R&D", "Ünïcode", ""];
    if i % 6 != 5 {
        acme.insert("costCenter".into(), json!(centers[i % 5]));
    }
    acme.insert("badge".into(), json!(format!("B{}", i % 4)));
    if !i.is_multiple_of(7) {
        acme.insert("level".into(), json!(i64::try_from(i).unwrap() % 9 - 3));
    }
    acme.insert("remote".into(), json!(i.is_multiple_of(2)));
    if i == 13 {
        acme.insert("remote".into(), json!("yes")); // the wrong type: never matches
    }
    if i.is_multiple_of(3) {
        acme.insert(
            "score".into(),
            json!(f64::from(u32::try_from(i).unwrap()) / 4.0),
        );
    }
    acme.insert(
        "since".into(),
        json!(format!("2026-0{}-01T00:00:00.{:03}Z", 1 + i % 5, i)),
    );
    if i % 4 != 3 {
        acme.insert(
            "regions".into(),
            json!([(["eu", "us", "apac"])[i % 3], (["EU", "latam"])[i % 2]]),
        );
    }
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", URN],
        "userName": format!("c{i:03}"),
        URN: acme,
    })
}

fn filters() -> Vec<Filter> {
    use CompareOp::{Co, Eq, Ew, Ge, Gt, Le, Lt, Ne, Sw};
    vec![
        ext("costCenter", Eq, "SALES"),
        ext("costCenter", Ne, "sales"),
        ext("costCenter", Sw, "r&"),
        ext("costCenter", Co, "NIC"),
        ext("costCenter", Ew, "es"),
        ext("costCenter", Eq, ""),
        ext("costCenter", Eq, Value::Null),
        ext("costCenter", Gt, "s"),
        Filter::Present(path("costCenter")),
        ext("badge", Eq, "b1"),
        ext("badge", Eq, "B1"),
        ext("level", Eq, 3),
        ext("level", Ge, 2),
        ext("level", Lt, -1),
        ext("level", Ne, 0),
        ext("level", Le, 1.5),
        ext("score", Gt, 2),
        ext("score", Le, 2.25),
        ext("score", Ne, 0),
        ext("remote", Eq, true),
        ext("remote", Ne, true),
        ext("since", Ge, "2026-03-01T00:00:00Z"),
        ext("since", Lt, "2026-02-01T00:00:00.0105Z"),
        ext("regions", Eq, "eu"),
        ext("regions", Ne, "LATAM"),
        Filter::Present(path("regions")),
        Filter::Not(Box::new(ext("level", Gt, 0))),
        Filter::Or(
            Box::new(ext("level", Eq, 2)),
            Box::new(ext("costCenter", Eq, "r&d")),
        ),
        Filter::And(
            Box::new(ext("remote", Eq, false)),
            Box::new(ext("score", Ge, 1)),
        ),
    ]
}

/// Whether SQL answers `f` exactly (no in-memory evaluation) once indexed.
fn exact(f: &Filter) -> bool {
    !format!("{f:?}").contains("\"score\"")
        && !matches!(f, Filter::Compare(_, _, CompValue::Number(n)) if n.as_i64().is_none() && n.as_u64().is_none())
}

async fn evaluated(s: &dyn Store, f: &Filter) -> Vec<String> {
    let vf = valid(f);
    let page = s
        .list_resources("t", ResourceKind::User, &query(None, None, None))
        .await
        .unwrap();
    page.items
        .iter()
        .filter(|r| vf.matches(&representation(r, None, Some(&[]))))
        .map(|r| r.id.clone())
        .collect()
}

async fn listed(s: &dyn Store, q: &ListQuery) -> Result<(Vec<String>, u64, u64), StoreError> {
    let page = s.list_resources("t", ResourceKind::User, q).await?;
    let ids = page.items.into_iter().map(|r| r.id).collect();
    Ok((ids, page.total, page.examined))
}

async fn build(s: &dyn Store) {
    s.sync_custom_indexes("t", &indexed_attributes(&schemas()), false)
        .await
        .unwrap();
    let mut steps = 0;
    while s.backfill_custom_index("t", 7).await.unwrap() > 0 {
        steps += 1;
        assert!(steps < 100, "the backfill does not end");
    }
    let states: Vec<IndexState> = s
        .custom_indexes("t")
        .await
        .unwrap()
        .iter()
        .map(|ix| ix.state)
        .collect();
    assert_eq!(states, vec![IndexState::Ready; 7]);
}

/// Declared on a tenant with data, an index is built by the backfill while the filters keep
/// their in-memory answers; ready, it answers every comparison, `pr`, `not`, `and`/`or` and
/// every type exactly as the evaluator does, without evaluating in memory (decimals are
/// narrowed by the index and re-checked); sorts on it agree with the in-memory sort, also
/// page by page with cursors.
pub async fn custom_indexes_answer_like_the_evaluator(b: &dyn Backend) {
    use CompareOp::Ge;
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "t").await;
    for i in 0..40 {
        add_user(s, "t", &format!("u{i:02}"), doc(i)).await;
    }
    let level = ext("level", Ge, 2);
    let capped = query(Some(&level), None, Some(5));
    assert!(matches!(
        listed(s, &capped).await,
        Err(StoreError::TooMany { .. })
    ));
    let sorts = [
        ("costCenter", false),
        ("badge", true),
        ("level", false),
        ("level", true),
        ("score", false),
        ("since", false),
        ("regions", false),
    ];
    let mut in_memory = Vec::new();
    for sort in sorts {
        in_memory.push(listed(s, &query(None, Some(sort), None)).await.unwrap().0);
    }

    assert!(s
        .sync_custom_indexes("t", &indexed_attributes(&schemas()), false)
        .await
        .unwrap());
    assert!(!s
        .sync_custom_indexes("t", &indexed_attributes(&schemas()), false)
        .await
        .unwrap());
    let ix = s.custom_indexes("t").await.unwrap();
    assert_eq!(ix.len(), 7);
    assert!(ix.iter().all(|ix| ix.state == IndexState::Building));
    // Building: not used yet.
    assert_eq!(s.building_custom_indexes().await.unwrap(), ["t"]);
    assert!(matches!(
        listed(s, &capped).await,
        Err(StoreError::TooMany { .. })
    ));
    build(s).await;
    assert!(s.building_custom_indexes().await.unwrap().is_empty());

    let mut telling = 0;
    for f in filters() {
        let want = evaluated(s, &f).await;
        telling += usize::from(!want.is_empty() && want.len() < 40);
        let (got, total, examined) = listed(s, &query(Some(&f), None, None)).await.unwrap();
        assert_eq!(got, want, "{f}");
        assert_eq!(total, want.len() as u64, "{f}");
        if exact(&f) {
            assert_eq!(examined, 0, "{f} was evaluated in memory");
        }
    }
    // Not a vacuous comparison: nearly every filter selects some users, not all.
    assert!(telling >= filters().len() - 2, "{telling}");
    assert_eq!(listed(s, &capped).await.unwrap().2, 0);
    for (sort, want) in sorts.iter().zip(&in_memory) {
        let (got, _, examined) = listed(s, &query(None, Some(*sort), None)).await.unwrap();
        assert_eq!(&got, want, "sorted by {sort:?}");
        assert_eq!(examined, 0, "sorted by {sort:?} in memory");
        // Cursor pages of 6 give the same order.
        let mut paged = Vec::new();
        let mut cursor = None;
        loop {
            let mut q = query(None, Some(*sort), None);
            q.page = PageRequest::Cursor {
                cursor: cursor.clone(),
                count: 6,
            };
            let page = s.list_resources("t", ResourceKind::User, &q).await.unwrap();
            paged.extend(page.items.into_iter().map(|r| r.id));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(&paged, want, "cursor pages sorted by {sort:?}");
    }
}

/// Every write keeps the index: a create, a replace that changes or removes values, a
/// deprovisioning; a value too long to be an index key is refused; an index no longer declared
/// goes with its rows, and filters evaluate in memory again.
pub async fn custom_indexes_follow_writes(b: &dyn Backend) {
    use CompareOp::{Eq, Ge};
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "t").await;
    for i in 0..10 {
        add_user(s, "t", &format!("u{i:02}"), doc(i)).await;
    }
    build(s).await;
    let check = |f: Filter| async move {
        let want = evaluated(s, &f).await;
        let (got, _, examined) = listed(s, &query(Some(&f), None, None)).await.unwrap();
        assert_eq!(got, want, "{f}");
        assert_eq!(examined, 0, "{f}");
        got
    };
    // A create after the build.
    let mut d = doc(50);
    d[URN]["costCenter"] = json!("Legal");
    add_user(s, "t", "n1", d).await;
    assert_eq!(check(ext("costCenter", Eq, "legal")).await, ["n1"]);
    // A replace that changes one value and removes another.
    let cur = s
        .get_resource("t", ResourceKind::User, "u02")
        .await
        .unwrap()
        .unwrap();
    let mut d = cur.doc.clone();
    d[URN]["costCenter"] = json!("LEGAL");
    d[URN].as_object_mut().unwrap().remove("regions");
    let update = ResourceUpdate {
        doc: d,
        password_hash: None,
        members: vec![],
        events: vec![],
        guard: None,
    };
    s.update_resource("t", ResourceKind::User, "u02", cur.version, update, at(100))
        .await
        .unwrap();
    assert_eq!(check(ext("costCenter", Eq, "legal")).await, ["u02", "n1"]);
    assert!(!check(Filter::Present(path("regions")))
        .await
        .contains(&"u02".to_owned()));
    // A deprovisioned user leaves the answers.
    let deletion = Deletion {
        expected_version: None,
        guard: None,
    };
    s.delete_resource("t", ResourceKind::User, "n1", deletion, at(101))
        .await
        .unwrap();
    assert_eq!(check(ext("costCenter", Eq, "legal")).await, ["u02"]);
    check(ext("level", Ge, 0)).await;
    // Too long to index: refused, nothing written.
    let mut d = doc(60);
    d[URN]["costCenter"] = json!("x".repeat(crate::domain::MAX_INDEXED_BYTES + 1));
    let err = s
        .create_resource("t", ResourceKind::User, new("long", d), at(102))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.contains("costCenter")),
        "{err:?}"
    );
    assert!(s
        .get_resource("t", ResourceKind::User, "long")
        .await
        .unwrap()
        .is_none());
    // No longer declared: gone, and the filter is evaluated in memory again.
    let mut fewer = schemas();
    fewer[0].attributes.retain(|a| a.name != "costCenter");
    assert!(s
        .sync_custom_indexes("t", &indexed_attributes(&fewer), false)
        .await
        .unwrap());
    assert_eq!(s.custom_indexes("t").await.unwrap().len(), 6);
    let f = ext("costCenter", Eq, "legal");
    let (got, _, examined) = listed(s, &query(Some(&f), None, None)).await.unwrap();
    assert_eq!(got, ["u02"]);
    assert!(examined > 0);
}

/// A stored value too long to be an index key fails the build (the index is not used, and says
/// how many values it could not index); once the value is shortened, a retry builds it.
pub async fn an_index_over_values_too_long_fails_until_they_are_shortened(b: &dyn Backend) {
    use CompareOp::Eq;
    let s = b.fresh().await;
    let s = &*s;
    tenant(s, "t").await;
    let mut d = doc(1);
    d[URN]["costCenter"] = json!("y".repeat(crate::domain::MAX_INDEXED_BYTES + 1));
    add_user(s, "t", "long", d).await;
    add_user(s, "t", "short", doc(2)).await;
    s.sync_custom_indexes("t", &indexed_attributes(&schemas()), false)
        .await
        .unwrap();
    while s.backfill_custom_index("t", 10).await.unwrap() > 0 {}
    let cc = |ix: &[crate::CustomIndex]| {
        ix.iter()
            .find(|ix| ix.spec.name == "costCenter")
            .map(|ix| (ix.state, ix.failed_values))
    };
    let ix = s.custom_indexes("t").await.unwrap();
    assert_eq!(cc(&ix), Some((IndexState::Failed, 1)));
    assert_eq!(
        ix.iter().filter(|ix| ix.state == IndexState::Ready).count(),
        6
    );
    // Failed: not used (evaluated in memory).
    let f = ext("costCenter", Eq, "r&d");
    let (_, _, examined) = listed(s, &query(Some(&f), None, None)).await.unwrap();
    assert!(examined > 0);
    // A reconciliation leaves it; a retry after the value was shortened builds it.
    assert!(!s
        .sync_custom_indexes("t", &indexed_attributes(&schemas()), false)
        .await
        .unwrap());
    let cur = s
        .get_resource("t", ResourceKind::User, "long")
        .await
        .unwrap()
        .unwrap();
    let mut d = cur.doc.clone();
    d[URN]["costCenter"] = json!("R&D");
    let update = ResourceUpdate {
        doc: d,
        password_hash: None,
        members: vec![],
        events: vec![],
        guard: None,
    };
    s.update_resource("t", ResourceKind::User, "long", cur.version, update, at(5))
        .await
        .unwrap();
    assert!(s
        .sync_custom_indexes("t", &indexed_attributes(&schemas()), true)
        .await
        .unwrap());
    while s.backfill_custom_index("t", 10).await.unwrap() > 0 {}
    assert_eq!(
        cc(&s.custom_indexes("t").await.unwrap()),
        Some((IndexState::Ready, 0))
    );
    let (got, _, examined) = listed(s, &query(Some(&f), None, None)).await.unwrap();
    assert_eq!(got, evaluated(s, &f).await);
    assert!(got.contains(&"long".to_owned()));
    assert_eq!(examined, 0);
}
