//! The admin API under `/api/v1`: JSON over HTTP for the host app and operators, authenticated
//! by an operator API key ([`keys::AdminAuth`]), documented by `docs/openapi.json` (served at
//! `/api/v1/openapi.json`).
//!
//! This module is the foundation issue 4 extends (tenants, tokens, settings, users, groups,
//! roles, login decision): add a sub-module with its handlers, merge its routes in
//! [`routes`], describe them in `docs/openapi.json`, and record administrative actions with
//! [`audit`]. Errors are [`ApiError`]s; JSON bodies and query strings go through [`ApiJson`]
//! and [`ApiQuery`] so that malformed input is a JSON 400 too.

use axum::extract::FromRequest;
use axum::extract::FromRequestParts;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use roster_store::{AuditEntry, Store};
use serde::de::DeserializeOwned;
use serde_json::Value;
use time::OffsetDateTime;

use crate::AppState;

pub mod error;
pub mod feed;
pub mod groups;
pub mod guard;
pub mod import;
pub mod keys;
pub mod login;
pub mod logs;
pub mod roles;
pub mod tenants;
pub mod tokens;
pub mod users;
pub mod webhooks;

pub use error::ApiError;
pub use keys::AdminAuth;

/// The OpenAPI 3.1 description of this API, kept in the repository.
pub const OPENAPI: &str = include_str!("../../../../docs/openapi.json");

/// Default page size of list endpoints.
pub const DEFAULT_LIMIT: u64 = 100;
/// Largest page size of list endpoints.
pub const MAX_LIMIT: u64 = 1000;

/// A JSON request body; a malformed one is a JSON 400. Read through [`from_json`].
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(v) = axum::Json::<Value>::from_request(req, state).await?;
        from_json(v).map(Self)
    }
}

/// Reads a request body's JSON value into `T`. Numbers with a zero fraction (`30.0`) are read
/// as the integers they are: JSON Schema, and so `docs/openapi.json`, counts them as integers,
/// serde does not.
///
/// # Errors
/// 400 naming what does not fit.
pub fn from_json<T: DeserializeOwned>(mut v: Value) -> Result<T, ApiError> {
    integral_numbers(&mut v);
    T::deserialize(StructIsObject(v))
        .map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))
}

/// Deserialises like a [`Value`], except that a struct must be a JSON object: serde also reads
/// structs from arrays of their fields in order (`["Acme"]` as `{"name": "Acme"}`), which no
/// client means and `docs/openapi.json` does not allow.
struct StructIsObject(Value);

macro_rules! forward_to_value {
    ($($method:ident),*) => {$(
        fn $method<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.0.$method(visitor)
        }
    )*};
}

impl<'de> serde::Deserializer<'de> for StructIsObject {
    type Error = serde_json::Error;

    forward_to_value!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any
    );

    fn deserialize_unit_struct<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_tuple<V: serde::de::Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple_struct(name, len, visitor)
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        if !self.0.is_object() {
            return Err(serde::de::Error::custom("the body must be a JSON object"));
        }
        self.0.deserialize_struct(name, fields, visitor)
    }

    fn deserialize_enum<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }
}

/// Parses an optional JSON body (empty or whitespace = `T::default()`) like [`ApiJson`].
///
/// # Errors
/// 400 for malformed JSON or a value that does not fit `T`.
pub fn optional_json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))?;
    from_json(v)
}

/// Replaces every float with a zero fraction that fits an `i64` or `u64` by that integer.
pub fn integral_numbers(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0) {
                // 2^63 and 2^64 are exact in f64; the casts below are in range by these checks.
                if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) {
                    #[allow(clippy::cast_possible_truncation)]
                    let i = f as i64;
                    *v = Value::from(i);
                } else if (0.0..18_446_744_073_709_551_616.0).contains(&f) {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let u = f as u64;
                    *v = Value::from(u);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(integral_numbers),
        Value::Object(m) => m.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// Query parameters; malformed ones are a JSON 400.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// Path parameters; a mismatch is a JSON 404.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// The `/api/v1` router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .merge(tenant_routes())
        .route("/tenants/{tenant}/events", get(feed::events))
        .route("/tenants/{tenant}/snapshot", get(feed::snapshot))
        .route(
            "/tenants/{tenant}/provisioning-log",
            get(logs::provisioning_log),
        )
        .route("/audit-log", get(logs::audit_log))
        .route(
            "/webhooks",
            get(webhooks::list_handler).post(webhooks::create_handler),
        )
        .route(
            "/webhooks/{id}",
            get(webhooks::get_handler).delete(webhooks::delete_handler),
        )
        .route(
            "/webhooks/{id}/rotate-secret",
            post(webhooks::rotate_handler),
        )
        .route(
            "/webhooks/{id}/redeliver",
            post(webhooks::redeliver_handler),
        )
        .merge(app_routes())
        .fallback(|| async { ApiError::not_found("no such admin API endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError {
                status: StatusCode::METHOD_NOT_ALLOWED,
                code: "method_not_allowed",
                message: "this endpoint does not support that HTTP method".into(),
            }
        })
}

