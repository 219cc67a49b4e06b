//! Translation of list queries to SQL: filters (RFC 7644 §3.4.2.2), sorting (§3.4.2.3) and
//! keyset cursors (RFC 9865), plus the in-memory fallback's helpers.
//!
//! A filter is translated into a WHERE fragment with bound parameters and a flag saying
//! whether the fragment is *exact* (selects exactly the matching rows) or a *superset* (the
//! caller must re-check every candidate with [`ValidFilter::matches`]). Every fragment is
//! two-valued (never SQL NULL), so `NOT (…)` of an exact fragment is exact too. The semantics
//! mirror the in-memory evaluator: caseExact=false values are folded with [`fold_case`] on both
//! sides, `ne` is `NOT eq` (an absent attribute matches `ne`; a multi-valued one matches only if
//! no value is equal), and string order is the byte order of the backend's text comparison
//! (SQLite's BINARY collation, PostgreSQL's `"C"` collation), which is Rust's `str` order.
//!
//! One translator for every backend: the SQL it writes is standard (`TRUE`/`FALSE`, `IS NULL`,
//! `IN (SELECT …)`, `?` placeholders, which a backend with numbered placeholders renumbers when
//! it prepares the statement — the translator never writes a `?` inside a string literal); the
//! few string functions that differ come from the backend's [`Dialect`]. Timestamps are stored
//! and compared as Unix milliseconds ([`to_ms`]) and booleans as 0/1 on every backend.

use std::borrow::Cow;
use std::cmp::Ordering;

use scim_proto::custom::CustomType;
use scim_proto::filter::{fold_case, parse_datetime, AttrPath, CompValue, CompareOp, Filter};
use scim_proto::schema::ResourceKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::custom_index::{enc_f64, enc_int, number_i128, sort_key, IndexSpec};
use crate::{SortSpec, StoreError};

/// The string tests whose SQL differs between backends. Each returns the condition on `col` and
/// how many times the operand is bound for it (in order).
pub trait Dialect: Sync {
    /// `col` contains the operand.
    fn contains(&self, col: &str) -> (String, usize);
    /// `col` starts with the operand (written so that an index on `col` can range-scan).
    fn starts_with(&self, col: &str) -> (String, usize);
    /// `col` ends with the operand.
    fn ends_with(&self, col: &str) -> (String, usize);
}

/// A bound SQL parameter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    /// TEXT
    Text(String),
    /// INTEGER
    Int(i64),
}

/// A WHERE fragment with its parameters, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fragment {
    pub sql: String,
    pub args: Vec<Arg>,
    /// Whether the fragment selects exactly the matching rows (else a superset).
    pub exact: bool,
}

impl Fragment {
    fn constant(value: bool, exact: bool) -> Self {
        Self {
            sql: if value { "TRUE" } else { "FALSE" }.to_owned(),
            args: Vec::new(),
            exact,
        }
    }

    /// "Anything may match": the superset used for what SQL cannot express.
    fn anything() -> Self {
        Self::constant(true, false)
    }

    fn is_true(&self) -> bool {
        self.sql == "TRUE"
    }
}

/// Truncates an instant to unix milliseconds (floor, so that pre-1970 instants truncate the
/// same way as later ones). This is how every timestamp is stored and compared.
pub(crate) fn to_ms(t: time::OffsetDateTime) -> i64 {
    let ms = t.unix_timestamp_nanos().div_euclid(1_000_000);
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// How a column's values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    /// A string; `fold` when the attribute is caseExact=false (the column holds folded text).
    Text { fold: bool },
    /// A boolean stored as 0/1.
    Bool,
    /// A dateTime stored as unix milliseconds.
    DateTime,
}

/// The multi-valued tables a condition can reach through a subquery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Multi {
    /// A User's `emails` rows (alias `e`).
    Emails,
    /// A Group's `members` rows (alias `m`).
    Members,
    /// A User's groups: `members` rows where the User is the member, joined to the Group (`g`).
    Groups,
}

impl Multi {
    /// `r.pk IN (SELECT … WHERE <tenant> AND <cond>)`; the tenant parameter comes first.
    fn wrap(self, cond: &str, negate: bool) -> String {
        let not = if negate { "NOT " } else { "" };
        let sub = match self {
            Multi::Emails => "SELECT e.resource_pk FROM emails e WHERE e.tenant_id = ?",
            Multi::Members => "SELECT m.group_pk FROM members m WHERE m.tenant_id = ?",
            Multi::Groups => {
                "SELECT m.member_pk FROM members m JOIN resources g ON g.pk = m.group_pk \
                 AND g.tenant_id = m.tenant_id AND g.kind = 'Group' AND g.managed = TRUE \
                 WHERE m.tenant_id = ?"
            }
        };
        format!("r.pk {not}IN ({sub} AND {cond})")
    }

