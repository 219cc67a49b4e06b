//! The index behind custom attributes declared `indexed` (issue 13): one row per value in
//! `custom_values`, kept by every write of a resource, built for existing resources by a
//! background backfill, and used by filters and sorts once the backfill is through.
//!
//! **Why a side table** rather than an expression index on the JSON document: filters compare
//! caseExact=false strings folded with [`fold_case`] (Unicode lower-casing), which neither
//! SQLite's nor PostgreSQL's `lower()` reproduces exactly, and numbers and dateTimes by value,
//! not by text. The store computes each row's key in Rust, with the same functions the
//! in-memory evaluator uses, so the SQL answer and the evaluator's agree by construction.
//!
//! **Encoding.** `v` is text whose byte order is the attribute's order: a string as stored
//! (folded when caseExact=false), a boolean `0`/`1`, an integer or a dateTime (nanoseconds
//! since the epoch) as 32 hex digits of the value offset by 2^127, a decimal as 16 hex digits
//! of its IEEE-754 bits made order-preserving. A value of the wrong JSON type has `v` NULL, as
//! it never matches a comparison; `present` says whether `pr` counts it.
//!
//! **Online build.** Declaring an index adds a `building` row to `custom_indexes` (in the
//! tenant's write transaction, so every later write of the tenant indexes its values). The
//! backfill then walks the tenant's resources in pk order, a batch per transaction, rewriting
//! their rows; it records where it is (`after`), so a restarted server resumes. When it is
//! through, the index is `ready` and the translator uses it. Writes never wait for a build.

use scim_proto::custom::{CustomSchema, CustomType};
use scim_proto::filter::{fold_case, is_present, member as get, parse_datetime};
use scim_proto::schema::{ResourceKind, ENTERPRISE_USER_SCHEMA};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Rows, MAX_INDEXED_BYTES};
use crate::{StoreError, StoreResult};

/// One indexed custom attribute, as the store encodes its values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IndexSpec {
    /// The resource type it belongs to.
    pub kind: ResourceKind,
    /// The schema URN, as declared.
    pub urn: String,
    /// The attribute name, as declared.
    pub name: String,
    /// Its type.
    pub ty: CustomType,
    /// Whether it is multi-valued.
    pub multi: bool,
    /// Whether strings compare case-exactly (references always do).
    pub case_exact: bool,
}

impl IndexSpec {
    /// The key of its rows: `{urn}:{name}`, folded (names are case-insensitive).
    #[must_use]
    pub fn key(&self) -> String {
        fold_case(&format!("{}:{}", self.urn, self.name)).replace(['\'', '?'], "")
    }

    /// Whether it is the attribute `urn:name` (both compared case-insensitively).
    #[must_use]
    pub fn is(&self, urn: &str, name: &str) -> bool {
        self.urn.eq_ignore_ascii_case(urn) && self.name.eq_ignore_ascii_case(name)
    }

    /// Whether strings are stored folded.
    #[must_use]
    pub fn folds(&self) -> bool {
        self.ty == CustomType::String && !self.case_exact
    }
}

/// The `spec` column of `custom_indexes` (the kind has a column of its own).
#[derive(Serialize, Deserialize)]
struct SpecColumn {
    urn: String,
    name: String,
    #[serde(rename = "type")]
    ty: CustomType,
    multi: bool,
    case_exact: bool,
}

/// `spec` as its `custom_indexes.spec` text.
pub(crate) fn spec_text(spec: &IndexSpec) -> StoreResult<String> {
    serde_json::to_string(&SpecColumn {
        urn: spec.urn.clone(),
        name: spec.name.clone(),
        ty: spec.ty,
        multi: spec.multi,
        case_exact: spec.case_exact,
    })
    .map_err(|e| StoreError::Backend(Box::new(e)))
}

/// The spec a `custom_indexes` row holds.
pub(crate) fn spec_from(kind: &str, text: &str) -> StoreResult<IndexSpec> {
    let c: SpecColumn = serde_json::from_str(text).map_err(|e| StoreError::Backend(Box::new(e)))?;
    Ok(IndexSpec {
        kind: if kind == "Group" {
            ResourceKind::Group
        } else {
            ResourceKind::User
        },
        urn: c.urn,
        name: c.name,
        ty: c.ty,
        multi: c.multi,
        case_exact: c.case_exact,
    })
}