/// Tenants, settings, SCIM enablement and tokens ([`tenants`], [`tokens`]).
fn tenant_routes() -> Router<AppState> {
    use axum::routing::delete;
    Router::new()
        .route(
            "/tenants",
            get(tenants::list_handler).post(tenants::create_handler),
        )
        .route(
            "/tenants/{tenant}",
            get(tenants::get_handler)
                .patch(tenants::update_handler)
                .delete(tenants::delete_handler),
        )
        .route(
            "/tenants/{tenant}/settings",
            get(tenants::get_settings_handler).patch(tenants::update_settings_handler),
        )
        .route(
            "/tenants/{tenant}/scim/enable",
            post(tenants::enable_handler),
        )
        .route(
            "/tenants/{tenant}/scim/disable",
            post(tenants::disable_handler),
        )
        .route(
            "/tenants/{tenant}/tokens",
            get(tokens::list_handler).post(tokens::create_handler),
        )
        .route(
            "/tenants/{tenant}/tokens/rotate",
            post(tokens::rotate_handler),
        )
        .route(
            "/tenants/{tenant}/tokens/{prefix}",
            delete(tokens::revoke_handler),
        )
}

/// Users, groups, roles, the login decision and the guard: the host app's side (issue 4).
fn app_routes() -> Router<AppState> {
    Router::new()
        .route("/tenants/{tenant}/users", get(users::list_handler))
        .route("/tenants/{tenant}/user-imports", post(import::handler))
        .route(
            "/tenants/{tenant}/users/{id}",
            get(users::get_handler)
                .patch(users::patch_handler)
                .delete(users::delete_handler),
        )
        .route(
            "/tenants/{tenant}/groups",
            get(groups::list_handler).post(groups::create_handler),
        )
        .route(
            "/tenants/{tenant}/groups/{id}",
            get(groups::get_handler)
                .patch(groups::patch_handler)
                .delete(groups::delete_handler),
        )
        .route(
            "/tenants/{tenant}/groups/{id}/members",
            get(groups::members_handler),
        )
        .route(
            "/tenants/{tenant}/role-mappings",
            get(roles::list_handler).post(roles::create_handler),
        )
        .route(
            "/tenants/{tenant}/role-mappings/{id}",
            get(roles::get_handler)
                .put(roles::put_handler)
                .delete(roles::delete_handler),
        )
        .route("/tenants/{tenant}/login-decision", post(login::handler))
        .route(
            "/tenants/{tenant}/deprovision-guard",
            get(guard::status_handler),
        )
        .route(
            "/tenants/{tenant}/deprovision-guard/confirm",
            post(guard::confirm_handler),
        )
        .route(
            "/tenants/{tenant}/deprovision-guard/reject",
            post(guard::reject_handler),
        )
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// Answers 404 unless the tenant exists: every tenant-scoped handler calls this first.
///
/// # Errors
/// 404 for an unknown tenant; 500 when the store fails.
pub async fn require_tenant(state: &AppState, tenant: &str) -> Result<(), ApiError> {
    match state.store.get_tenant(tenant).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(format!("no tenant \"{tenant}\""))),
    }
}

/// Appends an audit entry. A failure is logged and does not undo the action it records.
pub async fn audit(
    store: &dyn Store,
    now: OffsetDateTime,
    actor: &str,
    action: &str,
    tenant: Option<&str>,
    target: Option<&str>,
    details: Value,
) {
    let entry = AuditEntry {
        id: 0,
        at: now,
        actor: actor.to_owned(),
        action: action.to_owned(),
        tenant_id: tenant.map(str::to_owned),
        target: target.map(str::to_owned),
        details,
    };
    if let Err(e) = store.append_audit(&entry).await {
        tracing::error!(error = %e, action, "writing the audit log failed");
    }
}