    /// The column for a sub-attribute of this multi-valued attribute.
    fn column(self, sub: &str) -> Option<(&'static str, Ty)> {
        match (self, sub) {
            (Multi::Emails, "value") => Some(("e.value_lc", Ty::Text { fold: true })),
            (Multi::Emails, "type") => Some(("e.type_lc", Ty::Text { fold: true })),
            (Multi::Emails, "primary") => Some(("e.is_primary", Ty::Bool)),
            (Multi::Members, "value") => Some(("m.member_id", Ty::Text { fold: false })),
            (Multi::Groups, "value") => Some(("g.id", Ty::Text { fold: false })),
            (Multi::Groups, "display") => Some(("g.display_name_lc", Ty::Text { fold: true })),
            _ => None,
        }
    }
}

/// The multi-valued attribute a top-level attribute name denotes, for this kind.
fn multi_for(kind: ResourceKind, attr: &str) -> Option<Multi> {
    match (kind, attr) {
        (ResourceKind::User, "emails") => Some(Multi::Emails),
        (ResourceKind::User, "groups") => Some(Multi::Groups),
        (ResourceKind::Group, "members") => Some(Multi::Members),
        _ => None,
    }
}

/// An indexed single-valued column of `resources` (alias `r`): (expression, type, nullable).
fn column_for(kind: ResourceKind, path: &AttrPath) -> Option<(&'static str, Ty, bool)> {
    if path.urn.is_some() {
        return None;
    }
    match (kind, path.attr.as_str(), path.sub_attr.as_deref()) {
        (_, "id", None) => Some(("r.id", Ty::Text { fold: false }, false)),
        (_, "externalId", None) => Some(("r.external_id", Ty::Text { fold: false }, true)),
        (_, "displayName", None) => Some(("r.display_name_lc", Ty::Text { fold: true }, true)),
        (ResourceKind::User, "userName", None) => {
            Some(("r.user_name_lc", Ty::Text { fold: true }, true))
        }
        (ResourceKind::User, "active", None) => Some(("r.active", Ty::Bool, true)),
        (_, "meta", Some("created")) => Some(("r.created", Ty::DateTime, false)),
        (_, "meta", Some("lastModified")) => Some(("r.last_modified", Ty::DateTime, false)),
        _ => None,
    }
}

/// A comparison on one column, or `None` when SQL cannot express it exactly.
///
/// The result is two-valued: nullable columns are guarded with `IS NOT NULL`.
fn compare(
    dialect: &dyn Dialect,
    col: &str,
    ty: Ty,
    nullable: bool,
    op: CompareOp,
    value: &CompValue,
) -> Option<(String, Vec<Arg>)> {
    let guard = |cond: String| {
        if nullable {
            format!("({col} IS NOT NULL AND {cond})")
        } else {
            cond
        }
    };
    if let CompValue::Null = value {
        // `eq null` means "not present" (absent or ""), `ne null` means present.
        let present = match ty {
            Ty::Text { .. } => format!("({col} IS NOT NULL AND {col} <> '')"),
            _ => format!("{col} IS NOT NULL"),
        };
        return match op {
            CompareOp::Eq => Some((format!("(NOT {present})"), vec![])),
            CompareOp::Ne => Some((present, vec![])),
            _ => None,
        };
    }
    if let (Ty::DateTime, CompValue::Str(s)) = (ty, value) {
        return datetime(col, nullable, op, s);
    }
    let arg = match (ty, value) {
        (Ty::Text { fold }, CompValue::Str(s)) => {
            Arg::Text(if fold { fold_case(s) } else { s.clone() })
        }
        (Ty::Bool, CompValue::Bool(b)) if matches!(op, CompareOp::Eq | CompareOp::Ne) => {
            Arg::Int(i64::from(*b))
        }
        _ => return None,
    };
    let empty = matches!(&arg, Arg::Text(s) if s.is_empty());
    Some(match op {
        CompareOp::Eq => (guard(format!("{col} = ?")), vec![arg]),
        CompareOp::Ne => {
            if nullable {
                (format!("({col} IS NULL OR {col} <> ?)"), vec![arg])
            } else {
                (format!("{col} <> ?"), vec![arg])
            }
        }
        // Every present string contains, starts and ends with "".
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew if empty => (
            if nullable {
                format!("{col} IS NOT NULL")
            } else {
                "TRUE".to_owned()
            },
            vec![],
        ),
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => {
            let (cond, n) = match op {
                CompareOp::Co => dialect.contains(col),
                CompareOp::Sw => dialect.starts_with(col),
                _ => dialect.ends_with(col),
            };
            (guard(cond), vec![arg; n])
        }
        CompareOp::Gt => (guard(format!("{col} > ?")), vec![arg]),
        CompareOp::Ge => (guard(format!("{col} >= ?")), vec![arg]),
        CompareOp::Lt => (guard(format!("{col} < ?")), vec![arg]),
        CompareOp::Le => (guard(format!("{col} <= ?")), vec![arg]),
    })
}

