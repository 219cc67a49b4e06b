//! Importing existing app users (`POST /tenants/{tenant}/users/import`, `roster users import`):
//! JSON lines or CSV, one user a line, stored as users that SCIM does not manage.
//!
//! Fields (JSON keys or CSV header columns; camelCase spellings are accepted too): `user_name`
//! (required), `id` (the app's own id, kept as the user's id; generated when absent), `email`
//! (the primary email), `given_name`, `family_name`, `display_name`, `external_id`, `active`
//! (default true), `roles` (directly assigned; in CSV separated by `;`), `groups` (displayNames
//! of app groups, created when missing; in CSV separated by `;`) and `metadata` (a JSON object;
//! in CSV, its JSON text). Each line is judged on its own: a bad line is reported with its
//! number and the rest is imported; a userName or id that exists already is skipped, so
//! importing the same file twice changes nothing the second time.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use roster_store::app::{ImportResult, ImportUser};
use roster_store::{Store, StoreResult};
use scim_proto::resource::normalize;
use scim_proto::schema::{ResourceKind, USER_SCHEMA};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use super::{audit, require_tenant, AdminAuth, ApiError, ApiPath, ApiQuery};
use crate::ops::users::{looks_like_email, not_an_email, valid_metadata, valid_roles};
use crate::AppState;

/// Largest import body the API accepts; larger files go through `roster users import`.
pub const MAX_IMPORT_BYTES: usize = 16 * 1024 * 1024;
/// Users written per store transaction, so that a big import never holds the write lock long.
pub const BATCH: usize = 500;
/// Longest id, in characters.
const MAX_ID_LEN: usize = 128;
/// Longest text field, in characters.
const MAX_FIELD_LEN: usize = 1024;

/// The two import formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object a line.
    Jsonl,
    /// RFC 4180 CSV with a header row.
    Csv,
}

impl Format {
    /// The format of a file name's extension (`.csv`; `.jsonl`, `.ndjson`, `.json`).
    #[must_use]
    pub fn of_path(path: &str) -> Option<Self> {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".csv") {
            Some(Self::Csv)
        } else if [".jsonl", ".ndjson", ".json"]
            .iter()
            .any(|e| lower.ends_with(e))
        {
            Some(Self::Jsonl)
        } else {
            None
        }
    }

    /// The format of a media type.
    #[must_use]
    pub fn of_media_type(ct: &str) -> Option<Self> {
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "text/csv" => Some(Self::Csv),
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/jsonlines"
            | "application/json-lines" => Some(Self::Jsonl),
            _ => None,
        }
    }
}

/// One record of an import file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    id: Option<String>,
    #[serde(alias = "userName", alias = "username")]
    user_name: Option<String>,
    email: Option<String>,
    #[serde(alias = "givenName", alias = "first_name")]
    given_name: Option<String>,
    #[serde(alias = "familyName", alias = "last_name")]
    family_name: Option<String>,
    #[serde(alias = "displayName")]
    display_name: Option<String>,
    #[serde(alias = "externalId")]
    external_id: Option<String>,
    active: Option<bool>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    metadata: Option<Value>,
}

/// A parsed line: its number (1-based, of the line it starts on) and the user or why not.
#[derive(Debug, Clone)]
pub struct ParsedLine {
    /// Line number.
    pub line: usize,
    /// The user to import, or what is wrong with the line.
    pub record: Result<ImportUser, String>,
}

