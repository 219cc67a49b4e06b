//! The statements of the lists of users and groups (admin API, console, CSV export): filters,
//! the contains-search, the order, keyset cursors in both directions and the count. One text
//! for both backends (both drivers take `?` placeholders, and SQLite reads `TRUE`/`FALSE` as
//! 1/0); only the contains-search differs: SQLite's FTS5 trigram table `resource_search`
//! (migration 0019), PostgreSQL's `pg_trgm` index on `roster_search_text(doc)` (migration 0010).
//!
//! Cursors: in creation order a cursor is `c{pk:x}`, as the admin API has always answered; in
//! another order it is `s` and the hex of `[key, pk]` (JSON), the sort key of the row it was
//! taken from. Either is a position, so `cursor` (after it) and `before` (before it) both take
//! it. A page never loads more than `limit + 1` rows, whichever the direction.

use scim_proto::filter::fold_case;
use serde_json::Value;

use crate::app::{AppGroupQuery, AppSort, AppUserQuery, UserStatus};
use crate::domain::query::Arg;
use crate::{StoreError, StoreResult};

/// Which backend's contains-search to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// FTS5 trigram (`resource_search`).
    Sqlite,
    /// `pg_trgm` on `roster_search_text(doc)`.
    Postgres,
}

/// Texts shorter than this (in characters) are searched by prefix: a trigram needs 3.
const TRIGRAM: usize = 3;

/// A list's statements, and what turning its rows into a page needs.
#[derive(Debug, Clone)]
pub(crate) struct ListSql {
    /// The page's SELECT of `cols` (at most `limit + 1` rows).
    pub select: String,
    /// Its parameters.
    pub args: Vec<Arg>,
    /// `SELECT COUNT(*)` of every match, when asked for.
    pub count: Option<(String, Vec<Arg>)>,
    /// Page size.
    pub limit: u64,
    /// Read backwards (a `before` cursor): the rows come in reverse order.
    backwards: bool,
    /// The page was asked for from a cursor (so a previous page may exist).
    from_cursor: bool,
    sort: AppSort,
    /// The document attribute of the name order (`userName` or `displayName`).
    name_attr: &'static str,
}

/// What a row gives for its cursor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowKey<'a> {
    /// `resources.pk`.
    pub pk: i64,
    /// `resources.created`.
    pub created: i64,
    /// `resources.last_modified`.
    pub last_modified: i64,
    /// `resources.doc`.
    pub doc: &'a str,
}

/// A cursor's position.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    Text(String),
    Int(i64),
}

fn bad_cursor() -> StoreError {
    StoreError::Invalid("cursor is not a next_cursor this API returned".to_owned())
}

fn lower_hex(h: &str) -> bool {
    h.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn encode(sort: AppSort, key: Key, pk: i64) -> String {
    if sort == AppSort::Pk {
        return format!("c{pk:x}");
    }
    let v = match key {
        Key::Text(s) => Value::String(s),
        Key::Int(i) => Value::from(i),
    };
    format!(
        "s{}",
        hex::encode(Value::Array(vec![v, Value::from(pk)]).to_string())
    )
}

fn decode(sort: AppSort, c: &str) -> StoreResult<(Option<Key>, i64)> {
    if sort == AppSort::Pk {
        let pk = c
            .strip_prefix('c')
            .filter(|h| (1..=15).contains(&h.len()) && lower_hex(h))
            .and_then(|h| i64::from_str_radix(h, 16).ok())
            .filter(|pk| *pk >= 0)
            .ok_or_else(bad_cursor)?;
        return Ok((None, pk));
    }
    let h = c
        .strip_prefix('s')
        .filter(|h| h.len() <= 4096 && lower_hex(h))
        .ok_or_else(bad_cursor)?;
    let bytes = hex::decode(h).map_err(|_| bad_cursor())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad_cursor())?;
    let (key, pk) = match v.as_array().map(Vec::as_slice) {
        Some([k, pk]) => (k, pk.as_i64().ok_or_else(bad_cursor)?),
        _ => return Err(bad_cursor()),
    };
    let key = match (sort, key) {
        (AppSort::Name, Value::String(s)) => Key::Text(s.clone()),
        (AppSort::Created | AppSort::LastModified, Value::Number(n)) => {
            Key::Int(n.as_i64().ok_or_else(bad_cursor)?)
        }
        _ => return Err(bad_cursor()),
    };
    Ok((Some(key), pk))
}

