//! SCIM routes under `/scim/v2/{tenant}` and their thin handlers (RFC 7644 §3).

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use scim_proto::dialect::BodyKind;
use scim_proto::projection::Projection;
use scim_proto::schema::{ResourceKind, TypeDef, SEARCH_REQUEST_SCHEMA};
use scim_proto::ScimError;
use serde_json::Value;

use crate::auth::Authed;
use crate::body::ScimBody;
use crate::dialect;
use crate::discovery;
use crate::error::{scim_json, HttpError, SCIM_CONTENT_TYPE};
use crate::ratelimit;
use crate::service::{self, Ctx, Got, ListParams, Rendered};
use crate::urls::base_url;
use crate::AppState;

/// The router for one tenant's SCIM base URL.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/ServiceProviderConfig",
            get(discovery::service_provider_config),
        )
        .route("/Schemas", get(discovery::schemas))
        .route("/Schemas/{urn}", get(discovery::schema))
        .route("/ResourceTypes", get(discovery::resource_types))
        .route("/ResourceTypes/{name}", get(discovery::resource_type))
        .route("/Users", get(list_users).post(create_user))
        .route("/Users/.search", post(search_users))
        .route(
            "/Users/{id}",
            get(get_user)
                .put(put_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .route("/Groups", get(list_groups).post(create_group))
        .route("/Groups/.search", post(search_groups))
        .route(
            "/Groups/{id}",
            get(get_group)
                .put(put_group)
                .patch(patch_group)
                .delete(delete_group),
        )
        .route("/.search", post(search_root))
        .route("/Me", any(not_implemented))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// After the token check, like every route under a tenant's base URL: a caller without a
/// valid token learns nothing about which paths exist.
async fn not_found(_: Authed) -> HttpError {
    ScimError::not_found("no such SCIM endpoint under this base URL").into()
}

async fn method_not_allowed(_: Authed) -> HttpError {
    HttpError::status(405, "this endpoint does not support that HTTP method")
}

/// After the token check (the extractor), so that a caller without a token learns nothing
/// about the routes.
async fn not_implemented(_: Authed) -> HttpError {
    HttpError::status(
        501,
        "not implemented by Roster (ServiceProviderConfig lists what is supported)",
    )
}

fn ctx(state: &AppState, headers: &HeaderMap, auth: &Authed) -> Ctx {
    Ctx {
        tenant: auth.tenant.id.clone(),
        base: base_url(state, headers, &auth.tenant.id),
        user: auth.def(ResourceKind::User),
        group: auth.def(ResourceKind::Group),
    }
}

/// Query parameters, with names matched case-insensitively.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: Option<String>) -> Result<Self, HttpError> {
        let raw = raw.unwrap_or_default();
        serde_urlencoded::from_str::<Vec<(String, String)>>(&raw)
            .map(Self)
            .map_err(|e| ScimError::invalid_value(format!("malformed query string: {e}")).into())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn int(&self, name: &str) -> Result<Option<i64>, HttpError> {
        self.get(name)
            .map(|v| {
                v.trim().parse::<i64>().map_err(|_| {
                    ScimError::invalid_value(format!("{name} must be an integer, not \"{v}\""))
                        .into()
                })
            })
            .transpose()
    }

    fn projection(&self, def: TypeDef) -> Result<Projection, HttpError> {
        Ok(Projection::parse(
            def,
            self.get("attributes"),
            self.get("excludedAttributes"),
        )?)
    }

    fn list(&self) -> Result<ListParams, HttpError> {
        Ok(ListParams {
            filter: self.get("filter").map(str::to_owned),
            sort_by: self.get("sortBy").map(str::to_owned),
            sort_order: self.get("sortOrder").map(str::to_owned),
            start_index: self.int("startIndex")?,
            count: self.int("count")?,
            cursor: self.get("cursor").map(str::to_owned),
            attributes: self.get("attributes").map(str::to_owned),
            excluded_attributes: self.get("excludedAttributes").map(str::to_owned),
        })
    }
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn resource_response(status: StatusCode, r: &Rendered) -> Response {
    let mut resp = scim_json(status, &r.body);
    if let Ok(v) = HeaderValue::from_str(&r.etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    if status == StatusCode::CREATED {
        if let Ok(v) = HeaderValue::from_str(&r.location) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
    }
    resp
}

/// Reads `SearchRequest` (RFC 7644 §3.4.3) into list parameters.
fn search_params(body: &Value) -> Result<ListParams, HttpError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a search request must be a JSON object"))?;
    let get = |name: &str| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let schemas_ok = get("schemas").and_then(Value::as_array).is_some_and(|a| {
        a.iter().any(|s| {
            s.as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case(SEARCH_REQUEST_SCHEMA))
        })
    });
    if !schemas_ok {
        return Err(ScimError::invalid_syntax(format!(
            "a search request must list \"{SEARCH_REQUEST_SCHEMA}\" in \"schemas\""
        ))
        .into());
    }
    let string = |name: &str| -> Result<Option<String>, HttpError> {
        match get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ScimError::invalid_value(format!("\"{name}\" must be a string")).into()),
        }
    };
    let list = |name: &str| -> Result<Option<String>, HttpError> {
        match get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_owned).ok_or_else(|| {
                        ScimError::invalid_value(format!("\"{name}\" must be an array of strings"))
                            .into()
                    })
                })
                .collect::<Result<Vec<_>, HttpError>>()
                .map(|v| Some(v.join(","))),
            Some(_) => Err(ScimError::invalid_value(format!(
                "\"{name}\" must be an array of strings"
            ))
            .into()),
        }
    };
    let int = |name: &str| -> Result<Option<i64>, HttpError> {
        match get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| {
                ScimError::invalid_value(format!("\"{name}\" must be an integer")).into()
            }),
        }
    };
    Ok(ListParams {
        filter: string("filter")?,
        sort_by: string("sortBy")?,
        sort_order: string("sortOrder")?,
        start_index: int("startIndex")?,
        count: int("count")?,
        cursor: string("cursor")?,
        attributes: list("attributes")?,
        excluded_attributes: list("excludedAttributes")?,
    })
}