fn text(field: &str, v: Option<String>) -> Result<Option<String>, String> {
    match v {
        Some(s) if s.chars().count() > MAX_FIELD_LEN => {
            Err(format!("{field} is longer than {MAX_FIELD_LEN} characters"))
        }
        Some(s) if s.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

fn to_user(r: Record) -> Result<ImportUser, String> {
    let user_name = text("user_name", r.user_name)?.ok_or("user_name is required")?;
    let id = match r.id.filter(|i| !i.is_empty()) {
        Some(id) => {
            let ok = id.len() <= MAX_ID_LEN
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if !ok {
                return Err(format!(
                    "id must have 1 to {MAX_ID_LEN} letters, digits, '-', '.', '_' or '~' (it appears in URLs), not {id:?}"
                ));
            }
            id
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let mut doc = Map::new();
    doc.insert("schemas".into(), json!([USER_SCHEMA]));
    doc.insert("userName".into(), json!(user_name));
    let mut name = Map::new();
    if let Some(g) = text("given_name", r.given_name)? {
        name.insert("givenName".into(), json!(g));
    }
    if let Some(f) = text("family_name", r.family_name)? {
        name.insert("familyName".into(), json!(f));
    }
    if !name.is_empty() {
        doc.insert("name".into(), Value::Object(name));
    }
    if let Some(d) = text("display_name", r.display_name)? {
        doc.insert("displayName".into(), json!(d));
    }
    if let Some(e) = text("email", r.email)? {
        if !looks_like_email(&e) {
            return Err(not_an_email("email", &e));
        }
        doc.insert(
            "emails".into(),
            json!([{"value": e, "type": "work", "primary": true}]),
        );
    }
    if let Some(x) = text("external_id", r.external_id)? {
        doc.insert("externalId".into(), json!(x));
    }
    doc.insert("active".into(), json!(r.active.unwrap_or(true)));
    let doc = normalize(ResourceKind::User.def(), &Value::Object(doc), None)
        .map_err(|e| e.detail)?
        .doc;
    let roles = valid_roles("roles", &r.roles)?;
    let mut groups: Vec<String> = Vec::new();
    for g in r.groups {
        let g = g.trim().to_owned();
        if g.is_empty() {
            continue;
        }
        if g.chars().count() > MAX_FIELD_LEN {
            return Err(format!(
                "a group name is longer than {MAX_FIELD_LEN} characters"
            ));
        }
        if !groups.iter().any(|x| x.eq_ignore_ascii_case(&g)) {
            groups.push(g);
        }
    }
    let metadata = match r.metadata {
        Some(m) => valid_metadata(&m)?,
        None => json!({}),
    };
    Ok(ImportUser {
        id,
        doc,
        roles,
        groups,
        metadata,
    })
}

/// Splits CSV text into records of fields (RFC 4180: `"` quotes, `""` escapes, quoted fields
/// may hold commas and line breaks); each record with the number of the line it starts on.
///
/// # Errors
/// An unterminated quoted field, or a quote in the middle of an unquoted one.
pub fn csv_records(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let mut out = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut quoted = false; // inside quotes
    let mut was_quoted = false; // the current field was quoted
    let mut line = 1;
    let mut start = 1;
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
                any = true;
            }
            '"' => {
                return Err(format!(
                    "line {line}: a quote inside an unquoted field; quote the whole field and double the quote"
                ))
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
                any = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if any || !field.is_empty() {
                    fields.push(std::mem::take(&mut field));
                    out.push((start, std::mem::take(&mut fields)));
                }
                was_quoted = false;
                any = false;
                line += 1;
                start = line;
            }
            c => {
                field.push(c);
                any = true;
            }
        }
    }
    if quoted {
        return Err(format!("line {start}: a quoted field is not closed"));
    }
    if any || !field.is_empty() {
        fields.push(field);
        out.push((start, fields));
    }
    Ok(out)
}

fn csv_column(name: &str) -> Option<&'static str> {
    let n: String = name
        .trim()
        .chars()
        .filter(|c| *c != '_' && *c != '-' && *c != ' ')
        .flat_map(char::to_lowercase)
        .collect();
    Some(match n.as_str() {
        "id" => "id",
        "username" => "user_name",
        "email" => "email",
        "givenname" | "firstname" => "given_name",
        "familyname" | "lastname" => "family_name",
        "displayname" => "display_name",
        "externalid" => "external_id",
        "active" => "active",
        "roles" => "roles",
        "groups" => "groups",
        "metadata" => "metadata",
        _ => return None,
    })
}

