//! The SCIM operations behind the handlers: create, read, list, replace, patch, delete.
//!
//! Each function validates with the protocol core, talks to the store, and builds the full
//! resource representation (stored document + `id`, `meta`, `members`/`groups`) before the
//! projection is applied. Writes are optimistic: a PATCH or PUT reads a version and writes only
//! if it is unchanged, retrying a few times when the client sent no `If-Match`.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use roster_store::{
    CreateOutcome, GroupRef, GroupStream, ListQuery, MemberOp, MemberPages, NewResource, PageRead,
    PageRequest, Relations, ResourceUpdate, SortSpec, StoreError, StoredResource,
};
use scim_proto::filter::{
    format_datetime, parse_filter, validate_value_filter, AttrPath, CompValue, CompareOp, Filter,
};
use scim_proto::patch::{apply_patch, parse_patch, MemberChange};
use scim_proto::projection::Projection;
use scim_proto::resource::normalize;
use scim_proto::schema::{ResourceKind, TypeDef, LIST_RESPONSE_SCHEMA};
use scim_proto::ScimError;
use serde_json::{json, Map, Value};

use crate::changes::change_events;
use crate::error::HttpError;
use crate::ops::guard;
use crate::{provlog, AppState};

/// How many times a write is retried after losing an optimistic-concurrency race.
const WRITE_ATTEMPTS: usize = 10;
/// Members are read from the store in pages of this size when a representation includes them;
/// a Group with more members than this is streamed by `GET /Groups/{id}`.
pub const MEMBER_PAGE: u64 = 5000;

/// The request context shared by every operation: which tenant, and the absolute base URL.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The tenant id.
    pub tenant: String,
    /// The absolute SCIM base URL of the tenant (`https://host/scim/v2/acme`).
    pub base: String,
    /// The tenant's User type: the built-in schemas and its custom extensions.
    pub user: TypeDef,
    /// The tenant's Group type.
    pub group: TypeDef,
}

impl Ctx {
    /// The tenant's definition of `kind`.
    #[must_use]
    pub fn def(&self, kind: ResourceKind) -> TypeDef {
        match kind {
            ResourceKind::User => self.user,
            ResourceKind::Group => self.group,
        }
    }
}

/// The weak ETag of a stored version.
#[must_use]
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// A resource as returned to the client, with its ETag and location.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The projected representation.
    pub body: Value,
    /// The resource's ETag.
    pub etag: String,
    /// `meta.location`.
    pub location: String,
}

/// Hashes a SCIM `password` with Argon2id on the blocking pool, behind
/// [`AppState::hashing`] (about one hash per core at once), so that a burst of creates with
/// passwords neither stalls the async workers nor takes every core.
async fn hash_password(state: &AppState, password: &str) -> Result<String, HttpError> {
    let busy = || HttpError {
        error: ScimError::new(
            503,
            None,
            "the server is busy hashing passwords; nothing was changed; retry later",
        ),
        headers: vec![(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static(crate::error::RETRY_AFTER),
        )],
    };
    let permit = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        state.hashing.clone().acquire_owned(),
    )
    .await
    .map_err(|_| busy())?
    .map_err(|_| busy())?;
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(|_| HttpError::from(ScimError::internal()))?
    .map_err(|e| {
        tracing::error!(error = %e, "password hashing failed");
        HttpError::from(ScimError::internal())
    })
}

/// The hash of a request's password, computed once however often its write is retried.
#[derive(Default)]
struct PasswordMemo(Option<(String, String)>);

impl PasswordMemo {
    async fn hash(
        &mut self,
        state: &AppState,
        password: Option<&str>,
    ) -> Result<Option<String>, HttpError> {
        let Some(p) = password else {
            return Ok(None);
        };
        if let Some((plain, hash)) = &self.0 {
            if plain == p {
                return Ok(Some(hash.clone()));
            }
        }
        let hash = hash_password(state, p).await?;
        self.0 = Some((p.to_owned(), hash.clone()));
        Ok(Some(hash))
    }
}