/// A dateTime comparison. Stored values are whole milliseconds, while the evaluator compares
/// instants at full precision; with `f` = the operand floored to milliseconds and `exact` = it
/// has no sub-millisecond part, `m > v ⇔ m > f`, `m <= v ⇔ m <= f`, `m >= v ⇔ m > f` (or
/// `m >= f` when exact), `m < v ⇔ m <= f` (or `m < f`), and `m = v` only when exact.
fn datetime(col: &str, nullable: bool, op: CompareOp, s: &str) -> Option<(String, Vec<Arg>)> {
    let ns = parse_datetime(s)?.unix_timestamp_nanos();
    let f = i64::try_from(ns.div_euclid(1_000_000)).ok()?;
    let exact = ns.rem_euclid(1_000_000) == 0;
    let (sql_op, always) = match (op, exact) {
        (CompareOp::Eq, true) => ("=", None),
        (CompareOp::Eq, false) => ("", Some(false)),
        (CompareOp::Ne, true) => ("<>", None),
        (CompareOp::Ne, false) => ("", Some(true)),
        (CompareOp::Gt, _) | (CompareOp::Ge, false) => (">", None),
        (CompareOp::Ge, true) => (">=", None),
        (CompareOp::Lt, true) => ("<", None),
        (CompareOp::Lt, false) | (CompareOp::Le, _) => ("<=", None),
        (CompareOp::Co | CompareOp::Sw | CompareOp::Ew, _) => return None,
    };
    if let Some(v) = always {
        return Some((if v { "TRUE" } else { "FALSE" }.to_owned(), vec![]));
    }
    let cond = match (nullable, op) {
        (true, CompareOp::Ne) => format!("({col} IS NULL OR {col} <> ?)"),
        (true, _) => format!("({col} IS NOT NULL AND {col} {sql_op} ?)"),
        (false, _) => format!("{col} {sql_op} ?"),
    };
    Some((cond, vec![Arg::Int(f)]))
}

/// String comparison with the filter semantics, for constants such as `meta.resourceType`.
fn str_op(op: CompareOp, lhs: &str, rhs: &str) -> bool {
    match op {
        CompareOp::Eq => lhs == rhs,
        CompareOp::Ne => lhs != rhs,
        CompareOp::Co => lhs.contains(rhs),
        CompareOp::Sw => lhs.starts_with(rhs),
        CompareOp::Ew => lhs.ends_with(rhs),
        CompareOp::Gt => lhs > rhs,
        CompareOp::Ge => lhs >= rhs,
        CompareOp::Lt => lhs < rhs,
        CompareOp::Le => lhs <= rhs,
    }
}

/// Translates filters for one tenant and kind.
pub(crate) struct Translator<'a> {
    pub tenant: &'a str,
    pub kind: ResourceKind,
    pub dialect: &'a dyn Dialect,
    /// The tenant's ready custom-attribute indexes of this kind.
    pub custom: &'a [IndexSpec],
}

/// The ready index of the custom attribute `p` names, if there is one.
fn custom_for<'s>(custom: &'s [IndexSpec], p: &AttrPath) -> Option<&'s IndexSpec> {
    let urn = p.urn.as_deref()?;
    if p.sub_attr.is_some() {
        return None;
    }
    custom.iter().find(|s| s.is(urn, &p.attr))
}

/// `r.pk [NOT] IN (the resources with a value row of `spec` satisfying `cond`)`; the tenant and
/// the attribute are its first parameters.
fn custom_wrap(spec: &IndexSpec, tenant: &str, cond: &str, negate: bool) -> (String, Vec<Arg>) {
    let not = if negate { "NOT " } else { "" };
    (
        format!(
            "r.pk {not}IN (SELECT x.resource_pk FROM custom_values x \
             WHERE x.tenant_id = ? AND x.attr = ? AND {cond})"
        ),
        vec![Arg::Text(tenant.to_owned()), Arg::Text(spec.key())],
    )
}