async fn do_list(
    state: AppState,
    auth: Authed,
    headers: HeaderMap,
    kind: ResourceKind,
    query: Option<String>,
) -> Result<Response, HttpError> {
    discovery::require(&auth, kind)?;
    let mut p = Params::parse(query)?.list()?;
    p.filter = dialect::filter(&auth, p.filter);
    let c = ctx(&state, &headers, &auth);
    let listed = service::list(&state, &c, kind, &p).await?;
    Ok(listed_response(&state, &auth, &listed))
}

/// The ListResponse, after charging the token and tenant for what it examined in memory.
fn listed_response(state: &AppState, auth: &Authed, listed: &service::Listed) -> Response {
    let per = state.settings.rate.examined_per_cost;
    crate::auth::charge(state, auth, ratelimit::examined_cost(listed.examined, per));
    scim_json(StatusCode::OK, &listed.body)
}

async fn do_search(
    state: AppState,
    auth: Authed,
    headers: HeaderMap,
    kind: Option<ResourceKind>,
    body: Value,
) -> Result<Response, HttpError> {
    if let Some(k) = kind {
        discovery::require(&auth, k)?;
    }
    let mut p = search_params(&body)?;
    p.filter = dialect::filter(&auth, p.filter);
    let c = ctx(&state, &headers, &auth);
    let listed = match kind {
        Some(kind) => service::list(&state, &c, kind, &p).await?,
        // Without groups the root search covers the one resource type the tenant offers.
        None if !discovery::offers(&auth, ResourceKind::Group) => {
            service::list(&state, &c, ResourceKind::User, &p).await?
        }
        None => service::search_all(&state, &c, &p).await?,
    };
    Ok(listed_response(&state, &auth, &listed))
}

async fn do_create(
    state: AppState,
    auth: Authed,
    headers: HeaderMap,
    kind: ResourceKind,
    query: Option<String>,
    body: Value,
) -> Result<Response, HttpError> {
    discovery::require(&auth, kind)?;
    let proj = Params::parse(query)?.projection(auth.def(kind))?;
    let c = ctx(&state, &headers, &auth);
    let body = dialect::resource_body(&auth, BodyKind::Create, kind, body);
    let r = service::create(&state, &c, kind, &body, &proj).await?;
    Ok(resource_response(StatusCode::CREATED, &r))
}

async fn do_get(
    state: AppState,
    auth: Authed,
    headers: HeaderMap,
    kind: ResourceKind,
    id: String,
    query: Option<String>,
) -> Result<Response, HttpError> {
    discovery::require(&auth, kind)?;
    let proj = Params::parse(query)?.projection(auth.def(kind))?;
    let c = ctx(&state, &headers, &auth);
    let inm = header_str(&headers, header::IF_NONE_MATCH);
    let (status, tag, body) = match service::get(&state, &c, kind, &id, &proj, inm).await? {
        Got::Whole(r) => return Ok(resource_response(StatusCode::OK, &r)),
        Got::NotModified { etag } => (StatusCode::NOT_MODIFIED, etag, Body::empty()),
        Got::Streamed { etag, body } => (StatusCode::OK, etag, Body::from_stream(body)),
    };
    let mut resp = (status, body).into_response();
    if status == StatusCode::OK {
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SCIM_CONTENT_TYPE),
        );
    }
    if let Ok(v) = HeaderValue::from_str(&tag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    Ok(resp)
}