/// A short random pause before retrying a write that lost a race, so that the racers do not
/// collide again in lockstep.
async fn backoff() {
    use rand::Rng;
    let ms = rand::thread_rng().gen_range(1..=20);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

fn location(ctx: &Ctx, kind: ResourceKind, id: &str) -> String {
    format!("{}/{}/{id}", ctx.base, kind.endpoint())
}

/// Which relations a representation under `proj` needs: a User's `groups` and a Group's
/// `members` are read only when the projection returns them, so
/// `excludedAttributes=members` never touches the membership rows.
#[must_use]
pub fn relations_for(kind: ResourceKind, proj: &Projection) -> Relations {
    Relations {
        groups: kind == ResourceKind::User && proj.includes(kind.def(), "groups"),
        members: kind == ResourceKind::Group && proj.includes(kind.def(), "members"),
    }
}

/// The stored document with `schemas` first and `id` after it.
fn base_repr(res: &StoredResource) -> Map<String, Value> {
    let mut full = Map::new();
    let doc = res.doc.as_object().cloned().unwrap_or_default();
    if let Some(s) = doc.get("schemas") {
        full.insert("schemas".into(), s.clone());
    }
    full.insert("id".into(), Value::String(res.id.clone()));
    for (k, v) in doc {
        if k != "schemas" {
            full.insert(k, v);
        }
    }
    full
}

fn meta_of(ctx: &Ctx, res: &StoredResource) -> Value {
    json!({
        "resourceType": res.kind.as_str(),
        "created": format_datetime(res.created),
        "lastModified": format_datetime(res.last_modified),
        "location": location(ctx, res.kind, &res.id),
        "version": etag(res.version),
    })
}

/// One element of a Group's `members`, before projection.
fn member_value(ctx: &Ctx, id: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("value".into(), Value::String(id.to_owned()));
    m.insert(
        "$ref".into(),
        Value::String(location(ctx, ResourceKind::User, id)),
    );
    m.insert("type".into(), Value::String("User".into()));
    m
}

/// Builds the full representation of a stored resource with the relations read for it and
/// applies the projection. `groups` (Users) and `members` (Groups) are `None` when they were
/// not read; an empty list leaves the attribute out, as an absent one.
#[must_use]
pub fn render_with(
    ctx: &Ctx,
    res: &StoredResource,
    groups: Option<&[GroupRef]>,
    members: Option<&[String]>,
    proj: &Projection,
) -> Rendered {
    let kind = res.kind;
    let mut full = base_repr(res);
    if let Some(groups) = groups.filter(|g| !g.is_empty()) {
        let arr = groups
            .iter()
            .map(|g| {
                json!({
                    "value": g.id,
                    "$ref": location(ctx, ResourceKind::Group, &g.id),
                    "display": g.display_name,
                    "type": "direct",
                })
            })
            .collect();
        full.insert("groups".into(), Value::Array(arr));
    }
    if let Some(members) = members.filter(|m| !m.is_empty()) {
        let arr = members
            .iter()
            .map(|id| Value::Object(member_value(ctx, id)))
            .collect();
        full.insert("members".into(), Value::Array(arr));
    }
    full.insert("meta".into(), meta_of(ctx, res));
    Rendered {
        body: proj.apply(ctx.def(kind), &Value::Object(full)),
        etag: etag(res.version),
        location: location(ctx, kind, &res.id),
    }
}

/// Builds the full representation of a stored resource, reading the relations the projection
/// returns, and applies the projection. For the answers of writes; reads get their relations
/// with the resource in one store call (see [`get`], [`list`]).
///
/// # Errors
/// When the store fails.
pub async fn render(
    state: &AppState,
    ctx: &Ctx,
    res: &StoredResource,
    proj: &Projection,
) -> Result<Rendered, HttpError> {
    let with = relations_for(res.kind, proj);
    let groups = if with.groups {
        // One statement (the row with its groups aggregated), where `groups_of_user` costs a
        // read transaction of two.
        let read = state
            .store
            .read_resource(&ctx.tenant, ResourceKind::User, &res.id, with)
            .await?
            .ok_or(StoreError::NotFound)?;
        Some(read.groups.unwrap_or_default())
    } else {
        None
    };
    let members = if with.members {
        Some(all_member_ids(state, ctx, &res.id).await?)
    } else {
        None
    };
    Ok(render_with(
        ctx,
        res,
        groups.as_deref(),
        members.as_deref(),
        proj,
    ))
}

fn not_found(kind: ResourceKind, id: &str) -> HttpError {
    HttpError::from(ScimError::not_found(format!(
        "{} \"{id}\" not found",
        kind.as_str()
    )))
}

/// Reads a live resource or answers 404.
///
/// # Errors
/// 404 when there is no such resource in the tenant.
pub async fn fetch(
    state: &AppState,
    ctx: &Ctx,
    kind: ResourceKind,
    id: &str,
) -> Result<StoredResource, HttpError> {
    let res = state
        .store
        .get_resource(&ctx.tenant, kind, id)
        .await?
        .ok_or_else(|| not_found(kind, id))?;
    provlog::note_resource(&res.id, &res.doc);
    Ok(res)
}

/// The answer to `GET /{type}/{id}`.
pub enum Got {
    /// `If-None-Match` matched the current version: 304 with this ETag.
    NotModified {
        /// The current ETag.
        etag: String,
    },
    /// The representation, built whole.
    Whole(Rendered),
    /// A Group with more members than one page, as a stream of JSON text: everything but
    /// `members`, then the members page by page as the store reads them, then `meta`. The
    /// bytes are those [`render_with`] would serialise, without the whole list in memory.
    Streamed {
        /// The Group's ETag.
        etag: String,
        /// The JSON text, in chunks; an error ends it early (the client sees a cut response:
        /// the status was sent already).
        body: BoxStream<'static, Result<Vec<u8>, StoreError>>,
    },
}

impl std::fmt::Debug for Got {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotModified { etag } => {
                f.debug_struct("NotModified").field("etag", etag).finish()
            }
            Self::Whole(r) => f.debug_tuple("Whole").field(r).finish(),
            Self::Streamed { etag, .. } => f
                .debug_struct("Streamed")
                .field("etag", etag)
                .finish_non_exhaustive(),
        }
    }
}

/// `GET /{type}/{id}`: one call into the store, which reads the resource and the relations the
/// projection returns in one read transaction. A Group with [`MEMBER_PAGE`] members or more
/// is streamed (see [`Got::Streamed`]); a smaller one is answered whole, exactly as before.
///
/// # Errors
/// 404 when there is no such resource in the tenant; a store failure before the answer
/// starts.
pub async fn get(
    state: &AppState,
    ctx: &Ctx,
    kind: ResourceKind,
    id: &str,
    proj: &Projection,
    if_none_match: Option<&str>,
) -> Result<Got, HttpError> {
    get_paged(state, ctx, kind, id, proj, if_none_match, MEMBER_PAGE).await
}