/// The comparison of one value row's `x.v` with an operand, for `spec`'s type: the condition,
/// its parameters, and whether it is exact (`None`: SQL cannot express it).
fn custom_cond(
    dialect: &dyn Dialect,
    spec: &IndexSpec,
    op: CompareOp,
    v: &CompValue,
) -> Option<(String, Vec<Arg>, bool)> {
    let ordered = |op: CompareOp, enc: String| {
        let sql_op = match op {
            CompareOp::Eq => "=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            _ => return None,
        };
        Some((format!("x.v {sql_op} ?"), vec![Arg::Text(enc)], true))
    };
    match (spec.ty, v) {
        (CustomType::String | CustomType::Reference, CompValue::Str(_)) => {
            let ty = Ty::Text { fold: spec.folds() };
            compare(dialect, "x.v", ty, true, op, v).map(|(sql, args)| (sql, args, true))
        }
        (CustomType::Boolean, CompValue::Bool(b)) if op == CompareOp::Eq => Some((
            "x.v = ?".to_owned(),
            vec![Arg::Text(if *b { "1" } else { "0" }.to_owned())],
            true,
        )),
        (CustomType::Integer, CompValue::Number(n)) => ordered(op, enc_int(number_i128(n)?)),
        (CustomType::DateTime, CompValue::Str(s)) => {
            ordered(op, enc_int(parse_datetime(s)?.unix_timestamp_nanos()))
        }
        (CustomType::Decimal, CompValue::Number(n)) => {
            // Decimals are indexed as f64 while the evaluator compares two integers exactly:
            // rounding is monotonic, so the non-strict comparison selects a superset.
            let sql_op = match op {
                CompareOp::Eq => "=",
                CompareOp::Gt | CompareOp::Ge => ">=",
                CompareOp::Lt | CompareOp::Le => "<=",
                _ => return None,
            };
            Some((
                format!("x.v {sql_op} ?"),
                vec![Arg::Text(enc_f64(n.as_f64()?))],
                false,
            ))
        }
        _ => None,
    }
}

