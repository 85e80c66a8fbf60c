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
use crate::jobs::templates::Kind;
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
    let params: Value = if document.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&document)
            .map_err(|e| Api3Error::new("InvalidParameter", format!("The body is not JSON: {e}")))?
    };
    dispatch(state, &action, &params).await
}

async fn dispatch(state: &AppState, action: &str, params: &Value) -> Result<Value, Api3Error> {
    let jobs = &state.jobs;
    for kind in Kind::ALL {
        let name = kind.name();
        let Some(verb) = action.strip_suffix(name).or_else(|| {
            action
                .strip_suffix('s')
                .and_then(|a| a.strip_suffix(name))
                .filter(|v| *v == "Describe")
        }) else {
            continue;
        };
        let result = match verb {
            "Create" => jobs.create_template(kind, params).await,
            "Describe" if action.ends_with('s') => jobs.describe_templates(kind, params).await,
            "Modify" => jobs.modify_template(kind, params).await,
            "Delete" => jobs.delete_template(kind, params).await,
            _ => break,
        };
        return result.map_err(Api3Error::from);
    }
    let result = match action {
        "ProcessMedia" => jobs.process_media(params).await,
        "DescribeTaskDetail" => jobs.describe_task(params).await,
        "DescribeTasks" => jobs.describe_tasks(params).await,
        "DescribeMediaInfos" => jobs.describe_media(params).await,
        "PullEvents" => jobs.pull_events().await,
        "ConfirmEvents" => jobs.confirm_events(params).await,
        "ModifyEventConfig" => jobs.modify_event_config(params).await,
        "DescribeEventConfig" => jobs.describe_event_config().await,
        "CreateProcedureTemplate" => jobs.create_procedure(params).await,
        "DescribeProcedureTemplates" => jobs.describe_procedures(params).await,
        "DeleteProcedureTemplate" => jobs.delete_procedure(params).await,
        "ProcessMediaByProcedure" => jobs.process_media_by_procedure(params).await,
        _ => {
            return Err(Api3Error::new(
                "InvalidAction",
                format!("The action {action:?} does not exist or is not provided by this gateway."),
            ))
        }
    };
    result.map_err(Api3Error::from)
}