/// [`get`] with `page` members per page (tests use small pages).
async fn get_paged(
    state: &AppState,
    ctx: &Ctx,
    kind: ResourceKind,
    id: &str,
    proj: &Projection,
    if_none_match: Option<&str>,
    page: u64,
) -> Result<Got, HttpError> {
    let mut with = relations_for(kind, proj);
    let not_modified = |tag: &str| if_none_match.is_some_and(|h| etag_list_matches(h, tag));
    if with.members {
        // A projection that empties every element leaves `members` out: nothing to read.
        with.members = false;
        if let Some(shape) = member_shape(ctx, proj) {
            let group = state
                .store
                .stream_group(&ctx.tenant, id, page)
                .await?
                .ok_or_else(|| not_found(kind, id))?;
            provlog::note_resource(&group.group.id, &group.group.doc);
            let tag = etag(group.group.version);
            if not_modified(&tag) {
                // Dropping the stream ends its read transaction unread.
                return Ok(Got::NotModified { etag: tag });
            }
            let GroupStream { group, mut members } = group;
            let first = members.try_next().await?.unwrap_or_default();
            if (first.len() as u64) < page {
                return Ok(Got::Whole(render_with(
                    ctx,
                    &group,
                    None,
                    Some(first.as_slice()),
                    proj,
                )));
            }
            return Ok(Got::Streamed {
                etag: tag,
                body: stream_members(ctx, &group, proj, shape, first, members),
            });
        }
    }
    let read = state
        .store
        .read_resource(&ctx.tenant, kind, id, with)
        .await?
        .ok_or_else(|| not_found(kind, id))?;
    let res = &read.resource;
    provlog::note_resource(&res.id, &res.doc);
    let tag = etag(res.version);
    if not_modified(&tag) {
        return Ok(Got::NotModified { etag: tag });
    }
    Ok(Got::Whole(render_with(
        ctx,
        res,
        read.groups.as_deref(),
        read.members.as_deref(),
        proj,
    )))
}

/// The keys each projected `members` element keeps, in order; `None` when the projection
/// leaves every element empty (and so the attribute out). Every element has the same keys
/// (`value`, `$ref`, `type`), so one sample decides for all.
fn member_shape(ctx: &Ctx, proj: &Projection) -> Option<Vec<String>> {
    let sample = json!({"members": [Value::Object(member_value(ctx, "x"))]});
    let projected = proj.apply(ctx.group, &sample);
    let element = projected.get("members")?.get(0)?.as_object()?;
    Some(element.keys().cloned().collect())
}

/// The JSON text of a projected Group whose members come from `first` and then `rest`: the
/// same bytes as `serde_json::to_vec(&render_with(..).body)`, because the representation is
/// built in the same order (the document, then `members`, then `meta`) and every element is
/// projected to `shape`.
fn stream_members(
    ctx: &Ctx,
    group: &StoredResource,
    proj: &Projection,
    shape: Vec<String>,
    first: Vec<String>,
    rest: MemberPages,
) -> BoxStream<'static, Result<Vec<u8>, StoreError>> {
    let mut full = base_repr(group);
    full.insert("meta".into(), meta_of(ctx, group));
    let mut projected = match proj.apply(ctx.group, &Value::Object(full)) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let meta = projected.shift_remove("meta");
    let head_empty = projected.is_empty();
    let mut head = serde_json::to_vec(&Value::Object(projected)).unwrap_or_default();
    head.pop(); // the closing brace
    if !head_empty {
        head.push(b',');
    }
    head.extend_from_slice(b"\"members\":[");
    let mut tail = b"]".to_vec();
    if let Some(meta) = meta {
        tail.extend_from_slice(b",\"meta\":");
        tail.extend(serde_json::to_vec(&meta).unwrap_or_default());
    }
    tail.push(b'}');
    let ctx = ctx.clone();
    // Written field by field rather than through a `Value` per member: this loop runs 100,000
    // times for a large group. Writing JSON into a `Vec` cannot fail.
    let encode = move |ids: &[String], leading_comma: bool| -> Vec<u8> {
        let mut out = Vec::with_capacity(ids.len() * 128);
        for (i, id) in ids.iter().enumerate() {
            if leading_comma || i > 0 {
                out.push(b',');
            }
            out.push(b'{');
            for (k, key) in shape.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut out, key);
                out.push(b':');
                let _ = match key.as_str() {
                    "value" => serde_json::to_writer(&mut out, id),
                    "$ref" => {
                        serde_json::to_writer(&mut out, &location(&ctx, ResourceKind::User, id))
                    }
                    "type" => serde_json::to_writer(&mut out, "User"),
                    other => serde_json::to_writer(&mut out, &member_value(&ctx, id).get(other)),
                };
            }
            out.push(b'}');
        }
        out
    };
    head.extend(encode(&first, false));
    let group_id = group.id.clone();
    futures::stream::once(async move { Ok::<_, StoreError>(head) })
        .chain(rest.map_ok(move |ids| encode(&ids, true)))
        .chain(futures::stream::once(async move { Ok(tail) }))
        .inspect_err(move |e| {
            tracing::error!(error = %e, group = %group_id, "reading a group's members failed while streaming them");
        })
        .boxed()
}