/// The quoted FTS5 phrase of `text` (its double quotes doubled).
fn fts_phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// `%text%` for LIKE, with `\`, `%` and `_` escaped (PostgreSQL's default escape is `\`).
fn like_contains(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push('%');
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('%');
    s
}

/// The contains-search clause of `text` (3 characters or more).
fn contains_clause(d: Dialect, text: &str, sql: &mut String, args: &mut Vec<Arg>) {
    match d {
        Dialect::Sqlite => {
            sql.push_str(
                " AND r.pk IN (SELECT rowid FROM resource_search \
                 WHERE resource_search MATCH ?)",
            );
            args.push(Arg::Text(fts_phrase(text)));
        }
        Dialect::Postgres => {
            sql.push_str(" AND roster_search_text(r.doc) LIKE lower(?)");
            args.push(Arg::Text(like_contains(text)));
        }
    }
}

/// `low <= col < low + U+10FFFF`: a prefix as an indexed range.
fn prefix_range(p: &str) -> (String, String) {
    let low = fold_case(p);
    let high = format!("{low}\u{10FFFF}");
    (low, high)
}

/// userName or an email starts with `p`.
fn user_prefix_clause(tenant: &str, p: &str, sql: &mut String, args: &mut Vec<Arg>) {
    let (low, high) = prefix_range(p);
    sql.push_str(
        " AND ((r.user_name_lc >= ? AND r.user_name_lc < ?) \
         OR r.pk IN (SELECT e.resource_pk FROM emails e \
         WHERE e.tenant_id = ? AND e.value_lc >= ? AND e.value_lc < ?))",
    );
    args.push(Arg::Text(low.clone()));
    args.push(Arg::Text(high.clone()));
    args.push(Arg::Text(tenant.to_owned()));
    args.push(Arg::Text(low));
    args.push(Arg::Text(high));
}