impl Translator<'_> {
    /// Translates a top-level filter over `resources r`.
    pub fn translate(&self, f: &Filter) -> Fragment {
        match f {
            Filter::And(a, b) => and(self.translate(a), self.translate(b)),
            Filter::Or(a, b) => or(self.translate(a), self.translate(b)),
            Filter::Not(a) => not(self.translate(a)),
            Filter::Present(p) => self.present(p),
            Filter::Compare(p, op, v) => self.compare(p, *op, v),
            Filter::ValuePath(p, inner) => self.value_path(p, inner),
        }
    }

    fn tenant_arg(&self) -> Arg {
        Arg::Text(self.tenant.to_owned())
    }

    /// `pr` on an indexed custom attribute: a value row that counts as present.
    fn custom_present(&self, spec: &IndexSpec) -> Fragment {
        let (sql, args) = custom_wrap(spec, self.tenant, "x.present = TRUE", false);
        Fragment {
            sql,
            args,
            exact: true,
        }
    }

    /// A comparison on an indexed custom attribute: some value matches; `ne` is "no value is
    /// equal", `eq null` "none is present".
    fn custom_compare(&self, spec: &IndexSpec, op: CompareOp, v: &CompValue) -> Fragment {
        if matches!(v, CompValue::Null) {
            return match op {
                CompareOp::Eq => not(self.custom_present(spec)),
                CompareOp::Ne => self.custom_present(spec),
                _ => Fragment::anything(),
            };
        }
        let (negate, op) = if op == CompareOp::Ne {
            (true, CompareOp::Eq)
        } else {
            (false, op)
        };
        match custom_cond(self.dialect, spec, op, v) {
            // The complement of a superset is not a superset.
            Some((cond, cargs, exact)) if exact || !negate => {
                let (sql, mut args) = custom_wrap(spec, self.tenant, &cond, negate);
                args.extend(cargs);
                Fragment { sql, args, exact }
            }
            _ => Fragment::anything(),
        }
    }

    fn present(&self, p: &AttrPath) -> Fragment {
        if let Some(spec) = custom_for(self.custom, p) {
            return self.custom_present(spec);
        }
        if let Some((col, ty, nullable)) = column_for(self.kind, p) {
            let sql = match (ty, nullable) {
                (_, false) => "TRUE".to_owned(),
                (Ty::Text { .. }, true) => format!("({col} IS NOT NULL AND {col} <> '')"),
                (_, true) => format!("{col} IS NOT NULL"),
            };
            return Fragment {
                sql,
                args: vec![],
                exact: true,
            };
        }
        if p.urn.is_none() && p.attr == "meta" && p.sub_attr.as_deref() == Some("resourceType") {
            return Fragment::constant(true, true);
        }
        let Some(multi) = p
            .urn
            .is_none()
            .then(|| multi_for(self.kind, &p.attr))
            .flatten()
        else {
            return Fragment::anything();
        };
        match p.sub_attr.as_deref() {
            Some(sub) => match multi.column(sub) {
                Some((col, ty)) => {
                    let cond = match ty {
                        Ty::Text { .. } => format!("{col} IS NOT NULL AND {col} <> ''"),
                        _ => format!("{col} IS NOT NULL"),
                    };
                    Fragment {
                        sql: multi.wrap(&cond, false),
                        args: vec![self.tenant_arg()],
                        exact: true,
                    }
                }
                None => Fragment::anything(),
            },
            // Membership rows always carry a non-empty id, so "has a row" is exact for
            // members/groups. An emails row may be an empty object, so it is only a superset.
            None => Fragment {
                sql: multi.wrap("TRUE", false),
                args: vec![self.tenant_arg()],
                exact: multi != Multi::Emails,
            },
        }
    }

    fn compare(&self, p: &AttrPath, op: CompareOp, v: &CompValue) -> Fragment {
        if let Some(spec) = custom_for(self.custom, p) {
            return self.custom_compare(spec, op, v);
        }
        if let Some((col, ty, nullable)) = column_for(self.kind, p) {
            return match compare(self.dialect, col, ty, nullable, op, v) {
                Some((sql, args)) => Fragment {
                    sql,
                    args,
                    exact: true,
                },
                None => Fragment::anything(),
            };
        }
        if p.urn.is_none() && p.attr == "meta" && p.sub_attr.as_deref() == Some("resourceType") {
            let rt = self.kind.as_str();
            return match v {
                CompValue::Str(s) => Fragment::constant(str_op(op, rt, s), true),
                CompValue::Null if op == CompareOp::Eq => Fragment::constant(false, true),
                CompValue::Null if op == CompareOp::Ne => Fragment::constant(true, true),
                _ => Fragment::anything(),
            };
        }
        let multi = p
            .urn
            .is_none()
            .then(|| multi_for(self.kind, &p.attr))
            .flatten();
        match (multi, p.sub_attr.as_deref()) {
            (Some(multi), Some(sub)) => self.multi_compare(multi, sub, op, v),
            _ => Fragment::anything(),
        }
    }

    /// `emails.value op v` and friends: some row matches; for `ne`, no row is equal.
    fn multi_compare(&self, multi: Multi, sub: &str, op: CompareOp, v: &CompValue) -> Fragment {
        let Some((col, ty)) = multi.column(sub) else {
            return Fragment::anything();
        };
        if matches!(v, CompValue::Null) {
            // "No value" on a multi-valued attribute: leave it to the evaluator.
            return Fragment::anything();
        }
        let (negate, op) = if op == CompareOp::Ne {
            (true, CompareOp::Eq)
        } else {
            (false, op)
        };
        match compare(self.dialect, col, ty, true, op, v) {
            Some((cond, args)) => {
                let mut all = vec![self.tenant_arg()];
                all.extend(args);
                Fragment {
                    sql: multi.wrap(&cond, negate),
                    args: all,
                    exact: true,
                }
            }
            None => Fragment::anything(),
        }
    }

    fn value_path(&self, p: &AttrPath, inner: &Filter) -> Fragment {
        let multi = (p.urn.is_none() && p.sub_attr.is_none())
            .then(|| multi_for(self.kind, &p.attr))
            .flatten();
        let Some(multi) = multi else {
            return Fragment::anything();
        };
        let cond = self.row(multi, &p.attr, inner);
        if cond.is_true() && !cond.exact {
            return Fragment::anything();
        }
        let mut args = vec![self.tenant_arg()];
        args.extend(cond.args);
        // EXISTS of a superset row condition is a superset, so exactness carries over.
        Fragment {
            sql: multi.wrap(&format!("({})", cond.sql), false),
            args,
            exact: cond.exact,
        }
    }

    /// A condition on ONE row of a multi-valued attribute (inside `attr[...]`).
    fn row(&self, multi: Multi, attr: &str, f: &Filter) -> Fragment {
        match f {
            Filter::And(a, b) => and(self.row(multi, attr, a), self.row(multi, attr, b)),
            Filter::Or(a, b) => or(self.row(multi, attr, a), self.row(multi, attr, b)),
            Filter::Not(a) => not(self.row(multi, attr, a)),
            Filter::Present(p) => match row_sub(attr, p).and_then(|s| multi.column(s)) {
                Some((col, Ty::Text { .. })) => Fragment {
                    sql: format!("({col} IS NOT NULL AND {col} <> '')"),
                    args: vec![],
                    exact: true,
                },
                Some((col, _)) => Fragment {
                    sql: format!("{col} IS NOT NULL"),
                    args: vec![],
                    exact: true,
                },
                None => Fragment::anything(),
            },
            Filter::Compare(p, op, v) => match row_sub(attr, p).and_then(|s| multi.column(s)) {
                Some((col, ty)) => match compare(self.dialect, col, ty, true, *op, v) {
                    Some((sql, args)) => Fragment {
                        sql,
                        args,
                        exact: true,
                    },
                    None => Fragment::anything(),
                },
                None => Fragment::anything(),
            },
            Filter::ValuePath(..) => Fragment::anything(),
        }
    }
}

