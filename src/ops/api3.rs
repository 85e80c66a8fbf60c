//! The Tencent Cloud API 3.0 endpoint (`POST /` with `X-TC-Action`), signed
//! with `TC3-HMAC-SHA256`, answering `{"Response": {..., "RequestId"}}`.
//!
//! Errors are answered with HTTP 200 and `{"Response": {"Error": {"Code",
//! "Message"}, "RequestId"}}`, as API 3.0 does.

use http::request::Parts;
use http::StatusCode;
use hyper::body::Incoming;
use serde_json::{json, Value};

use super::AppState;
use crate::auth::{self, policy, Principal};
use crate::error::Api3Error;
use crate::proto::sign::{RequestParts, Scheme};
use crate::server::body::{self, Response};

/// Whether a request is for the API 3.0 endpoint.
pub fn is_api3(parts: &Parts) -> bool {
    parts.method == http::Method::POST
        && parts.uri.path() == "/"
        && parts.headers.contains_key("x-tc-action")
}

/// Serves one API 3.0 request.
pub async fn handle(
    state: &AppState,
    parts: &Parts,
    incoming: Incoming,
    request_id: &str,
) -> Response {
    let outcome = serve(state, parts, incoming).await;
    let mut response = match outcome {
        Ok(Value::Object(mut fields)) => {
            fields.insert("RequestId".into(), request_id.into());
            json!({ "Response": fields })
        }
        Ok(other) => json!({ "Response": { "Result": other, "RequestId": request_id } }),
        Err(err) => {
            tracing::info!(code = %err.code, detail = %err.message, "API 3.0 request refused");
            json!({ "Response": {
                "Error": { "Code": err.code, "Message": err.message },
                "RequestId": request_id,
            }})
        }
    }
    .to_string();
    response.push('\n');
    http::Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CONTENT_LENGTH, response.len())
        .body(body::full(response))
        .expect("valid response")
}

async fn serve(state: &AppState, parts: &Parts, incoming: Incoming) -> Result<Value, Api3Error> {
    let action = parts
        .headers
        .get("x-tc-action")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let document = body::read_document(
        body::incoming_stream(incoming),
        state.config.limits.max_document_bytes,
    )
    .await
    .map_err(|e| Api3Error::new("InvalidParameter", e.message))?;
    let request = RequestParts {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
    };
    let authenticated = auth::authenticate(&state.credentials, &request, Some(&document))
        .map_err(|e| Api3Error::new(e.api3_code(), e.to_string()))?;
    let (Principal::Key(id), Some(Scheme::Tc3)) = (&authenticated.principal, authenticated.scheme)
    else {
        return Err(Api3Error::new(
            "AuthFailure.InvalidAuthorization",
            "API 3.0 requests must be signed with TC3-HMAC-SHA256.",
        ));
    };
    let policy_action = format!("vod:{action}");
    let allowed = state
        .credentials
        .get(id)
        .is_some_and(|c| policy::allows(&c.allow, &policy_action, "vod"));
    if !allowed {
        tracing::info!(action = %policy_action, credential = %id, "access denied");
        return Err(Api3Error::new(
            "UnauthorizedOperation",
            format!("The credential may not call {action}."),
        ));
    }
    super::vod::dispatch(state, &action, &document).await
}
