//! `GET`/`PUT`/`DELETE /api/v1/branding` and `PUT`/`DELETE /api/v1/branding/logo`: the
//! vendor's branding of the IT admin's view ([`crate::ops::branding`]).

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{AdminAuth, ApiError, ApiJson};
use crate::ops::branding::{self, Branding};
use crate::ops::OpError;
use crate::AppState;

/// The JSON shape of the branding.
#[must_use]
pub fn branding_json(b: &Branding) -> Value {
    json!({
        "name": b.name,
        "accent": b.accent,
        "logo": b.logo.as_ref().map(|l| json!({
            "content_type": l.content_type,
            "bytes": l.bytes,
            "sha256": l.sha256,
            "url": b.logo_href(),
        })),
    })
}

/// An operation's refusal; an invalid input also lists each problem with its field in
/// `error.details.errors`.
fn api_error(e: OpError) -> ApiError {
    let details = match &e {
        OpError::Invalid { errors } => Some(Box::new(json!({
            "errors": errors.iter().map(|f| json!({"field": f.field, "message": f.message})).collect::<Vec<_>>(),
        }))),
        _ => None,
    };
    let mut out = ApiError::from(e);
    if details.is_some() {
        out.details = details;
    }
    out
}

/// `GET /api/v1/branding`.
///
/// # Errors
/// 401, 500.
pub async fn get_handler(
    State(state): State<AppState>,
    _auth: AdminAuth,
) -> Result<Json<Value>, ApiError> {
    let b = branding::stored(state.store.as_ref()).await?;
    Ok(Json(branding_json(&b)))
}

/// The body of `PUT /api/v1/branding`: what is absent or `null` is removed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrandingPut {
    /// The brand name.
    #[serde(default)]
    pub name: Option<String>,
    /// The accent colour, `#rrggbb`.
    #[serde(default)]
    pub accent: Option<String>,
}

/// `PUT /api/v1/branding`: replaces the name and the accent colour (the logo stays).
///
/// # Errors
/// 400 (every bad field in `error.details.errors`), 401, 500.
pub async fn put_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    ApiJson(body): ApiJson<BrandingPut>,
) -> Result<Json<Value>, ApiError> {
    let b = branding::set(
        state.store.as_ref(),
        state.clock.now(),
        &auth.actor(),
        body.name.as_deref(),
        body.accent.as_deref(),
    )
    .await
    .map_err(api_error)?;
    Ok(Json(branding_json(&b)))
}

/// `DELETE /api/v1/branding`: removes the name, the accent colour and the logo.
///
/// # Errors
/// 401, 500.
pub async fn delete_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
) -> Result<Json<Value>, ApiError> {
    branding::clear(state.store.as_ref(), state.clock.now(), &auth.actor()).await?;
    Ok(Json(branding_json(&Branding::default())))
}

/// `PUT /api/v1/branding/logo`: the body is the image (PNG, JPEG, GIF, WebP or SVG, at most
/// 256 KiB), recognised by its bytes whatever the `Content-Type`.
///
/// # Errors
/// 400 (empty, too large, not an image), 401, 500.
pub async fn put_logo_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let b = branding::set_logo(
        state.store.as_ref(),
        state.clock.now(),
        &auth.actor(),
        &body,
    )
    .await
    .map_err(api_error)?;
    Ok(Json(branding_json(&b)))
}

/// `DELETE /api/v1/branding/logo`.
///
/// # Errors
/// 401, 500.
pub async fn delete_logo_handler(
    State(state): State<AppState>,
    auth: AdminAuth,
) -> Result<Json<Value>, ApiError> {
    let b = branding::clear_logo(state.store.as_ref(), state.clock.now(), &auth.actor()).await?;
    Ok(Json(branding_json(&b)))
}