/// The sub-attribute an inner value-filter path names: `value`, or `emails.value` when the
/// validator qualifies inner paths with the outer attribute.
fn row_sub<'p>(outer: &str, p: &'p AttrPath) -> Option<&'p str> {
    if p.urn.is_some() {
        return None;
    }
    match p.sub_attr.as_deref() {
        None => Some(p.attr.as_str()),
        Some(sub) if p.attr == outer => Some(sub),
        Some(_) => None,
    }
}

fn and(a: Fragment, b: Fragment) -> Fragment {
    // Dropping an untranslatable conjunct keeps a superset.
    let exact = a.exact && b.exact;
    if a.is_true() {
        return Fragment { exact, ..b };
    }
    if b.is_true() {
        return Fragment { exact, ..a };
    }
    let mut args = a.args;
    args.extend(b.args);
    Fragment {
        sql: format!("({} AND {})", a.sql, b.sql),
        args,
        exact,
    }
}

fn or(a: Fragment, b: Fragment) -> Fragment {
    // A union of supersets is a superset of the union, so inexact children need not widen the
    // whole node to TRUE.
    let exact = a.exact && b.exact;
    if (a.is_true() || b.is_true()) && !exact {
        return Fragment::anything();
    }
    let mut args = a.args;
    args.extend(b.args);
    Fragment {
        sql: format!("({} OR {})", a.sql, b.sql),
        args,
        exact,
    }
}

fn not(a: Fragment) -> Fragment {
    // The complement of a superset is a subset: only an exact child can be negated.
    if !a.exact {
        return Fragment::anything();
    }
    Fragment {
        sql: format!("(NOT {})", a.sql),
        args: a.args,
        exact: true,
    }
}

/// Whether the filter refers to the given top-level attribute anywhere.
pub(crate) fn mentions(f: &Filter, attr: &str) -> bool {
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => mentions(a, attr) || mentions(b, attr),
        Filter::Not(a) => mentions(a, attr),
        Filter::Present(p) | Filter::Compare(p, ..) | Filter::ValuePath(p, _) => {
            p.urn.is_none() && p.attr == attr
        }
    }
}

/// Whether the filter names an extension attribute anywhere (only those may be custom).
pub(crate) fn mentions_extension(f: &Filter) -> bool {
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => mentions_extension(a) || mentions_extension(b),
        Filter::Not(a) => mentions_extension(a),
        Filter::Present(p) | Filter::Compare(p, ..) | Filter::ValuePath(p, _) => p.urn.is_some(),
    }
}

/// A sort key value. Missing values are `None` and sort after every present value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Key {
    /// An integer column (dateTime ms, active 0/1).
    Int(i64),
    /// Text (folded when the attribute is caseExact=false).
    Text(String),
    /// A boolean attribute (in-memory sort).
    Bool(bool),
    /// A number attribute (in-memory sort).
    Num(f64),
}

fn key_rank(k: &Key) -> u8 {
    match k {
        Key::Bool(_) => 0,
        Key::Int(_) => 1,
        Key::Num(_) => 2,
        Key::Text(_) => 3,
    }
}