/// A search text worth searching (trimmed, not empty).
fn text(s: Option<&String>) -> Option<&str> {
    s.map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// The statements of a list of users, selecting `cols` (of `resources r`).
pub(crate) fn users(
    d: Dialect,
    tenant: &str,
    q: &AppUserQuery,
    cols: &str,
) -> StoreResult<ListSql> {
    let mut sql = String::from("r.tenant_id = ? AND r.kind = 'User'");
    let mut args = vec![Arg::Text(tenant.to_owned())];
    if let Some(p) = q.user_name_prefix.as_deref().filter(|p| !p.is_empty()) {
        let (low, high) = prefix_range(p);
        sql.push_str(" AND r.user_name_lc >= ? AND r.user_name_lc < ?");
        args.push(Arg::Text(low));
        args.push(Arg::Text(high));
    }
    if let Some(p) = q.search.as_deref().filter(|p| !p.is_empty()) {
        user_prefix_clause(tenant, p, &mut sql, &mut args);
    }
    if let Some(t) = text(q.contains.as_ref()) {
        if t.chars().count() >= TRIGRAM {
            contains_clause(d, t, &mut sql, &mut args);
        } else {
            user_prefix_clause(tenant, t, &mut sql, &mut args);
        }
    }
    if let Some(e) = &q.email {
        sql.push_str(
            " AND r.pk IN (SELECT e.resource_pk FROM emails e \
             WHERE e.tenant_id = ? AND e.value_lc = ?)",
        );
        args.push(Arg::Text(tenant.to_owned()));
        args.push(Arg::Text(fold_case(e)));
    }
    if let Some(x) = &q.external_id {
        sql.push_str(" AND r.external_id = ?");
        args.push(Arg::Text(x.clone()));
    }
    match q.status {
        Some(UserStatus::Active) => {
            sql.push_str(" AND r.deleted = FALSE AND (r.active IS NULL OR r.active = TRUE)");
        }
        Some(UserStatus::Deactivated) => {
            sql.push_str(" AND r.deleted = FALSE AND r.active = FALSE")
        }
        Some(UserStatus::Deprovisioned) => sql.push_str(" AND r.deleted = TRUE"),
        None => {}
    }
    if let Some(m) = q.managed {
        sql.push_str(" AND r.managed = ?");
        args.push(Arg::Int(i64::from(m)));
    }
    Shape {
        sort: q.sort,
        desc: q.desc,
        cursor: q.cursor.as_deref(),
        before: q.before.as_deref(),
        limit: q.limit,
        count: q.count,
        name_col: "r.user_name_lc",
        name_attr: "userName",
    }
    .finish(cols, sql, args)
}

/// The statements of a list of groups, selecting `cols` (of `resources r`).
pub(crate) fn groups(
    d: Dialect,
    tenant: &str,
    q: &AppGroupQuery,
    cols: &str,
) -> StoreResult<ListSql> {
    let mut sql = String::from("r.tenant_id = ? AND r.kind = 'Group'");
    let mut args = vec![Arg::Text(tenant.to_owned())];
    let prefix = |p: &str, sql: &mut String, args: &mut Vec<Arg>| {
        let (low, high) = prefix_range(p);
        sql.push_str(" AND r.display_name_lc >= ? AND r.display_name_lc < ?");
        args.push(Arg::Text(low));
        args.push(Arg::Text(high));
    };
    if let Some(p) = q.display_name_prefix.as_deref().filter(|p| !p.is_empty()) {
        prefix(p, &mut sql, &mut args);
    }
    if let Some(t) = text(q.contains.as_ref()) {
        if t.chars().count() >= TRIGRAM {
            contains_clause(d, t, &mut sql, &mut args);
        } else {
            prefix(t, &mut sql, &mut args);
        }
    }
    if let Some(m) = q.managed {
        sql.push_str(" AND r.managed = ?");
        args.push(Arg::Int(i64::from(m)));
    }
    Shape {
        sort: q.sort,
        desc: q.desc,
        cursor: q.cursor.as_deref(),
        before: q.before.as_deref(),
        limit: q.limit,
        count: q.count,
        name_col: "r.display_name_lc",
        name_attr: "displayName",
    }
    .finish(cols, sql, args)
}

/// The order and position of a list.
struct Shape<'a> {
    sort: AppSort,
    desc: bool,
    cursor: Option<&'a str>,
    before: Option<&'a str>,
    limit: u64,
    count: bool,
    name_col: &'static str,
    name_attr: &'static str,
}

impl Shape<'_> {
    fn finish(self, cols: &str, filters: String, args: Vec<Arg>) -> StoreResult<ListSql> {
        let count = self.count.then(|| {
            (
                format!("SELECT COUNT(*) FROM resources r WHERE {filters}"),
                args.clone(),
            )
        });
        let col = match self.sort {
            AppSort::Pk => None,
            AppSort::Name => Some(self.name_col),
            AppSort::Created => Some("r.created"),
            AppSort::LastModified => Some("r.last_modified"),
        };
        let backwards = self.before.is_some();
        // Rows are read in the page's order, or its reverse when reading backwards.
        let descending = self.desc != backwards;
        let (op, dir) = if descending {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let mut sql = format!("SELECT {cols} FROM resources r WHERE {filters}");
        let mut args = args;
        if let Some(c) = self.before.or(self.cursor) {
            let (key, pk) = decode(self.sort, c)?;
            match (col, key) {
                (Some(col), Some(key)) => {
                    sql.push_str(&format!(" AND ({col}, r.pk) {op} (?, ?)"));
                    args.push(match key {
                        Key::Text(s) => Arg::Text(s),
                        Key::Int(i) => Arg::Int(i),
                    });
                    args.push(Arg::Int(pk));
                }
                _ => {
                    sql.push_str(&format!(" AND r.pk {op} ?"));
                    args.push(Arg::Int(pk));
                }
            }
        }
        match col {
            Some(col) => sql.push_str(&format!(" ORDER BY {col} {dir}, r.pk {dir} LIMIT ?")),
            None => sql.push_str(&format!(" ORDER BY r.pk {dir} LIMIT ?")),
        }
        let limit = self.limit.max(1);
        args.push(Arg::Int(
            i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1),
        ));
        Ok(ListSql {
            select: sql,
            args,
            count,
            limit,
            backwards,
            from_cursor: self.before.is_some() || self.cursor.is_some(),
            sort: self.sort,
            name_attr: self.name_attr,
        })
    }
}