/// The attributes of `schemas` (a tenant's effective declarations) declared `indexed`.
#[must_use]
pub fn wanted(schemas: &[CustomSchema]) -> Vec<IndexSpec> {
    schemas
        .iter()
        .flat_map(|s| {
            s.attributes
                .iter()
                .filter(|a| a.indexed)
                .map(move |a| IndexSpec {
                    kind: s.resource.kind(),
                    urn: s.urn.clone(),
                    name: a.name.clone(),
                    ty: a.attr_type,
                    multi: a.multi_valued,
                    case_exact: a.case_exact,
                })
        })
        .collect()
}

/// Where an index's build is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexState {
    /// Declared; existing values are being indexed. Filters do not use it yet.
    Building,
    /// Every value is indexed; filters and sorts use it.
    Ready,
    /// Some stored values could not be indexed ([`CustomIndex::failed_values`]).
    Failed,
}

impl IndexState {
    /// Its name in the database and in answers.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Building => "building",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    /// The state a name denotes (an unknown one reads as building: it is not used).
    #[must_use]
    pub fn parse(s: &str) -> Self {
        match s {
            "ready" => Self::Ready,
            "failed" => Self::Failed,
            _ => Self::Building,
        }
    }
}

/// One tenant's index of one attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomIndex {
    /// What it indexes.
    pub spec: IndexSpec,
    /// Its state.
    pub state: IndexState,
    /// While building: the pk of the last resource the backfill indexed.
    pub after: i64,
    /// Stored values the backfill found too long to index.
    pub failed_values: i64,
}

/// One row of `custom_values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueRow {
    /// The attribute ([`IndexSpec::key`]).
    pub attr: String,
    /// The position in the array (0 for a single value).
    pub ord: i64,
    /// The encoded value; `None` for a value of the wrong type.
    pub v: Option<String>,
    /// Whether `pr` counts it.
    pub present: bool,
}

/// An integer (or instant in nanoseconds) as text in its order: 32 hex digits of `n + 2^127`.
#[must_use]
pub fn enc_int(n: i128) -> String {
    #[allow(clippy::cast_sign_loss)] // The bit pattern is what is wanted.
    let u = (n as u128) ^ (1u128 << 127);
    format!("{u:032x}")
}

/// A decimal as text in its order (`-0.0` as `0.0`; JSON has no NaN): 16 hex digits.
#[must_use]
pub fn enc_f64(x: f64) -> String {
    let x = if x == 0.0 { 0.0 } else { x };
    let bits = x.to_bits();
    let u = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    format!("{u:016x}")
}

/// A JSON number as an integer, when it is one.
pub(crate) fn number_i128(n: &serde_json::Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// The encoded value of one (non-array) value, `None` when it has the wrong JSON type.
fn encode(spec: &IndexSpec, v: &Value) -> Option<String> {
    match (spec.ty, v) {
        (CustomType::String, Value::String(s)) if !spec.case_exact => Some(fold_case(s)),
        (CustomType::String | CustomType::Reference, Value::String(s)) => Some(s.clone()),
        (CustomType::Boolean, Value::Bool(b)) => Some(if *b { "1" } else { "0" }.to_owned()),
        // Validation admits only whole numbers for an integer.
        (CustomType::Integer, Value::Number(n)) => number_i128(n).map(enc_int),
        (CustomType::Decimal, Value::Number(n)) => n.as_f64().map(enc_f64),
        (CustomType::DateTime, Value::String(s)) => {
            parse_datetime(s).map(|t| enc_int(t.unix_timestamp_nanos()))
        }
        _ => None,
    }
}

/// The value a document holds for `spec` (`doc[urn][name]`), if any.
#[must_use]
pub fn value_of<'v>(spec: &IndexSpec, doc: &'v Value) -> Option<&'v Value> {
    get(get(doc, &spec.urn)?, &spec.name)
}

/// The rows of `doc`'s values of `spec`.
///
/// # Errors
/// `Err(len)` with the byte length of the first value too long to be an index key
/// ([`MAX_INDEXED_BYTES`]).
pub fn rows_of(spec: &IndexSpec, doc: &Value) -> Result<Vec<ValueRow>, usize> {
    let Some(top) = value_of(spec, doc) else {
        return Ok(Vec::new());
    };
    let items: Vec<&Value> = match top {
        Value::Array(a) => a.iter().collect(),
        v => vec![v],
    };
    let attr = spec.key();
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        if item.is_null() {
            continue;
        }
        let v = encode(spec, item);
        if let Some(len) = v
            .as_ref()
            .map(String::len)
            .filter(|l| *l > MAX_INDEXED_BYTES)
        {
            return Err(len);
        }
        out.push(ValueRow {
            attr: attr.clone(),
            ord: i64::try_from(i).unwrap_or(i64::MAX),
            v,
            present: is_present(item),
        });
    }
    Ok(out)
}

