//! Listing resources: the plan (filter translation, sort, keyset cursor) and, for what SQL
//! cannot express exactly, the in-memory evaluation, sorting and paging of the SQL superset.

use std::collections::HashMap;

use scim_proto::filter::format_datetime;
use scim_proto::schema::ResourceKind;
use serde_json::{json, Map, Value};

use super::custom_index::{IndexSpec, IndexState};
use super::query::{
    cmp_keys, decode_cursor, encode_cursor, mentions, mentions_extension, query_hash, CursorPos,
    Fragment, Key, SortPlan, Translator,
};
use super::rows::Where;
use super::Rows;
use crate::{ListQuery, Page, PageRequest, StoreError, StoreResult, StoredResource};

/// The full representation the in-memory filter evaluator sees: the document plus `id`,
/// `meta`, and `members` / `groups` when given.
#[must_use]
pub fn representation(
    r: &StoredResource,
    members: Option<&[String]>,
    groups: Option<&[(String, String)]>,
) -> Value {
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
    if let Some(ms) = members.filter(|ms| !ms.is_empty()) {
        let v: Vec<Value> = ms
            .iter()
            .map(|id| json!({"value": id, "type": "User"}))
            .collect();
        m.insert("members".into(), Value::Array(v));
    }
    if let Some(gs) = groups.filter(|gs| !gs.is_empty()) {
        let v: Vec<Value> = gs
            .iter()
            .map(|(id, d)| json!({"value": id, "display": d, "type": "direct"}))
            .collect();
        m.insert("groups".into(), Value::Array(v));
    }
    Value::Object(m)
}