impl ListSql {
    /// The cursor of a row.
    fn cursor_of(&self, k: RowKey<'_>) -> String {
        let key = match self.sort {
            AppSort::Pk => Key::Int(0),
            AppSort::Created => Key::Int(k.created),
            AppSort::LastModified => Key::Int(k.last_modified),
            AppSort::Name => Key::Text(
                serde_json::from_str::<Value>(k.doc)
                    .ok()
                    .and_then(|d| d.get(self.name_attr).and_then(Value::as_str).map(fold_case))
                    .unwrap_or_default(),
            ),
        };
        encode(self.sort, key, k.pk)
    }

    /// The page of `rows` (as the SELECT answered them): the rows in the page's order, the
    /// next page's cursor and the previous page's.
    pub(crate) fn page<R>(
        &self,
        mut rows: Vec<R>,
        key: impl Fn(&R) -> RowKey<'_>,
    ) -> (Vec<R>, Option<String>, Option<String>) {
        let more = rows.len() as u64 > self.limit;
        rows.truncate(usize::try_from(self.limit).unwrap_or(usize::MAX));
        if self.backwards {
            rows.reverse();
        }
        let first = rows.first().map(|r| self.cursor_of(key(r)));
        let last = rows.last().map(|r| self.cursor_of(key(r)));
        let (next, prev) = if self.backwards {
            (last, first.filter(|_| more))
        } else {
            (last.filter(|_| more), first.filter(|_| self.from_cursor))
        };
        (rows, next, prev)
    }
}

/// The cursor of a group's member page: after the member with this folded userName and id
/// (the hex of `name NUL id`). Every even-length lowercase hex string reads as a position, so
/// a cursor edited by hand pages from somewhere instead of failing.
pub(crate) fn member_cursor(name: &str, id: &str) -> String {
    hex::encode(format!("{name}\u{0}{id}"))
}

/// Reads [`member_cursor`]'s cursor: the name up to the first NUL, the id after it (none:
/// the name alone, before every id).
pub(crate) fn decode_member_cursor(c: &str) -> StoreResult<(String, String)> {
    if c.len() > 4096 || !lower_hex(c) {
        return Err(bad_cursor());
    }
    let bytes = hex::decode(c).map_err(|_| bad_cursor())?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(match text.split_once('\u{0}') {
        // PostgreSQL's text holds no NUL: a second one (never written here) is dropped.
        Some((name, id)) => (name.to_owned(), id.replace('\u{0}', "")),
        None => (text.into_owned(), String::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_and_refuse_what_they_did_not_write() {
        let c = encode(AppSort::Name, Key::Text("ann".into()), 42);
        assert_eq!(
            decode(AppSort::Name, &c).unwrap(),
            (Some(Key::Text("ann".into())), 42)
        );
        let c = encode(AppSort::Created, Key::Int(7), 3);
        assert_eq!(
            decode(AppSort::Created, &c).unwrap(),
            (Some(Key::Int(7)), 3)
        );
        assert_eq!(decode(AppSort::Pk, "c2a").unwrap(), (None, 42));
        assert!(
            decode(AppSort::Name, &c).is_err(),
            "a created cursor is no name cursor"
        );
        assert!(decode(AppSort::Name, "s7a").is_err());
        assert!(decode(AppSort::Pk, "s00").is_err());
        assert!(decode(AppSort::Created, "sZZ").is_err());
        let m = member_cursor("ann", "u1");
        assert_eq!(
            decode_member_cursor(&m).unwrap(),
            ("ann".into(), "u1".into())
        );
        // Any even-length hex is a position (schema-valid cursors are all accepted).
        assert_eq!(
            decode_member_cursor("1522d9").unwrap(),
            ("\u{15}\"\u{fffd}".into(), String::new())
        );
        assert_eq!(
            decode_member_cursor("000000").unwrap(),
            (String::new(), String::new())
        );
        assert!(decode_member_cursor("123").is_err(), "odd length");
        assert!(decode_member_cursor("ZZ").is_err());
    }

    #[test]
    fn search_texts_are_quoted() {
        assert_eq!(fts_phrase("a\"b"), "\"a\"\"b\"");
        assert_eq!(like_contains("50%_a\\"), "%50\\%\\_a\\\\%");
    }
}
