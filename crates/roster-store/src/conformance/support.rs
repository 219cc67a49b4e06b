//! Helpers the conformance tests share (and a backend's own tests may use): a fixed clock,
//! tenants, users and groups, filter builders, and the filter fixture.

use scim_proto::filter::{AttrPath, CompValue, CompareOp, Filter, ValidFilter};
use scim_proto::schema::{ResourceKind, USER_SCHEMA};
use serde_json::{json, Value};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::{
    CreateOutcome, Event, ListQuery, NewResource, PageRequest, SortSpec, Store, StoredResource,
    Tenant, TenantSettings,
};

/// The tests' epoch.
pub const T0: OffsetDateTime = datetime!(2026-01-01 00:00:00 UTC);

/// `secs` seconds after [`T0`]: the tests pass time as a parameter, never read a clock.
#[must_use]
pub fn at(secs: i64) -> OffsetDateTime {
    T0 + Duration::seconds(secs)
}

/// Creates tenant `id` with default settings.
pub async fn tenant(s: &dyn Store, id: &str) {
    tenant_with(s, id, TenantSettings::default()).await;
}

/// Creates tenant `id` with `settings`.
pub async fn tenant_with(s: &dyn Store, id: &str, settings: TenantSettings) {
    s.create_tenant(&Tenant {
        id: id.into(),
        name: format!("Tenant {id}"),
        idp: "generic".into(),
        created_at: T0,
        settings,
    })
    .await
    .unwrap();
}

/// An active User document.
#[must_use]
pub fn user_doc(user_name: &str) -> Value {
    json!({"schemas": [USER_SCHEMA], "userName": user_name, "active": true})
}

/// A resource to create, without password, members or events.
#[must_use]
pub fn new(id: &str, doc: Value) -> NewResource {
    NewResource {
        id: id.into(),
        doc,
        password_hash: None,
        members: vec![],
        events: vec![],
    }
}