/// Ascending order of optional keys: present values in their natural order, missing last
/// (RFC 7644 §3.4.2.3: "ordered last if ascending and first if descending").
pub(crate) fn cmp_keys(a: Option<&Key>, b: Option<&Key>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => match (a, b) {
            (Key::Int(x), Key::Int(y)) => x.cmp(y),
            (Key::Text(x), Key::Text(y)) => x.cmp(y),
            (Key::Bool(x), Key::Bool(y)) => x.cmp(y),
            (Key::Num(x), Key::Num(y)) => x.total_cmp(y),
            _ => key_rank(a).cmp(&key_rank(b)),
        },
    }
}

/// How a list is ordered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SortPlan {
    /// Creation order (no `sortBy`).
    Pk,
    /// An indexed column of `resources`, or (with `custom`) the first value of an indexed
    /// custom attribute.
    Column {
        expr: Cow<'static, str>,
        int: bool,
        nullable: bool,
        descending: bool,
        custom: Option<IndexSpec>,
    },
    /// Any other attribute: sorted in memory.
    Memory { spec: SortSpec, case_exact: bool },
}

impl SortPlan {
    pub fn new(kind: ResourceKind, sort: Option<&SortSpec>, custom: &[IndexSpec]) -> Self {
        let Some(spec) = sort else {
            return SortPlan::Pk;
        };
        let path = AttrPath {
            urn: spec.urn.clone(),
            attr: spec.attr.clone(),
            sub_attr: spec.sub_attr.clone(),
        };
        if let Some((expr, ty, nullable)) = column_for(kind, &path) {
            return SortPlan::Column {
                expr: Cow::Borrowed(expr),
                int: !matches!(ty, Ty::Text { .. }),
                nullable,
                descending: spec.descending,
                custom: None,
            };
        }
        if let Some(ix) = custom_for(custom, &path) {
            // The key is a validated URN and attribute name (letters, digits, `.:-_`), safe
            // as a literal; a literal keeps the expression free of parameters, which every
            // clause it appears in (select list, ORDER BY, keyset condition) would repeat.
            let expr = format!(
                "(SELECT x.v FROM custom_values x WHERE x.tenant_id = r.tenant_id \
                 AND x.attr = '{}' AND x.resource_pk = r.pk AND x.ord = 0)",
                ix.key()
            );
            return SortPlan::Column {
                expr: Cow::Owned(expr),
                int: false,
                nullable: true,
                descending: spec.descending,
                custom: Some(ix.clone()),
            };
        }
        SortPlan::Memory {
            spec: spec.clone(),
            case_exact: spec.case_exact,
        }
    }

    pub fn descending(&self) -> bool {
        match self {
            SortPlan::Pk => false,
            SortPlan::Column { descending, .. } => *descending,
            SortPlan::Memory { spec, .. } => spec.descending,
        }
    }

    /// The ORDER BY clause (SQL path); `pk` breaks ties, in the same direction.
    pub fn order_by(&self) -> String {
        match self {
            SortPlan::Pk | SortPlan::Memory { .. } => "r.pk".to_owned(),
            SortPlan::Column {
                expr,
                nullable,
                descending,
                ..
            } => {
                let dir = if *descending { " DESC" } else { "" };
                if *nullable {
                    format!("({expr} IS NULL){dir}, {expr}{dir}, r.pk{dir}")
                } else {
                    format!("{expr}{dir}, r.pk{dir}")
                }
            }
        }
    }

    /// The keyset condition "after (key, pk)" for the SQL path.
    pub fn after(&self, key: Option<&Key>, pk: i64) -> Result<(String, Vec<Arg>), StoreError> {
        let desc = self.descending();
        let gt = if desc { "<" } else { ">" };
        match self {
            SortPlan::Pk | SortPlan::Memory { .. } => {
                Ok((format!("r.pk {gt} ?"), vec![Arg::Int(pk)]))
            }
            SortPlan::Column { expr, int, .. } => {
                let arg = match (key, int) {
                    (None, _) => None,
                    (Some(Key::Int(i)), true) => Some(Arg::Int(*i)),
                    (Some(Key::Text(s)), false) => Some(Arg::Text(s.clone())),
                    _ => return Err(invalid_cursor()),
                };
                Ok(match (arg, desc) {
                    // Missing values come last ascending: after a missing key only missing
                    // keys with a greater pk follow.
                    (None, false) => (format!("({expr} IS NULL AND r.pk > ?)"), vec![Arg::Int(pk)]),
                    (None, true) => (
                        format!("(({expr} IS NULL AND r.pk < ?) OR {expr} IS NOT NULL)"),
                        vec![Arg::Int(pk)],
                    ),
                    (Some(a), false) => (
                        format!("({expr} IS NULL OR {expr} > ? OR ({expr} = ? AND r.pk > ?))"),
                        vec![a.clone(), a, Arg::Int(pk)],
                    ),
                    (Some(a), true) => (
                        format!(
                            "({expr} IS NOT NULL AND ({expr} < ? OR ({expr} = ? AND r.pk < ?)))"
                        ),
                        vec![a.clone(), a, Arg::Int(pk)],
                    ),
                })
            }
        }
    }