fn csv_record(columns: &[&'static str], values: Vec<String>) -> Result<Record, String> {
    if values.len() != columns.len() {
        return Err(format!(
            "{} fields where the header has {}",
            values.len(),
            columns.len()
        ));
    }
    let mut r = Record::default();
    let list = |v: &str| -> Vec<String> {
        v.split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    for (col, v) in columns.iter().zip(values) {
        let opt = (!v.trim().is_empty()).then(|| v.clone());
        match *col {
            "id" => r.id = opt,
            "user_name" => r.user_name = opt,
            "email" => r.email = opt,
            "given_name" => r.given_name = opt,
            "family_name" => r.family_name = opt,
            "display_name" => r.display_name = opt,
            "external_id" => r.external_id = opt,
            "active" => {
                r.active = match v.trim().to_ascii_lowercase().as_str() {
                    "" => None,
                    "true" | "1" | "yes" => Some(true),
                    "false" | "0" | "no" => Some(false),
                    other => return Err(format!("active must be true or false, not {other:?}")),
                }
            }
            "roles" => r.roles = list(&v),
            "groups" => r.groups = list(&v),
            "metadata" => {
                r.metadata = opt
                    .map(|t| {
                        serde_json::from_str(&t)
                            .map_err(|e| format!("metadata is not valid JSON: {e}"))
                    })
                    .transpose()?;
            }
            _ => {}
        }
    }
    Ok(r)
}

/// Parses an import file.
///
/// # Errors
/// A message when the whole file is unusable (a CSV without a usable header row).
pub fn parse(format: Format, text: &str) -> Result<Vec<ParsedLine>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match format {
        Format::Jsonl => Ok(text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| ParsedLine {
                line: i + 1,
                record: serde_json::from_str::<Record>(l)
                    .map_err(|e| format!("not a user object: {e}"))
                    .and_then(to_user),
            })
            .collect()),
        Format::Csv => {
            let mut records = csv_records(text)?.into_iter();
            let Some((_, header)) = records.next() else {
                return Ok(Vec::new());
            };
            let mut columns = Vec::with_capacity(header.len());
            for h in &header {
                match csv_column(h) {
                    Some(c) if !columns.contains(&c) => columns.push(c),
                    Some(c) => return Err(format!("the header names column {c} twice")),
                    None => {
                        return Err(format!(
                            "unknown column {h:?} in the header; known: id, user_name, email, \
                             given_name, family_name, display_name, external_id, active, roles, \
                             groups, metadata"
                        ))
                    }
                }
            }
            if !columns.contains(&"user_name") {
                return Err("the header has no user_name column".to_owned());
            }
            Ok(records
                .map(|(line, values)| ParsedLine {
                    line,
                    record: csv_record(&columns, values).and_then(to_user),
                })
                .collect())
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Users imported.
    pub imported: usize,
    /// (line, reason) of records left alone (their userName or id exists).
    pub skipped: Vec<(usize, String)>,
    /// (line, message) of lines that are not valid users.
    pub errors: Vec<(usize, String)>,
}

impl Summary {
    /// The API's (and `roster users import --json`'s) answer.
    #[must_use]
    pub fn to_json(&self) -> Value {
        json!({
            "imported": self.imported,
            "skipped": self.skipped.iter().map(|(l, r)| json!({"line": l, "reason": r})).collect::<Vec<_>>(),
            "errors": self.errors.iter().map(|(l, m)| json!({"line": l, "message": m})).collect::<Vec<_>>(),
        })
    }
}

/// Imports parsed lines in batches of [`BATCH`], calling `progress` with the number of lines
/// done after each batch.
///
/// # Errors
/// When the store fails (`NotFound` for an unknown tenant); batches already written stay.
pub async fn run(
    store: &dyn Store,
    tenant: &str,
    lines: Vec<ParsedLine>,
    now: OffsetDateTime,
    mut progress: impl FnMut(usize),
) -> StoreResult<Summary> {
    let mut summary = Summary::default();
    let mut batch: Vec<(usize, ImportUser)> = Vec::with_capacity(BATCH);
    let total = lines.len();
    let mut done = 0;
    let mut iter = lines.into_iter().peekable();
    while iter.peek().is_some() {
        for p in iter.by_ref() {
            done += 1;
            match p.record {
                Ok(u) => batch.push((p.line, u)),
                Err(m) => summary.errors.push((p.line, m)),
            }
            if batch.len() == BATCH {
                break;
            }
        }
        if !batch.is_empty() {
            let (numbers, users): (Vec<usize>, Vec<ImportUser>) = batch.drain(..).unzip();
            let results = store.import_users(tenant, users, now).await?;
            for (line, r) in numbers.into_iter().zip(results) {
                match r {
                    ImportResult::Imported => summary.imported += 1,
                    ImportResult::Skipped(why) => summary.skipped.push((line, why)),
                }
            }
        }
        progress(done.min(total));
    }
    Ok(summary)
}

/// Whether a file names `user_name` (or `username`, in any letter case) anywhere: a file
/// that does not cannot hold a single user, so the API refuses it whole (the OpenAPI pattern
/// `[Uu][Ss][Ee][Rr]_?[Nn][Aa][Mm][Ee]` says the same), where other problems are reported
/// line by line.
#[must_use]
pub fn names_user_name(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("user_name") || lower.contains("username")
}

/// Query of the import endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// `jsonl` or `csv`; by default taken from `Content-Type`.
    pub format: Option<Format>,
}

/// `POST /api/v1/tenants/{tenant}/users/import`
///
/// # Errors
/// 401, 404, 400 (empty, or not UTF-8), 413, 415 (no format). Everything wrong with the file's content
/// is in the report (`errors`), including an unusable CSV header.
pub async fn handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<ImportQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    require_tenant(&state, &tenant).await?;
    let format = match q.format {
        Some(f) => f,
        None => headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(Format::of_media_type)
            .ok_or_else(|| ApiError {
                details: None,
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: "invalid_request",
                message: "send Content-Type text/csv or application/x-ndjson (JSON lines), or \
                          ?format=csv|jsonl"
                    .into(),
            })?,
    };
    let bytes = axum::body::to_bytes(body, MAX_IMPORT_BYTES)
        .await
        .map_err(|_| ApiError {
            details: None,
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "invalid_request",
            message: format!(
                "the import body is larger than {MAX_IMPORT_BYTES} bytes (or was cut off); \
                 import big files with `roster users import`"
            ),
        })?;
    if bytes.is_empty() {
        return Err(ApiError::invalid(
            "the import body is empty: send the CSV or JSON lines file",
        ));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::invalid("the import body is not UTF-8 text"))?;
    if !names_user_name(text) {
        return Err(ApiError::invalid(
            "the import body names no user_name (a CSV header column or a JSON key): it holds \
             no users",
        ));
    }
    // A file that cannot be read at all is reported like a bad line (the answer is the import's
    // report, whatever the file holds), on the line where its header is.
    let summary = match parse(format, text) {
        Ok(lines) => {
            run(
                state.store.as_ref(),
                &tenant,
                lines,
                state.clock.now(),
                |_| {},
            )
            .await?
        }
        Err(m) => Summary {
            errors: vec![(1, m)],
            ..Summary::default()
        },
    };
    audit(
        state.store.as_ref(),
        state.clock.now(),
        &auth.actor(),
        "users.import",
        Some(&tenant),
        None,
        json!({
            "imported": summary.imported,
            "skipped": summary.skipped.len(),
            "errors": summary.errors.len(),
        }),
    )
    .await;
    Ok(Json(summary.to_json()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_follows_rfc_4180() {
        let recs = csv_records("a,b\r\n\"x, \"\"y\"\"\",\"multi\nline\"\n\nlast,\n").unwrap();
        assert_eq!(
            recs,
            vec![
                (1, vec!["a".to_owned(), "b".to_owned()]),
                (2, vec!["x, \"y\"".to_owned(), "multi\nline".to_owned()]),
                (5, vec!["last".to_owned(), String::new()]),
            ]
        );
        assert!(csv_records("\"open").is_err());
        assert!(csv_records("a\"b").is_err());
    }

    #[test]
    fn csv_lines_become_users() {
        let text = "userName,Email,first_name,last_name,active,roles,groups\n\
                    bob,bob@example.com,Bob,Builder,false,admin;viewer,Sales;sales\n\
                    ,nobody@example.com,,,,,\n";
        let lines = parse(Format::Csv, text).unwrap();
        assert_eq!(lines.len(), 2);
        let u = lines[0].record.as_ref().unwrap();
        assert_eq!(u.doc["userName"], "bob");
        assert_eq!(u.doc["active"], false);
        assert_eq!(u.doc["name"]["familyName"], "Builder");
        assert_eq!(u.doc["emails"][0]["value"], "bob@example.com");
        assert_eq!(u.roles, ["admin", "viewer"]);
        assert_eq!(u.groups, ["Sales"]);
        assert_eq!(lines[1].line, 3);
        assert!(lines[1].record.as_ref().unwrap_err().contains("user_name"));
        assert!(parse(Format::Csv, "user_name,shoe_size\n").is_err());
        assert!(parse(Format::Csv, "email\n").is_err());
    }

    #[test]
    fn jsonl_lines_become_users_or_errors() {
        let text = "{\"user_name\": \"a\", \"id\": \"app-1\", \"metadata\": {\"plan\": \"pro\"}}\n\n\
                    {\"userName\": \"b\", \"shoe\": 1}\nnot json\n{\"user_name\": \"c\", \"id\": \"a/b\"}\n";
        let lines = parse(Format::Jsonl, text).unwrap();
        assert_eq!(
            lines.iter().map(|l| l.line).collect::<Vec<_>>(),
            [1, 3, 4, 5]
        );
        let u = lines[0].record.as_ref().unwrap();
        assert_eq!(u.id, "app-1");
        assert_eq!(u.metadata, json!({"plan": "pro"}));
        assert!(lines[1].record.is_err());
        assert!(lines[2].record.is_err());
        assert!(lines[3].record.as_ref().unwrap_err().contains("id must"));
    }

    #[test]
    fn formats_come_from_names_and_media_types() {
        assert_eq!(Format::of_path("x.CSV"), Some(Format::Csv));
        assert_eq!(Format::of_path("x.ndjson"), Some(Format::Jsonl));
        assert_eq!(Format::of_path("x.txt"), None);
        assert_eq!(
            Format::of_media_type("text/csv; charset=utf-8"),
            Some(Format::Csv)
        );
        assert_eq!(
            Format::of_media_type("application/x-ndjson"),
            Some(Format::Jsonl)
        );
        assert_eq!(Format::of_media_type("application/json"), None);
    }
}