/// Clamps a requested page size.
#[must_use]
pub fn limit(requested: Option<u64>) -> u64 {
    requested.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
}

/// A requested page size: 1–[`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent. Out of range is a
/// 400 rather than clamped, so that the API does exactly what `docs/openapi.json` says.
///
/// # Errors
/// 400 outside 1–[`MAX_LIMIT`].
pub fn page_limit(requested: Option<u64>) -> Result<u64, ApiError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::invalid(format!(
            "limit must be 1–{MAX_LIMIT}, not {n}"
        ))),
    }
}

/// Formats an instant as the API does (RFC 3339, milliseconds, UTC).
#[must_use]
pub fn fmt_time(t: OffsetDateTime) -> String {
    scim_proto::filter::format_datetime(t)
}

/// Parses an RFC 3339 query parameter.
///
/// # Errors
/// 400 naming the parameter.
pub fn parse_time(name: &str, v: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    v.map(|s| {
        scim_proto::filter::parse_datetime(s).ok_or_else(|| {
            ApiError::invalid(format!(
                "{name} must be an RFC 3339 date-time such as 2026-01-31T09:00:00Z, not \"{s}\""
            ))
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_floats_read_as_integers() {
        let mut v = serde_json::json!({"a": 30.0, "b": [1.5, -2.0], "c": 1e300, "d": 18446744073709551615.0});
        integral_numbers(&mut v);
        assert_eq!(v["a"], serde_json::json!(30));
        assert!(v["a"].is_u64());
        assert_eq!(v["b"], serde_json::json!([1.5, -2]));
        assert!(v["c"].is_f64(), "out of range stays a float");
        let n: u32 = from_json(serde_json::json!(7.0)).unwrap();
        assert_eq!(n, 7);
        assert!(from_json::<u32>(serde_json::json!(7.5)).is_err());
        assert_eq!(optional_json::<Option<u32>>(b"  ").unwrap(), None);
        assert!(optional_json::<u32>(b"{").is_err());
    }

    #[test]
    fn structs_come_only_from_objects() {
        #[derive(Debug, Default, serde::Deserialize, PartialEq)]
        struct S {
            a: Option<u32>,
            b: Option<String>,
        }
        assert!(from_json::<S>(serde_json::json!([1, "x"])).is_err());
        assert!(optional_json::<S>(b"[null, null]").is_err());
        assert_eq!(
            from_json::<S>(serde_json::json!({"a": 1.0})).unwrap(),
            S {
                a: Some(1),
                b: None
            }
        );
        assert_eq!(
            from_json::<Option<S>>(serde_json::json!({"b": "x"})).unwrap(),
            Some(S {
                a: None,
                b: Some("x".into())
            })
        );
        assert_eq!(
            from_json::<Vec<u8>>(serde_json::json!([1, 2])).unwrap(),
            [1, 2]
        );
        assert_eq!(
            from_json::<roster_store::DeprovisionMode>(serde_json::json!("erase")).unwrap(),
            roster_store::DeprovisionMode::Erase
        );
    }

    #[test]
    fn page_limits() {
        assert_eq!(page_limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(page_limit(Some(1)).unwrap(), 1);
        assert_eq!(page_limit(Some(MAX_LIMIT)).unwrap(), MAX_LIMIT);
        assert!(page_limit(Some(0)).is_err());
        assert!(page_limit(Some(MAX_LIMIT + 1)).is_err());
    }

    #[test]
    fn openapi_file_is_json_and_documents_every_route() {
        let spec: Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(spec["openapi"], "3.1.0");
        for path in [
            "/api/v1/openapi.json",
            "/api/v1/tenants/{tenant}/events",
            "/api/v1/tenants/{tenant}/snapshot",
            "/api/v1/tenants/{tenant}/provisioning-log",
            "/api/v1/audit-log",
            "/api/v1/webhooks",
            "/api/v1/webhooks/{id}",
            "/api/v1/webhooks/{id}/rotate-secret",
            "/api/v1/webhooks/{id}/redeliver",
        ] {
            assert!(spec["paths"][path].is_object(), "{path} is not documented");
        }
        assert!(spec["components"]["schemas"]["Error"].is_object());
    }
}