    /// The sort key of a full representation (in-memory path).
    pub fn key_of(&self, repr: &Value) -> Option<Key> {
        match self {
            SortPlan::Pk => None,
            SortPlan::Column {
                custom: Some(ix), ..
            } => sort_key(ix, repr).map(Key::Text),
            SortPlan::Column { expr, .. } => match expr.as_ref() {
                "r.id" => repr
                    .get("id")
                    .and_then(Value::as_str)
                    .map(|s| Key::Text(s.to_owned())),
                "r.external_id" => text(repr.get("externalId"), true),
                "r.display_name_lc" => text(repr.get("displayName"), false),
                "r.user_name_lc" => text(repr.get("userName"), false),
                "r.active" => repr
                    .get("active")
                    .and_then(Value::as_bool)
                    .map(|b| Key::Int(i64::from(b))),
                "r.created" => meta_ms(repr, "created"),
                "r.last_modified" => meta_ms(repr, "lastModified"),
                _ => None,
            },
            SortPlan::Memory { spec, case_exact } => {
                let base = match &spec.urn {
                    Some(urn) => repr.get(urn.as_str())?,
                    None => repr,
                };
                let mut v = base.get(spec.attr.as_str())?;
                if let Value::Array(items) = v {
                    // Multi-valued: the primary value, else the first.
                    v = items
                        .iter()
                        .find(|i| i.get("primary").and_then(Value::as_bool) == Some(true))
                        .or_else(|| items.first())?;
                    if spec.sub_attr.is_none() && v.is_object() {
                        v = v.get("value")?;
                    }
                }
                if let Some(sub) = &spec.sub_attr {
                    v = v.get(sub.as_str())?;
                }
                match v {
                    Value::String(_) => text(Some(v), *case_exact),
                    Value::Bool(b) => Some(Key::Bool(*b)),
                    Value::Number(n) => n.as_f64().map(Key::Num),
                    _ => None,
                }
            }
        }
    }
}

fn text(v: Option<&Value>, case_exact: bool) -> Option<Key> {
    let s = v?.as_str()?;
    Some(Key::Text(if case_exact {
        s.to_owned()
    } else {
        fold_case(s)
    }))
}

fn meta_ms(repr: &Value, field: &str) -> Option<Key> {
    let s = repr.get("meta")?.get(field)?.as_str()?;
    parse_datetime(s).map(|t| Key::Int(to_ms(t)))
}

/// The position after which a cursor page starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CursorPos {
    /// The last row's sort key.
    #[serde(rename = "k")]
    pub key: Option<Key>,
    /// The last row's pk.
    #[serde(rename = "p")]
    pub pk: i64,
    /// A short hash of the query the cursor belongs to.
    #[serde(rename = "h")]
    pub hash: String,
}

pub(crate) fn invalid_cursor() -> StoreError {
    StoreError::Invalid("cursor is invalid or does not belong to this query".to_owned())
}

/// A short fingerprint of everything that determines the row order and set.
pub(crate) fn query_hash(
    tenant: &str,
    kind: ResourceKind,
    filter: Option<&Filter>,
    sort: &SortPlan,
    memory: bool,
) -> String {
    let mut h = Sha256::new();
    h.update(
        format!(
            "{tenant}\0{}\0{filter:?}\0{sort:?}\0{memory}",
            kind.as_str()
        )
        .as_bytes(),
    );
    hex::encode(&h.finalize()[..8])
}

/// Encodes a cursor as URL-safe text (hex of compact JSON).
pub(crate) fn encode_cursor(pos: &CursorPos) -> Result<String, StoreError> {
    serde_json::to_vec(pos)
        .map(hex::encode)
        .map_err(|e| StoreError::Backend(Box::new(e)))
}

/// Decodes a cursor and checks that it belongs to the query with `hash`.
pub(crate) fn decode_cursor(s: &str, hash: &str) -> Result<CursorPos, StoreError> {
    let bytes = hex::decode(s).map_err(|_| invalid_cursor())?;
    let pos: CursorPos = serde_json::from_slice(&bytes).map_err(|_| invalid_cursor())?;
    if pos.hash != hash {
        return Err(invalid_cursor());
    }
    Ok(pos)
}
