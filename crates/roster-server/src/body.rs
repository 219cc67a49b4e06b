//! Reading SCIM request bodies: media type, size limit and JSON syntax, each refused with a
//! SCIM error rather than the framework's plain-text rejections.

use axum::body::to_bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde_json::Value;

use crate::error::HttpError;
use crate::AppState;
use scim_proto::ScimError;

/// A JSON request body sent as `application/scim+json` or `application/json`.
#[derive(Debug)]
pub struct ScimBody(pub Value);

fn acceptable_media_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/scim+json")
        || essence.eq_ignore_ascii_case("application/json")
}

impl FromRequest<AppState> for ScimBody {
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, HttpError> {
        // A missing Content-Type is tolerated: some clients omit it, and the body must still
        // parse as JSON. A different media type is refused.
        if let Some(ct) = req.headers().get(CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("");
            if !acceptable_media_type(ct) {
                return Err(HttpError::status(
                    415,
                    format!("unsupported Content-Type \"{ct}\"; send application/scim+json"),
                ));
            }
        }
        let limit = state.settings.max_body_bytes;
        // A deadline for the whole body, not per chunk: a body that trickles in a byte at a
        // time would otherwise hold the request (and its connection) for as long as it likes.
        let deadline = state.settings.limits.body_read;
        let bytes = match tokio::time::timeout(deadline, to_bytes(req.into_body(), limit)).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(_)) => {
                return Err(HttpError::status(
                    413,
                    format!("request body is larger than the limit of {limit} bytes"),
                ))
            }
            Err(_) => {
                return Err(HttpError::status(
                    408,
                    format!(
                        "the request body did not arrive within {} s; send it at once",
                        deadline.as_secs_f64()
                    ),
                ))
            }
        };
        if bytes.is_empty() {
            return Err(
                ScimError::invalid_syntax("the request body is empty; send a JSON object").into(),
            );
        }
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}"))
        })?;
        crate::provlog::note_body(&value);
        Ok(Self(value))
    }
}