/// Checks an `If-Match` header value against the current ETag (RFC 7232 §3.1, weak compare).
///
/// # Errors
/// 412 when no listed tag matches.
pub fn check_if_match(if_match: Option<&str>, current: &str) -> Result<(), HttpError> {
    let Some(header) = if_match else {
        return Ok(());
    };
    if etag_list_matches(header, current) {
        Ok(())
    } else {
        Err(ScimError::precondition_failed(format!(
            "If-Match {header} does not match the current version {current}; read the resource again"
        ))
        .into())
    }
}

/// Whether a comma-separated list of entity tags (or `*`) matches `current`, weakly.
#[must_use]
pub fn etag_list_matches(header: &str, current: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").trim().to_owned();
    let cur = strip(current);
    header
        .split(',')
        .any(|t| t.trim() == "*" || strip(t) == cur)
}

/// The SCIM 409 of a create that matches an existing app user while the tenant's
/// `on_existing_user` setting is `reject`; `which` is the store's conflict name.
#[must_use]
fn existing_user_conflict(which: &str, doc: &Value) -> HttpError {
    let (what, value) = if which == "existing email" {
        let email = crate::ops::users::primary_email(doc).unwrap_or("");
        ("the primary email", email)
    } else {
        (
            "userName",
            doc.get("userName").and_then(Value::as_str).unwrap_or(""),
        )
    };
    ScimError::uniqueness(format!(
        "{what} \"{value}\" matches an existing user of the app that is not managed by SCIM \
         (same userName or primary email), and this tenant is set to reject such matches \
         (on_existing_user = reject): remove or rename that user in the app, or set \
         on_existing_user to match to link it"
    ))
    .into()
}

fn store_conflict(e: StoreError, kind: ResourceKind, doc: &Value) -> HttpError {
    match e {
        StoreError::Conflict("userName") => {
            let name = doc.get("userName").and_then(Value::as_str).unwrap_or("");
            ScimError::uniqueness(format!(
                "userName \"{name}\" is already taken by another {} in this tenant (userName is compared case-insensitively)",
                kind.as_str()
            ))
            .into()
        }
        StoreError::Conflict(c @ ("existing userName" | "existing email")) => {
            existing_user_conflict(c, doc)
        }
        other => other.into(),
    }
}

/// `POST /Users` and `POST /Groups`: returns the rendered resource (status 201 in both the
/// created and restored case).
///
/// # Errors
/// 400 for invalid input, 409 `uniqueness` for a taken userName.
pub async fn create(
    state: &AppState,
    ctx: &Ctx,
    kind: ResourceKind,
    body: &Value,
    proj: &Projection,
) -> Result<Rendered, HttpError> {
    let n = normalize(ctx.def(kind), body, None)?;
    let password_hash = match n.password.as_deref() {
        Some(p) => Some(hash_password(state, p).await?),
        None => None,
    };
    let new = NewResource {
        id: uuid::Uuid::new_v4().to_string(),
        doc: n.doc.clone(),
        password_hash,
        members: n
            .members
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.value)
            .collect(),
        // `user.welcome` (tenant setting `welcome_email`) is the store's: only it knows whether
        // the create made a new user, rather than restoring or matching an existing one.
        events: Vec::new(),
    };
    let now = state.clock.now();
    let no_members = new.members.is_empty();
    let outcome = state
        .store
        .create_resource(&ctx.tenant, kind, new, now)
        .await
        .map_err(|e| store_conflict(e, kind, &n.doc))?;
    let res = match outcome {
        // A new User is in no group yet, and a new Group created without members has none:
        // the answer needs no read of the relations.
        CreateOutcome::Created(r) if kind == ResourceKind::User || no_members => {
            provlog::note_resource(&r.id, &r.doc);
            let with = relations_for(kind, proj);
            return Ok(render_with(
                ctx,
                &r,
                with.groups.then_some(&[]),
                with.members.then_some(&[]),
                proj,
            ));
        }
        CreateOutcome::Created(r) => r,
        CreateOutcome::Restored(r) => {
            tracing::info!(id = %r.id, "restored a deprovisioned user");
            r
        }
        CreateOutcome::Matched(r) => {
            tracing::info!(id = %r.id, "matched an existing app record; now managed by SCIM");
            r
        }
    };
    provlog::note_resource(&res.id, &res.doc);
    render(state, ctx, &res, proj).await
}

/// `PUT /{type}/{id}` (RFC 7644 §3.5.1).
///
/// # Errors
/// 404, 412, 400, 409 as for the individual steps.
pub async fn replace(
    state: &AppState,
    ctx: &Ctx,
    kind: ResourceKind,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
    proj: &Projection,
) -> Result<Rendered, HttpError> {
    let mut passwords = PasswordMemo::default();
    for _ in 0..WRITE_ATTEMPTS {
        let cur = fetch(state, ctx, kind, id).await?;
        check_if_match(if_match, &etag(cur.version))?;
        let n = normalize(ctx.def(kind), body, Some(&cur.doc))?;
        let guard = guard::change_subject(&cur, &n.doc);
        let password_hash = passwords.hash(state, n.password.as_deref()).await?;
        let members = if kind == ResourceKind::Group {
            let wanted: Vec<String> = n
                .members
                .unwrap_or_default()
                .into_iter()
                .map(|m| m.value)
                .collect();
            member_diff(state, ctx, id, wanted).await?
        } else {
            Vec::new()
        };
        let (events, mut changed) =
            change_events(ctx.def(kind), id, &cur.doc, &n.doc, password_hash.is_some());
        if !members.is_empty() {
            changed.push("members".to_owned());
        }
        provlog::note_changed(changed);
        let update = ResourceUpdate {
            doc: n.doc.clone(),
            password_hash,
            members,
            events,
            guard,
        };
        match state
            .store
            .update_resource(
                &ctx.tenant,
                kind,
                id,
                cur.version,
                update,
                state.clock.now(),
            )
            .await
        {
            Ok(res) => return render(state, ctx, &res, proj).await,
            Err(StoreError::Stale) if if_match.is_none() => backoff().await,
            Err(e) => return Err(store_conflict(e, kind, &n.doc)),
        }
    }
    Err(StoreError::Stale.into())
}