async fn do_put(
    state: AppState,
    auth: Authed,
    headers: HeaderMap,
    kind: ResourceKind,
    id: String,
    query: Option<String>,
    body: Value,
) -> Result<Response, HttpError> {
    discovery::require(&auth, kind)?;
    let proj = Params::parse(query)?.projection(auth.def(kind))?;
    let c = ctx(&state, &headers, &auth);
    let if_match = header_str(&headers, header::IF_MATCH);
    let body = dialect::resource_body(&auth, BodyKind::Replace, kind, body);
    let r = service::replace(&state, &c, kind, &id, &body, if_match, &proj).await?;
    Ok(resource_response(StatusCode::OK, &r))
}

async fn do_patch(
    state: AppState,
    auth: Authed,
    headers: HeaderMap,
    kind: ResourceKind,
    id: String,
    query: Option<String>,
    body: Value,
) -> Result<Response, HttpError> {
    discovery::require(&auth, kind)?;
    let proj = Params::parse(query)?.projection(auth.def(kind))?;
    let c = ctx(&state, &headers, &auth);
    let if_match = header_str(&headers, header::IF_MATCH);
    let body = dialect::patch_body(&state, &c, &auth, kind, &id, body).await?;
    let r = service::patch(&state, &c, kind, &id, &body, if_match, &proj).await?;
    Ok(resource_response(StatusCode::OK, &r))
}

async fn do_delete(
    state: AppState,
    auth: Authed,
    headers: HeaderMap,
    kind: ResourceKind,
    id: String,
) -> Result<Response, HttpError> {
    discovery::require(&auth, kind)?;
    let c = ctx(&state, &headers, &auth);
    let if_match = header_str(&headers, header::IF_MATCH);
    service::delete(&state, &c, kind, &id, if_match).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

macro_rules! kind_handlers {
    ($kind:expr, $list:ident, $search:ident, $create:ident, $get:ident, $put:ident, $patch:ident, $delete:ident) => {
        async fn $list(
            State(state): State<AppState>,
            auth: Authed,
            headers: HeaderMap,
            RawQuery(q): RawQuery,
        ) -> Result<Response, HttpError> {
            do_list(state, auth, headers, $kind, q).await
        }

        async fn $search(
            State(state): State<AppState>,
            auth: Authed,
            headers: HeaderMap,
            ScimBody(body): ScimBody,
        ) -> Result<Response, HttpError> {
            do_search(state, auth, headers, Some($kind), body).await
        }

        async fn $create(
            State(state): State<AppState>,
            auth: Authed,
            headers: HeaderMap,
            RawQuery(q): RawQuery,
            ScimBody(body): ScimBody,
        ) -> Result<Response, HttpError> {
            do_create(state, auth, headers, $kind, q, body).await
        }

        async fn $get(
            State(state): State<AppState>,
            auth: Authed,
            headers: HeaderMap,
            Path((_, id)): Path<(String, String)>,
            RawQuery(q): RawQuery,
        ) -> Result<Response, HttpError> {
            do_get(state, auth, headers, $kind, id, q).await
        }

        async fn $put(
            State(state): State<AppState>,
            auth: Authed,
            headers: HeaderMap,
            Path((_, id)): Path<(String, String)>,
            RawQuery(q): RawQuery,
            ScimBody(body): ScimBody,
        ) -> Result<Response, HttpError> {
            do_put(state, auth, headers, $kind, id, q, body).await
        }

        async fn $patch(
            State(state): State<AppState>,
            auth: Authed,
            headers: HeaderMap,
            Path((_, id)): Path<(String, String)>,
            RawQuery(q): RawQuery,
            ScimBody(body): ScimBody,
        ) -> Result<Response, HttpError> {
            do_patch(state, auth, headers, $kind, id, q, body).await
        }

        async fn $delete(
            State(state): State<AppState>,
            auth: Authed,
            headers: HeaderMap,
            Path((_, id)): Path<(String, String)>,
        ) -> Result<Response, HttpError> {
            do_delete(state, auth, headers, $kind, id).await
        }
    };
}

kind_handlers!(
    ResourceKind::User,
    list_users,
    search_users,
    create_user,
    get_user,
    put_user,
    patch_user,
    delete_user
);
kind_handlers!(
    ResourceKind::Group,
    list_groups,
    search_groups,
    create_group,
    get_group,
    put_group,
    patch_group,
    delete_group
);

async fn search_root(
    State(state): State<AppState>,
    auth: Authed,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<Response, HttpError> {
    do_search(state, auth, headers, None, body).await
}