/// A page of the tenant's live managed resources of `kind` (in the caller's read transaction,
/// so that the count, the page and what the caller reads next see one snapshot).
///
/// A filter that SQL expresses exactly and a sort on an indexed column run as SQL: a count and
/// one page (an offset page, or a keyset page after the cursor's position). Otherwise the SQL
/// superset is read, evaluated, sorted and paged here. `force_memory` takes the in-memory path
/// for any filter (tests compare both). A cursor belongs to one query: its hash covers the
/// tenant, kind, filter, sort and path.
#[allow(clippy::too_many_lines)] // One flow: plan, then the SQL or the in-memory path.
pub async fn list<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    kind: ResourceKind,
    query: &ListQuery,
    force_memory: bool,
) -> StoreResult<Page> {
    if let Some(f) = &query.filter {
        if f.kind() != kind {
            return Err(StoreError::Invalid(
                "the filter was validated for another resource type".to_owned(),
            ));
        }
    }
    let filter = query.filter.as_ref().map(|f| f.filter());
    // Only an extension attribute can be custom: the tenant's ready indexes are read then.
    let extension = filter.is_some_and(mentions_extension)
        || query.sort.as_ref().is_some_and(|s| s.urn.is_some());
    let custom: Vec<IndexSpec> = if extension {
        rows.custom_indexes(tenant)
            .await?
            .into_iter()
            .filter(|ix| ix.state == IndexState::Ready && ix.spec.kind == kind)
            .map(|ix| ix.spec)
            .collect()
    } else {
        Vec::new()
    };
    let frag = match filter {
        Some(_) if force_memory => Fragment {
            sql: "TRUE".to_owned(),
            args: vec![],
            exact: false,
        },
        Some(f) => Translator {
            tenant,
            kind,
            dialect: rows.dialect(),
            custom: &custom,
        }
        .translate(f),
        None => Fragment {
            sql: "TRUE".to_owned(),
            args: vec![],
            exact: true,
        },
    };
    let plan = SortPlan::new(kind, query.sort.as_ref(), &custom);
    let memory = !frag.exact || matches!(plan, SortPlan::Memory { .. });
    // Only a cursor page needs the query's fingerprint (a digest of the filter's text): an
    // index page skips it.
    let hash = matches!(query.page, PageRequest::Cursor { .. })
        .then(|| query_hash(tenant, kind, filter, &plan, memory))
        .unwrap_or_default();
    let position = match &query.page {
        PageRequest::Cursor {
            cursor: Some(c), ..
        } => Some(decode_cursor(c, &hash)?),
        _ => None,
    };
    let exact = frag.exact;
    let w = Where::new(tenant, kind, frag.sql, frag.args);

    if !memory {
        // The page first; the count only when the page cannot tell it. A page that ends before
        // it is full, read from the first row (or with rows of its own after an offset), holds
        // the rest of the result: its total is its offset plus its rows, in the same snapshot.
        // Most lookups by an identity provider (`userName eq`, `externalId eq`) are such a page,
        // and skip the `COUNT`.
        return match &query.page {
            PageRequest::Index { start_index, count } => {
                let offset = start_index.max(&1) - 1;
                let items = if *count > 0 {
                    rows.page_where(&w, &plan.order_by(), *count, offset)
                        .await?
                } else {
                    Vec::new()
                };
                let n = items.len() as u64;
                let total = if n < *count && (offset == 0 || n > 0) {
                    offset + n
                } else {
                    rows.count_where(&w).await?
                };
                Ok(Page {
                    total,
                    items,
                    next_cursor: None,
                    examined: 0,
                })
            }
            PageRequest::Cursor { count, .. } => {
                // After the cursor's position; the total counts the whole result (`w`).
                let after = match &position {
                    Some(pos) => {
                        let (cond, cargs) = plan.after(pos.key.as_ref(), pos.pk)?;
                        Some(w.clone().and(&cond, cargs))
                    }
                    None => None,
                };
                let paged = after.as_ref().unwrap_or(&w);
                let key = match &plan {
                    SortPlan::Column { expr, int, .. } => Some((expr.as_ref(), *int)),
                    _ => None,
                };
                let mut items = Vec::new();
                let mut last = None;
                let mut more = false;
                if *count > 0 {
                    let found = rows
                        .keyset_page(paged, key, &plan.order_by(), count.saturating_add(1))
                        .await?;
                    more = found.len() as u64 > *count;
                    for (key, pk, res) in found
                        .into_iter()
                        .take(usize::try_from(*count).unwrap_or(usize::MAX))
                    {
                        last = Some((key, pk));
                        items.push(res);
                    }
                }
                let total = if position.is_none() && !more && *count > 0 {
                    items.len() as u64
                } else {
                    rows.count_where(&w).await?
                };
                let next_cursor = match (more, last) {
                    (true, Some((key, pk))) => Some(encode_cursor(&CursorPos { key, pk, hash })?),
                    _ => None,
                };
                Ok(Page {
                    total,
                    items,
                    next_cursor,
                    examined: 0,
                })
            }
        };
    }

    // In-memory path: fetch the SQL superset, evaluate, sort and page here; counted first, so
    // that a superset over the cap is refused before it is read into memory.
    let examined = rows.count_where(&w).await?;
    if let Some(limit) = query.max_candidates.filter(|l| examined > *l) {
        return Err(StoreError::TooMany {
            candidates: examined,
            limit,
        });
    }
    let candidates = rows.candidates(&w).await?;
    let sort_attr = query
        .sort
        .as_ref()
        .filter(|s| s.urn.is_none())
        .map(|s| s.attr.as_str());
    let wants = |attr: &str| filter.is_some_and(|f| mentions(f, attr)) || sort_attr == Some(attr);
    let mut members: HashMap<i64, Vec<String>> = HashMap::new();
    let mut groups: HashMap<i64, Vec<(String, String)>> = HashMap::new();
    if kind == ResourceKind::Group && wants("members") {
        for (g, m) in rows.candidate_members(&w).await? {
            members.entry(g).or_default().push(m);
        }
    }
    if kind == ResourceKind::User && wants("groups") {
        for (u, id, display) in rows.candidate_groups(&w).await? {
            groups.entry(u).or_default().push((id, display));
        }
    }
    let check = query.filter.as_ref().filter(|_| !exact);
    let mut matched: Vec<(Option<Key>, i64, StoredResource)> = Vec::new();
    for (pk, res) in candidates {
        let repr = representation(
            &res,
            (kind == ResourceKind::Group).then(|| members.get(&pk).map_or(&[][..], Vec::as_slice)),
            (kind == ResourceKind::User).then(|| groups.get(&pk).map_or(&[][..], Vec::as_slice)),
        );
        if check.is_some_and(|f| !f.matches(&repr)) {
            continue;
        }
        matched.push((plan.key_of(&repr), pk, res));
    }
    let desc = plan.descending();
    let order = |a: (Option<&Key>, i64), b: (Option<&Key>, i64)| {
        let o = cmp_keys(a.0, b.0).then(a.1.cmp(&b.1));
        if desc {
            o.reverse()
        } else {
            o
        }
    };
    matched.sort_by(|a, b| order((a.0.as_ref(), a.1), (b.0.as_ref(), b.1)));
    let total = matched.len() as u64;
    match &query.page {
        PageRequest::Index { start_index, count } => {
            let skip = usize::try_from(start_index.max(&1) - 1).unwrap_or(usize::MAX);
            let take = usize::try_from(*count).unwrap_or(usize::MAX);
            Ok(Page {
                total,
                items: matched
                    .into_iter()
                    .skip(skip)
                    .take(take)
                    .map(|m| m.2)
                    .collect(),
                next_cursor: None,
                examined,
            })
        }
        PageRequest::Cursor { count, .. } => {
            let take = usize::try_from(*count).unwrap_or(usize::MAX);
            let rest: Vec<_> = matched
                .into_iter()
                .filter(|m| {
                    position
                        .as_ref()
                        .is_none_or(|p| order((m.0.as_ref(), m.1), (p.key.as_ref(), p.pk)).is_gt())
                })
                .collect();
            let more = rest.len() > take && take > 0;
            let mut items = Vec::new();
            let mut last = None;
            for (key, pk, res) in rest.into_iter().take(take) {
                last = Some((key, pk));
                items.push(res);
            }
            let next_cursor = match (more, last) {
                (true, Some((key, pk))) => Some(encode_cursor(&CursorPos { key, pk, hash })?),
                _ => None,
            };
            Ok(Page {
                total,
                items,
                next_cursor,
                examined,
            })
        }
    }
}