/// Loads every member id of a group.
async fn all_member_ids(
    state: &AppState,
    ctx: &Ctx,
    group: &str,
) -> Result<Vec<String>, HttpError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = state
            .store
            .list_members(&ctx.tenant, group, after.as_deref(), MEMBER_PAGE)
            .await?;
        let done = (page.len() as u64) < MEMBER_PAGE;
        after = page.last().map(|m| m.id.clone());
        out.extend(page.into_iter().map(|m| m.id));
        if done || after.is_none() {
            return Ok(out);
        }
    }
}

/// The row operations that turn the current member set into `wanted`, touching only the
/// members that differ.
async fn member_diff(
    state: &AppState,
    ctx: &Ctx,
    group: &str,
    wanted: Vec<String>,
) -> Result<Vec<MemberOp>, HttpError> {
    let current: std::collections::HashSet<String> = all_member_ids(state, ctx, group)
        .await?
        .into_iter()
        .collect();
    let wanted_set: std::collections::HashSet<&String> = wanted.iter().collect();
    let remove: Vec<String> = current
        .iter()
        .filter(|m| !wanted_set.contains(m))
        .cloned()
        .collect();
    let add: Vec<String> = wanted
        .iter()
        .filter(|m| !current.contains(*m))
        .cloned()
        .collect();
    let mut ops = Vec::new();
    if !remove.is_empty() {
        ops.push(MemberOp::Remove(remove));
    }
    if !add.is_empty() {
        ops.push(MemberOp::Add(add));
    }
    Ok(ops)
}

/// The member ids named by a filter made only of `value eq "…"` terms joined by `or`, which
/// is what identity providers send; `None` for any other filter.
fn simple_member_ids(f: &Filter, out: &mut Vec<String>) -> bool {
    match f {
        Filter::Compare(
            AttrPath {
                urn: None,
                attr,
                sub_attr: None,
            },
            CompareOp::Eq,
            CompValue::Str(v),
        ) if attr.eq_ignore_ascii_case("value") => {
            out.push(v.clone());
            true
        }
        Filter::Or(a, b) => simple_member_ids(a, out) && simple_member_ids(b, out),
        _ => false,
    }
}

async fn member_ops(
    state: &AppState,
    ctx: &Ctx,
    group: &str,
    changes: Vec<MemberChange>,
) -> Result<Vec<MemberOp>, HttpError> {
    let mut ops = Vec::new();
    let mut changes = changes.into_iter().peekable();
    // `replace` of `members` with a whole list (Okta group push, Entra) arrives as "remove all,
    // then add the list". As the first change it is turned into the member diff, as PUT does,
    // so that re-sending an unchanged list of 10,000 members writes no row.
    if let Some(MemberChange::Remove(None)) = changes.peek() {
        changes.next();
        match changes.next_if(|c| matches!(c, MemberChange::Add(_))) {
            Some(MemberChange::Add(refs)) => {
                let wanted = refs.into_iter().map(|r| r.value).collect();
                ops.extend(member_diff(state, ctx, group, wanted).await?);
            }
            // `replace` with an empty list: one statement, no need to read the members.
            _ => ops.push(MemberOp::RemoveAll),
        }
    }
    for change in changes {
        match change {
            MemberChange::Add(refs) => {
                ops.push(MemberOp::Add(refs.into_iter().map(|r| r.value).collect()));
            }
            MemberChange::Remove(None) => ops.push(MemberOp::RemoveAll),
            MemberChange::Remove(Some(filter)) => {
                let mut ids = Vec::new();
                if simple_member_ids(&filter, &mut ids) {
                    ops.push(MemberOp::Remove(ids));
                    continue;
                }
                // A general filter (e.g. on `type` or `$ref`) is evaluated on each member;
                // rare enough that reading the member list is acceptable.
                let outer = AttrPath {
                    urn: None,
                    attr: "members".into(),
                    sub_attr: None,
                };
                let valid = validate_value_filter(&filter, ctx.group, &outer)?;
                let matching = all_member_ids(state, ctx, group)
                    .await?
                    .into_iter()
                    .filter(|id| {
                        valid.matches(&json!({
                            "value": id,
                            "$ref": location(ctx, ResourceKind::User, id),
                            "type": "User",
                        }))
                    })
                    .collect();
                ops.push(MemberOp::Remove(matching));
            }
        }
    }
    Ok(ops)
}