/// Creates a User at [`T0`]; panics unless it is new.
pub async fn add_user(s: &dyn Store, t: &str, id: &str, doc: Value) -> StoredResource {
    match s
        .create_resource(t, ResourceKind::User, new(id, doc), at(0))
        .await
        .unwrap()
    {
        CreateOutcome::Created(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

/// Creates a Group at [`T0`] with these members.
pub async fn add_group(s: &dyn Store, t: &str, id: &str, name: &str, members: &[&str]) {
    let mut n = new(id, json!({"displayName": name}));
    n.members = members.iter().map(|m| (*m).to_owned()).collect();
    s.create_resource(t, ResourceKind::Group, n, at(0))
        .await
        .unwrap();
}

/// An attribute path; `a.b` is attribute `a`, sub-attribute `b`.
#[must_use]
pub fn p(attr: &str) -> AttrPath {
    let (attr, sub) = match attr.split_once('.') {
        Some((a, s)) => (a, Some(s.to_owned())),
        None => (attr, None),
    };
    AttrPath {
        urn: None,
        attr: attr.into(),
        sub_attr: sub,
    }
}

/// `attr op value`.
pub fn cmp(attr: &str, op: CompareOp, v: impl Into<Value>) -> Filter {
    let v = match v.into() {
        Value::String(s) => CompValue::Str(s),
        Value::Bool(b) => CompValue::Bool(b),
        Value::Number(n) => CompValue::Number(n),
        _ => CompValue::Null,
    };
    Filter::Compare(p(attr), op, v)
}

/// `a and b`.
#[must_use]
pub fn and(a: Filter, b: Filter) -> Filter {
    Filter::And(Box::new(a), Box::new(b))
}

/// `a or b`.
#[must_use]
pub fn or(a: Filter, b: Filter) -> Filter {
    Filter::Or(Box::new(a), Box::new(b))
}

/// `not (a)`.
#[must_use]
pub fn not(a: Filter) -> Filter {
    Filter::Not(Box::new(a))
}

/// `attr[inner]`.
#[must_use]
pub fn vp(attr: &str, inner: Filter) -> Filter {
    Filter::ValuePath(p(attr), Box::new(inner))
}

/// `f`, validated for `kind`.
#[must_use]
pub fn valid(f: Filter, kind: ResourceKind) -> ValidFilter {
    f.validate(kind.def()).unwrap()
}

/// Everything that matches `filter`, in one page.
#[must_use]
pub fn all(filter: Option<ValidFilter>) -> ListQuery {
    ListQuery {
        max_candidates: None,
        filter,
        sort: None,
        page: PageRequest::Index {
            start_index: 1,
            count: 100_000,
        },
    }
}

/// A sort on `attr` (`a.b` for a sub-attribute).
#[must_use]
pub fn sorted(attr: &str, descending: bool) -> Option<SortSpec> {
    let (attr, sub) = match attr.split_once('.') {
        Some((a, s)) => (a.to_owned(), Some(s.to_owned())),
        None => (attr.to_owned(), None),
    };
    Some(SortSpec {
        urn: None,
        attr,
        sub_attr: sub,
        descending,
        case_exact: false,
    })
}

/// The ids of the page `q` selects.
pub async fn ids(s: &dyn Store, t: &str, kind: ResourceKind, q: &ListQuery) -> Vec<String> {
    s.list_resources(t, kind, q)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|r| r.id)
        .collect()
}

/// The ids of every resource of `kind` that `f` selects.
pub async fn filtered(s: &dyn Store, t: &str, kind: ResourceKind, f: Filter) -> Vec<String> {
    ids(s, t, kind, &all(Some(valid(f, kind)))).await
}

/// Every event of tenant `t`.
pub async fn events_of(s: &dyn Store, t: &str) -> Vec<Event> {
    s.list_events(t, 0, &[], 100_000).await.unwrap()
}

/// The types of `events`, in order.
#[must_use]
pub fn types_of(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

/// Tenant `t` (and a `noise` tenant with some of the same users) with 160 users and 40 groups
/// of varied attributes, for the filter tests, plus a deprovisioned user whose email and group
/// rows must never surface.
pub async fn fixture(s: &dyn Store) {
    tenant(s, "t").await;
    tenant(s, "noise").await;
    let types = ["work", "home", "WORK", "other"];
    for i in 0..160_i64 {
        let mut doc = json!({
            "schemas": [USER_SCHEMA],
            "userName": format!("{}User{i:03}", if i % 3 == 0 { "A" } else { "b" }),
        });
        let m = doc.as_object_mut().unwrap();
        if i % 2 == 0 {
            m.insert("displayName".into(), json!(format!("Name {} {i}", i % 7)));
        } else if i % 5 == 0 {
            m.insert("displayName".into(), json!(""));
        }
        if i % 4 != 1 {
            m.insert("active".into(), json!(i % 5 != 0));
        }
        if i % 3 != 2 {
            m.insert("externalId".into(), json!(format!("Ext-{i}")));
        }
        if i % 6 == 0 {
            m.insert(
                "title".into(),
                json!(if i % 12 == 0 { "Boss" } else { "staff" }),
            );
        }
        let emails: Vec<Value> = (0..(i % 4))
            .map(|k| {
                let mut e = json!({"value": format!("U{i}.{k}@Example.COM"), "type": types[usize::try_from((i + k) % 4).unwrap()]});
                if k == 1 {
                    e["primary"] = json!(i % 2 == 0);
                }
                e
            })
            .collect();
        if !emails.is_empty() {
            m.insert("emails".into(), Value::Array(emails));
        }
        s.create_resource(
            "t",
            ResourceKind::User,
            new(&format!("u{i:03}"), doc.clone()),
            at(i),
        )
        .await
        .unwrap();
        if i % 10 == 0 {
            s.create_resource(
                "noise",
                ResourceKind::User,
                new(&format!("u{i:03}"), doc),
                at(i),
            )
            .await
            .unwrap();
        }
    }
    for g in 0..40_i64 {
        let members: Vec<String> = (0..160)
            .filter(|i| i % 40 == g || i % 13 == g)
            .map(|i| format!("u{i:03}"))
            .collect();
        let mut n = new(
            &format!("g{g:02}"),
            json!({"displayName": format!("Group {}", g % 9)}),
        );
        n.members = members;
        s.create_resource("t", ResourceKind::Group, n, at(1000 + g))
            .await
            .unwrap();
    }
    // A deprovisioned user whose email and group rows must never surface.
    let ghost = json!({"userName": "AUser003x", "emails": [{"value": "u6.1@example.com"}]});
    add_user(s, "t", "u900", ghost).await;
    let g3 = s
        .get_resource("t", ResourceKind::Group, "g03")
        .await
        .unwrap()
        .unwrap();
    let add = crate::ResourceUpdate {
        doc: g3.doc,
        password_hash: None,
        members: vec![crate::MemberOp::Add(vec!["u900".into()])],
        events: vec![],
        guard: None,
    };
    s.update_resource("t", ResourceKind::Group, "g03", g3.version, add, at(2000))
        .await
        .unwrap();
    s.delete_resource(
        "t",
        ResourceKind::User,
        "u900",
        crate::Deletion::default(),
        at(2001),
    )
    .await
    .unwrap();
}

/// The user filters of the filter tests: indexed and not, exact and partial translations.
#[must_use]
pub fn user_filters() -> Vec<Filter> {
    use CompareOp::{Co, Eq, Ew, Ge, Gt, Le, Lt, Ne, Sw};
    vec![
        cmp("userName", Eq, "auser003"),
        cmp("userName", Ne, "AUSER003"),
        cmp("userName", Sw, "a"),
        cmp("userName", Ew, "9"),
        cmp("userName", Co, "USER01"),
        cmp("userName", Co, ""),
        cmp("userName", Gt, "buser100"),
        cmp("userName", Le, "auser050"),
        cmp("id", Eq, "u007"),
        cmp("externalId", Eq, "Ext-4"),
        cmp("externalId", Eq, "ext-4"),
        cmp("externalId", Ne, "Ext-4"),
        Filter::Present(p("externalId")),
        Filter::Present(p("displayName")),
        cmp("displayName", Sw, "name 3"),
        cmp("active", Eq, true),
        cmp("active", Ne, true),
        not(cmp("active", Eq, false)),
        cmp("meta.created", Gt, "2026-01-01T00:01:00Z"),
        cmp("meta.lastModified", Le, "2026-01-01T00:00:30.000Z"),
        cmp("meta.resourceType", Eq, "User"),
        cmp("emails.value", Eq, "u5.1@example.com"),
        cmp("emails.value", Ne, "u5.1@example.com"),
        cmp("emails.value", Co, "u1"),
        cmp("emails.type", Eq, "work"),
        Filter::Present(p("emails.value")),
        vp(
            "emails",
            and(cmp("type", Eq, "work"), cmp("value", Sw, "u1")),
        ),
        vp(
            "emails",
            or(cmp("primary", Eq, true), not(cmp("type", Eq, "home"))),
        ),
        cmp("groups.value", Eq, "g03"),
        cmp("groups.display", Eq, "group 4"),
        or(cmp("userName", Sw, "a"), cmp("displayName", Co, "5")),
        and(cmp("active", Eq, true), not(cmp("emails.type", Eq, "home"))),
        // Untranslatable parts: `title` is not indexed.
        cmp("title", Eq, "boss"),
        and(Filter::Present(p("title")), cmp("userName", Sw, "a")),
        or(cmp("title", Eq, "staff"), cmp("id", Eq, "u001")),
        not(and(cmp("title", Eq, "boss"), cmp("active", Eq, true))),
        cmp("displayName", Eq, Value::Null),
        cmp("displayName", Ne, Value::Null),
        cmp("externalId", Eq, Value::Null),
        cmp("active", Eq, Value::Null),
        Filter::Present(p("emails")),
        Filter::Present(p("groups")),
        cmp("emails", Co, "U1"),
        cmp("emails.primary", Eq, true),
        cmp("emails.primary", Ne, true),
        vp("emails", not(Filter::Present(p("primary")))),
        vp("emails", cmp("value", Ne, "u2.0@example.com")),
        cmp("meta.created", Ge, "2026-01-01T00:00:10.0005Z"),
        cmp("meta.created", Lt, "2026-01-01T00:00:10.0005Z"),
        cmp("meta.created", Eq, "2026-01-01T00:00:10Z"),
        cmp("meta.lastModified", Ne, "2026-01-01T00:00:10.000Z"),
        cmp("meta.resourceType", Co, "se"),
        cmp("id", Gt, "u150"),
        cmp("displayName", Ew, ""),
        cmp("schemas", Eq, USER_SCHEMA),
        not(or(
            cmp("userName", Sw, "b"),
            Filter::Present(p("emails.type")),
        )),
    ]
}

/// The group filters of the filter tests.
#[must_use]
pub fn group_filters() -> Vec<Filter> {
    use CompareOp::{Eq, Ew, Gt, Ne, Sw};
    vec![
        cmp("displayName", Eq, "GROUP 3"),
        cmp("members.value", Eq, "u013"),
        cmp("members.value", Ne, "u013"),
        vp("members", cmp("value", Sw, "u15")),
        Filter::Present(p("members")),
        and(
            cmp("displayName", Ew, "1"),
            cmp("members.value", Eq, "u001"),
        ),
        cmp("members.type", Eq, "User"),
        Filter::Present(p("members")),
        not(Filter::Present(p("members.value"))),
        cmp("members", Eq, "u026"),
        cmp("meta.lastModified", Gt, "2026-01-01T00:30:00Z"),
    ]
}