/// The sort key of a document for `spec`, as the index orders it: its first value's encoding.
#[must_use]
pub fn sort_key(spec: &IndexSpec, doc: &Value) -> Option<String> {
    let first = match value_of(spec, doc)? {
        Value::Array(a) => a.first()?,
        v => v,
    };
    encode(spec, first)
}

fn too_long(spec: &IndexSpec, len: usize) -> StoreError {
    StoreError::Invalid(format!(
        "{}:{} is {len} bytes long; it is declared indexed, and Roster indexes at most \
         {MAX_INDEXED_BYTES} bytes of a value",
        spec.urn, spec.name
    ))
}

/// Whether a document may hold a custom attribute's value: it has an extension object other
/// than the enterprise one. Most identity providers send none, and their writes skip the
/// index entirely.
fn may_hold_custom(doc: &Value) -> bool {
    doc.as_object().is_some_and(|m| {
        m.keys().any(|k| {
            k.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
                && !k.eq_ignore_ascii_case(ENTERPRISE_USER_SCHEMA)
        })
    })
}

/// Rewrites the index rows of resource `pk` from its new document `doc`, for every index the
/// tenant has (building or ready), in the caller's write transaction. `old` is the document it
/// replaces when the caller has it, `None` when unknown or (with `fresh`: the resource was
/// just inserted) when there is none. Nothing is read when neither document can hold a custom
/// value; otherwise one read when the tenant has no index.
///
/// # Errors
/// `Invalid` naming the attribute when a value is too long to index.
pub async fn maintain<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    kind: ResourceKind,
    pk: i64,
    old: Option<&Value>,
    doc: &Value,
    fresh: bool,
) -> StoreResult<()> {
    let old_may = if fresh {
        false
    } else {
        old.is_none_or(may_hold_custom)
    };
    if !old_may && !may_hold_custom(doc) {
        return Ok(());
    }
    let indexes = rows.custom_indexes(tenant).await?;
    let mut attrs = Vec::new();
    let mut values = Vec::new();
    for ix in indexes.iter().filter(|ix| ix.spec.kind == kind) {
        attrs.push(ix.spec.key());
        values.extend(rows_of(&ix.spec, doc).map_err(|len| too_long(&ix.spec, len))?);
    }
    if attrs.is_empty() || (fresh && values.is_empty()) {
        return Ok(());
    }
    rows.replace_custom_values(tenant, pk, &attrs, &values, fresh)
        .await
}

/// Makes the tenant's indexes those of `wanted`: an index no longer wanted goes with its rows,
/// a new one (or one whose type, caseExact or multiValued changed) starts building, and with
/// `retry_failed` a failed one starts over (after the values it could not index were
/// shortened). Returns whether anything changed.
///
/// # Errors
/// As the backend's.
pub async fn sync<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    wanted: &[IndexSpec],
    retry_failed: bool,
) -> StoreResult<bool> {
    let mut current = rows.custom_indexes(tenant).await?;
    let mut changed = false;
    if retry_failed {
        for ix in current
            .iter_mut()
            .filter(|ix| ix.state == IndexState::Failed)
        {
            ix.state = IndexState::Building;
            ix.after = 0;
            ix.failed_values = 0;
            rows.put_custom_index(tenant, ix).await?;
            changed = true;
        }
    }
    for ix in &current {
        let keep = wanted
            .iter()
            .any(|w| w.kind == ix.spec.kind && w.key() == ix.spec.key() && same(w, &ix.spec));
        if !keep {
            rows.drop_custom_index(tenant, ix.spec.kind, &ix.spec.key())
                .await?;
            changed = true;
        }
    }
    for w in wanted {
        let have = current
            .iter()
            .any(|ix| ix.spec.kind == w.kind && ix.spec.key() == w.key() && same(w, &ix.spec));
        if !have {
            rows.put_custom_index(
                tenant,
                &CustomIndex {
                    spec: w.clone(),
                    state: IndexState::Building,
                    after: 0,
                    failed_values: 0,
                },
            )
            .await?;
            changed = true;
        }
    }
    Ok(changed)
}

/// Whether `current` (a tenant's indexes) are those `wanted` asks for, so that [`sync`] would
/// change nothing: a cheap read-only check before a write.
#[must_use]
pub fn matches_wanted(current: &[CustomIndex], wanted: &[IndexSpec]) -> bool {
    current.len() == wanted.len()
        && wanted.iter().all(|w| {
            current
                .iter()
                .any(|ix| ix.spec.kind == w.kind && ix.spec.key() == w.key() && same(w, &ix.spec))
        })
}