/// `PATCH /{type}/{id}` (RFC 7644 §3.5.2): all operations or none.
///
/// # Errors
/// 404, 412, 400 (`invalidSyntax`, `invalidPath`, `noTarget`, `invalidValue`, `mutability`),
/// 409.
pub async fn patch(
    state: &AppState,
    ctx: &Ctx,
    kind: ResourceKind,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
    proj: &Projection,
) -> Result<Rendered, HttpError> {
    let ops = parse_patch(body)?;
    let mut passwords = PasswordMemo::default();
    for _ in 0..WRITE_ATTEMPTS {
        let cur = fetch(state, ctx, kind, id).await?;
        check_if_match(if_match, &etag(cur.version))?;
        let mut doc = cur.doc.clone();
        let effects = apply_patch(ctx.def(kind), &mut doc, &ops)?;
        let guard = guard::change_subject(&cur, &doc);
        let password_hash = passwords.hash(state, effects.password.as_deref()).await?;
        let members = member_ops(state, ctx, id, effects.members).await?;
        let (events, mut changed) =
            change_events(ctx.def(kind), id, &cur.doc, &doc, password_hash.is_some());
        if !members.is_empty() {
            changed.push("members".to_owned());
        }
        provlog::note_changed(changed);
        if kind == ResourceKind::Group
            && if_match.is_none()
            && password_hash.is_none()
            && doc == cur.doc
        {
            // Only the member rows change: apply them without a version precondition, so that
            // an identity provider adding members from many parallel requests never gets a
            // conflict it did not ask for.
            let res = state
                .store
                .update_members(&ctx.tenant, id, &members, state.clock.now())
                .await?;
            return render(state, ctx, &res, proj).await;
        }
        let update = ResourceUpdate {
            doc: doc.clone(),
            password_hash,
            members,
            events,
            guard,
        };
        match state
            .store
            .update_resource(
                &ctx.tenant,
                kind,
                id,
                cur.version,
                update,
                state.clock.now(),
            )
            .await
        {
            Ok(res) => return render(state, ctx, &res, proj).await,
            Err(StoreError::Stale) if if_match.is_none() => backoff().await,
            Err(e) => return Err(store_conflict(e, kind, &doc)),
        }
    }
    Err(StoreError::Stale.into())
}

/// `DELETE /{type}/{id}`: a User is deprovisioned (retained, invisible) or, when the tenant's
/// `deprovision_on_delete` setting is `erase`, erased; a Group is removed.
///
/// # Errors
/// 404, 412.
pub async fn delete(
    state: &AppState,
    ctx: &Ctx,
    kind: ResourceKind,
    id: &str,
    if_match: Option<&str>,
) -> Result<(), HttpError> {
    let cur = fetch(state, ctx, kind, id).await?;
    check_if_match(if_match, &etag(cur.version))?;
    // The version read is the one the delete applies to, and the guard admits it in the
    // delete's own transaction (the store erases instead when the tenant says so).
    let deletion = roster_store::Deletion {
        expected_version: Some(cur.version),
        guard: guard::delete_subject(&cur),
    };
    state
        .store
        .delete_resource(&ctx.tenant, kind, id, deletion, state.clock.now())
        .await?;
    Ok(())
}

/// Query parameters of a list or search request, as received.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// `filter`
    pub filter: Option<String>,
    /// `sortBy`
    pub sort_by: Option<String>,
    /// `sortOrder`
    pub sort_order: Option<String>,
    /// `startIndex`
    pub start_index: Option<i64>,
    /// `count`
    pub count: Option<i64>,
    /// `cursor` (`Some("")` asks for the first page of cursor pagination)
    pub cursor: Option<String>,
    /// `attributes`
    pub attributes: Option<String>,
    /// `excludedAttributes`
    pub excluded_attributes: Option<String>,
}

/// Parses `sortBy` into a canonical sort key; unknown attributes give `None` (no sorting),
/// because an unknown name is never a reason to fail a request.
fn sort_spec(def: TypeDef, p: &ListParams) -> Result<Option<SortSpec>, HttpError> {
    let descending = match p
        .sort_order
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("ascending") => false,
        Some("descending") => true,
        Some(other) => {
            return Err(ScimError::invalid_value(format!(
                "sortOrder must be \"ascending\" or \"descending\", not \"{other}\""
            ))
            .into())
        }
    };
    let Some(sort_by) = p
        .sort_by
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    let (urn, rest) = if sort_by
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
    {
        match sort_by.rfind(':') {
            Some(i) => (sort_by.get(..i), sort_by.get(i + 1..).unwrap_or("")),
            None => (None, sort_by),
        }
    } else {
        (None, sort_by)
    };
    let (attr, sub) = match rest.split_once('.') {
        Some((a, s)) => (a, Some(s)),
        None => (rest, None),
    };
    Ok(def.resolve(urn, attr, sub).map(|r| SortSpec {
        urn: r.extension.map(str::to_owned),
        attr: r.attr.name.to_owned(),
        sub_attr: r.sub.map(|s| s.name.to_owned()),
        descending,
        // `sortBy=emails` sorts by the primary (or first) element's `value`.
        case_exact: if r.sub.is_none() && r.attr.multi_valued {
            r.attr
                .sub_attribute("value")
                .map_or(r.attr.case_exact, |v| v.case_exact)
        } else {
            r.leaf().case_exact
        },
    }))
}

fn page_request(state: &AppState, p: &ListParams) -> PageRequest {
    let max = state.settings.max_page_size;
    // A negative count is treated as 0 and a count over the maximum is capped
    // (RFC 7644 §3.4.2.4).
    let count = p
        .count
        .map_or(state.settings.default_page_size, |c| {
            u64::try_from(c).unwrap_or(0)
        })
        .min(max);
    match &p.cursor {
        Some(c) => PageRequest::Cursor {
            cursor: (!c.is_empty()).then(|| c.clone()),
            count,
        },
        None => PageRequest::Index {
            start_index: p
                .start_index
                .map_or(1, |s| u64::try_from(s).unwrap_or(1).max(1)),
            count,
        },
    }
}