/// Whether two specs encode alike (the declared spelling of names may differ).
fn same(a: &IndexSpec, b: &IndexSpec) -> bool {
    a.ty == b.ty && a.multi == b.multi && a.folds() == b.folds()
}

/// Starts every index of the tenant over (after its resources were put back wholesale, as a
/// discarded first-sync review does, without passing through [`maintain`]).
///
/// # Errors
/// As the backend's.
pub async fn rebuild_all<R: Rows + ?Sized>(rows: &mut R, tenant: &str) -> StoreResult<()> {
    for mut ix in rows.custom_indexes(tenant).await? {
        ix.state = IndexState::Building;
        ix.after = 0;
        ix.failed_values = 0;
        rows.put_custom_index(tenant, &ix).await?;
    }
    Ok(())
}

/// One step of the tenant's backfill: indexes the next `limit` resources of its first building
/// index. Returns how many resources it indexed (0: nothing is building).
///
/// # Errors
/// As the backend's.
pub async fn backfill<R: Rows + ?Sized>(
    rows: &mut R,
    tenant: &str,
    limit: u64,
) -> StoreResult<u64> {
    let indexes = rows.custom_indexes(tenant).await?;
    let Some(mut ix) = indexes
        .into_iter()
        .find(|ix| ix.state == IndexState::Building)
    else {
        return Ok(0);
    };
    let batch = rows
        .resources_after(tenant, ix.spec.kind, ix.after, limit)
        .await?;
    let attr = [ix.spec.key()];
    for (pk, doc) in &batch {
        let values = rows_of(&ix.spec, doc).unwrap_or_else(|_| {
            ix.failed_values += 1;
            Vec::new()
        });
        rows.replace_custom_values(tenant, *pk, &attr, &values, false)
            .await?;
        ix.after = *pk;
    }
    if (batch.len() as u64) < limit {
        ix.state = if ix.failed_values > 0 {
            IndexState::Failed
        } else {
            IndexState::Ready
        };
    }
    rows.put_custom_index(tenant, &ix).await?;
    Ok(batch.len().max(1) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(ty: CustomType, case_exact: bool) -> IndexSpec {
        IndexSpec {
            kind: ResourceKind::User,
            urn: "urn:x:2.0:User".into(),
            name: "a".into(),
            ty,
            multi: false,
            case_exact,
        }
    }

    #[test]
    fn integer_encoding_keeps_order() {
        let ns = [i128::MIN, -(1 << 70), -2, -1, 0, 1, 2, 1 << 70, i128::MAX];
        for w in ns.windows(2) {
            assert!(enc_int(w[0]) < enc_int(w[1]), "{} < {}", w[0], w[1]);
        }
    }

    #[test]
    fn decimal_encoding_keeps_order() {
        let xs = [
            f64::MIN,
            -1e300,
            -2.5,
            -1.0,
            -1e-300,
            0.0,
            1e-300,
            0.5,
            1.0,
            3.0,
            f64::MAX,
        ];
        for w in xs.windows(2) {
            assert!(enc_f64(w[0]) < enc_f64(w[1]), "{} < {}", w[0], w[1]);
        }
        assert_eq!(enc_f64(-0.0), enc_f64(0.0));
    }

    #[test]
    fn rows_follow_the_evaluator() {
        let s = spec(CustomType::String, false);
        let doc = json!({"urn:x:2.0:User": {"A": ["Ünï", null, "", 3]}});
        let rows = rows_of(&s, &doc).unwrap();
        let got: Vec<_> = rows
            .iter()
            .map(|r| (r.ord, r.v.clone(), r.present))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, Some("ünï".to_owned()), true),
                (2, Some(String::new()), false),
                (3, None, true)
            ]
        );
        assert_eq!(sort_key(&s, &doc).as_deref(), Some("ünï"));
        let long = json!({"urn:x:2.0:User": {"a": "x".repeat(MAX_INDEXED_BYTES + 1)}});
        assert_eq!(rows_of(&s, &long), Err(MAX_INDEXED_BYTES + 1));
        let d = spec(CustomType::DateTime, false);
        let doc = json!({"urn:x:2.0:User": {"a": "2026-01-01T00:00:00Z"}});
        assert!(rows_of(&d, &doc).unwrap()[0].v.is_some());
        let b = spec(CustomType::Boolean, false);
        let doc = json!({"urn:x:2.0:User": {"a": true}});
        assert_eq!(rows_of(&b, &doc).unwrap()[0].v.as_deref(), Some("1"));
    }
}