fn cursor_error(e: StoreError) -> HttpError {
    match e {
        StoreError::Invalid(detail) => {
            ScimError::bad_request(scim_proto::ScimType::InvalidCursor, detail).into()
        }
        other => other.into(),
    }
}

/// A ListResponse and what it cost beyond a lookup.
#[derive(Debug)]
pub struct Listed {
    /// The ListResponse.
    pub body: Value,
    /// Resources evaluated in memory to answer (an unindexed filter or sort).
    pub examined: u64,
}

/// `GET /{type}` and `POST /{type}/.search`: a ListResponse.
///
/// # Errors
/// 400 `invalidFilter`, `invalidValue`, `invalidCursor`.
pub async fn list(
    state: &AppState,
    ctx: &Ctx,
    kind: ResourceKind,
    p: &ListParams,
) -> Result<Listed, HttpError> {
    let proj = Projection::parse(
        ctx.def(kind),
        p.attributes.as_deref(),
        p.excluded_attributes.as_deref(),
    )?;
    let filter = match p.filter.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
        Some(f) => Some(parse_filter(f)?.validate(ctx.def(kind))?),
        None => None,
    };
    let page = page_request(state, p);
    let query = ListQuery {
        max_candidates: Some(state.settings.rate.max_candidates),
        filter,
        sort: sort_spec(ctx.def(kind), p)?,
        page: page.clone(),
    };
    // One store call: the page and the relations of all its resources, in one snapshot.
    let result = state
        .store
        .read_page(&ctx.tenant, kind, &query, relations_for(kind, &proj))
        .await
        .map_err(cursor_error)?;
    let examined = result.examined;
    Ok(Listed {
        body: list_response(ctx, &page, result, &proj),
        examined,
    })
}

fn render_read(ctx: &Ctx, r: &roster_store::ResourceRead, proj: &Projection) -> Value {
    render_with(
        ctx,
        &r.resource,
        r.groups.as_deref(),
        r.members.as_deref(),
        proj,
    )
    .body
}

fn list_response(ctx: &Ctx, page: &PageRequest, result: PageRead, proj: &Projection) -> Value {
    let resources: Vec<Value> = result
        .items
        .iter()
        .map(|r| render_read(ctx, r, proj))
        .collect();
    let mut body = Map::new();
    body.insert("schemas".into(), json!([LIST_RESPONSE_SCHEMA]));
    body.insert("totalResults".into(), json!(result.total));
    body.insert("itemsPerPage".into(), json!(resources.len()));
    match page {
        PageRequest::Index { start_index, count } => {
            body.insert("startIndex".into(), json!(start_index));
            if *count == 0 {
                return Value::Object(body);
            }
        }
        PageRequest::Cursor { .. } => {
            if let Some(next) = result.next_cursor {
                body.insert("nextCursor".into(), json!(next));
            }
        }
    }
    body.insert("Resources".into(), Value::Array(resources));
    Value::Object(body)
}

/// `POST /.search` at the root: Users then Groups, paged as one list (index pagination).
///
/// # Errors
/// 400 `invalidFilter` when the filter fits neither resource type; 400 `invalidValue` for
/// cursor pagination, which the root search does not offer.
pub async fn search_all(state: &AppState, ctx: &Ctx, p: &ListParams) -> Result<Listed, HttpError> {
    if p.cursor.is_some() {
        return Err(ScimError::invalid_value(
            "cursor pagination is offered per resource type (/Users/.search, /Groups/.search), not at the root",
        )
        .into());
    }
    let filter_text = p.filter.as_deref().map(str::trim).filter(|f| !f.is_empty());
    let parsed = filter_text.map(parse_filter).transpose()?;
    let mut kinds = Vec::new();
    let mut first_err = None;
    for kind in ResourceKind::ALL {
        match parsed
            .as_ref()
            .map(|f| f.validate(ctx.def(kind)))
            .transpose()
        {
            Ok(f) => kinds.push((kind, f)),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if kinds.is_empty() {
        return Err(first_err
            .unwrap_or_else(|| ScimError::invalid_filter("invalid filter"))
            .into());
    }
    let PageRequest::Index { start_index, count } = page_request(state, p) else {
        return Err(ScimError::internal().into());
    };
    let mut total = 0u64;
    let mut examined = 0u64;
    let mut resources = Vec::new();
    // Position (0-based) of the first wanted item in the combined list, and how many remain.
    let mut skip = start_index - 1;
    let mut want = count;
    for (kind, filter) in kinds {
        let proj = Projection::parse(
            ctx.def(kind),
            p.attributes.as_deref(),
            p.excluded_attributes.as_deref(),
        )?;
        let q = ListQuery {
            max_candidates: Some(state.settings.rate.max_candidates),
            filter,
            sort: sort_spec(ctx.def(kind), p)?,
            page: PageRequest::Index {
                start_index: skip + 1,
                count: want,
            },
        };
        let page = state
            .store
            .read_page(&ctx.tenant, kind, &q, relations_for(kind, &proj))
            .await?;
        total += page.total;
        examined += page.examined;
        skip = skip.saturating_sub(page.total);
        want -= page.items.len() as u64;
        resources.extend(page.items.iter().map(|r| render_read(ctx, r, &proj)));
    }
    let mut body = Map::new();
    body.insert("schemas".into(), json!([LIST_RESPONSE_SCHEMA]));
    body.insert("totalResults".into(), json!(total));
    body.insert("itemsPerPage".into(), json!(resources.len()));
    body.insert("startIndex".into(), json!(start_index));
    if count > 0 {
        body.insert("Resources".into(), Value::Array(resources));
    }
    Ok(Listed {
        body: Value::Object(body),
        examined,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use roster_store::sqlite::SqliteStore;
    use roster_store::{Store, Tenant, TenantSettings};
    use scim_proto::schema::{GROUP_SCHEMA, USER_SCHEMA};

    use super::*;
    use crate::Settings;

    async fn state() -> AppState {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        store
            .create_tenant(&Tenant {
                id: "t".into(),
                name: "T".into(),
                idp: "generic".into(),
                created_at: time::OffsetDateTime::UNIX_EPOCH,
                settings: TenantSettings::default(),
            })
            .await
            .unwrap();
        AppState::new(Arc::new(store), Settings::default())
    }

    fn ctx() -> Ctx {
        Ctx {
            user: ResourceKind::User.def(),
            group: ResourceKind::Group.def(),
            tenant: "t".into(),
            base: "https://h/scim/v2/t".into(),
        }
    }

    async fn create(
        state: &AppState,
        kind: ResourceKind,
        id: &str,
        doc: Value,
        members: &[String],
    ) {
        let new = NewResource {
            id: id.into(),
            doc,
            password_hash: None,
            members: members.to_vec(),
            events: vec![],
        };
        let now = time::OffsetDateTime::UNIX_EPOCH;
        state
            .store
            .create_resource("t", kind, new, now)
            .await
            .unwrap();
    }

    async fn body_of(got: Got) -> (bool, Vec<u8>) {
        match got {
            Got::Whole(r) => (false, serde_json::to_vec(&r.body).unwrap()),
            Got::Streamed { body, .. } => {
                let chunks: Vec<Vec<u8>> = body.try_collect().await.unwrap();
                assert!(chunks.len() > 2, "one chunk per page of members");
                (true, chunks.concat())
            }
            Got::NotModified { .. } => panic!("not modified"),
        }
    }

    /// A Group larger than a page streams exactly the bytes a whole rendering would give,
    /// under every kind of projection; a smaller one is answered whole.
    #[tokio::test]
    async fn a_big_group_streams_the_bytes_of_its_whole_rendering() {
        let state = state().await;
        let ctx = ctx();
        const PAGE: u64 = 40;
        let n = 2 * 40 + 7;
        let users: Vec<String> = (0..n).map(|i| format!("u{i:05}")).collect();
        for u in &users {
            let doc = json!({"schemas": [USER_SCHEMA], "userName": u});
            create(&state, ResourceKind::User, u, doc, &[]).await;
        }
        let doc = json!({"schemas": [GROUP_SCHEMA], "displayName": "Big", "externalId": "x"});
        create(&state, ResourceKind::Group, "big", doc, &users).await;
        let doc = json!({"schemas": [GROUP_SCHEMA], "displayName": "Small"});
        create(&state, ResourceKind::Group, "small", doc, &users[..3]).await;
        let big = state
            .store
            .get_resource("t", ResourceKind::Group, "big")
            .await
            .unwrap()
            .unwrap();

        for (attrs, excluded, streamed) in [
            (None, None, true),
            (Some("members.value"), None, true),
            (Some("displayName,members"), None, true),
            (None, Some("members.$ref,meta"), true),
            (None, Some("externalId"), true),
            (Some("members.display"), None, true),
            (Some("displayName"), None, false),
            (None, Some("members"), false),
        ] {
            let proj = Projection::parse(ResourceKind::Group.def(), attrs, excluded).unwrap();
            let got = get_paged(&state, &ctx, ResourceKind::Group, "big", &proj, None, PAGE)
                .await
                .unwrap();
            let (was_streamed, bytes) = body_of(got).await;
            assert_eq!(was_streamed, streamed, "{attrs:?} {excluded:?}");
            let whole = render_with(&ctx, &big, None, Some(users.as_slice()), &proj);
            let want = serde_json::to_vec(&whole.body).unwrap();
            assert!(bytes == want, "{attrs:?} {excluded:?}: the stream differs");
        }

        let proj = Projection::default();
        let got = get_paged(
            &state,
            &ctx,
            ResourceKind::Group,
            "small",
            &proj,
            None,
            PAGE,
        )
        .await
        .unwrap();
        let (was_streamed, bytes) = body_of(got).await;
        assert!(!was_streamed);
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["members"].as_array().unwrap().len(), 3);

        // If-None-Match and 404 are decided before anything is streamed.
        let tag = etag(big.version);
        let got = get_paged(
            &state,
            &ctx,
            ResourceKind::Group,
            "big",
            &proj,
            Some(&tag),
            PAGE,
        )
        .await
        .unwrap();
        assert!(matches!(got, Got::NotModified { etag } if etag == tag));
        let err = get(&state, &ctx, ResourceKind::Group, "nope", &proj, None)
            .await
            .unwrap_err();
        assert_eq!(err.error.status, 404);
        // The stream's transaction ended: the store serves the next read.
        let u = get(&state, &ctx, ResourceKind::User, "u00001", &proj, None)
            .await
            .unwrap();
        let (_, bytes) = body_of(u).await;
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["groups"].as_array().unwrap().len(), 2);
    }
}
