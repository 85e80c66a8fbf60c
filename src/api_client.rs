//! A small API 3.0 client (TC3-signed `POST /`) for the `framegate job`
//! commands: the same requests `tencentcloud-sdk-python-vod` sends.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::config::CredentialConfig;
use crate::proto::sign::tc3::{self, Tc3Request};
use crate::proto::sign::Credential;

/// The API version framegate speaks (VOD's).
pub const VERSION: &str = "2018-07-17";

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint is not `http://host:port`.
    #[error("endpoint {0:?} must look like http://host:port")]
    Endpoint(String),
    /// Connecting or exchanging the request failed.
    #[error("{0}")]
    Transport(String),
    /// The answer is not API 3.0 JSON.
    #[error("unexpected answer: {0}")]
    Answer(String),
    /// The gateway refused the request.
    #[error("{code}: {message}")]
    Api {
        /// The API 3.0 code.
        code: String,
        /// Its message.
        message: String,
    },
}

/// Calls API 3.0 actions on a gateway.
#[derive(Debug, Clone)]
pub struct Client {
    host: String,
    credential: CredentialConfig,
    region: String,
}

impl Client {
    /// A client for `endpoint` (`http://host:port`) signing with `credential`.
    pub fn new(
        endpoint: &str,
        credential: CredentialConfig,
        region: &str,
    ) -> Result<Self, ClientError> {
        let host = endpoint
            .strip_prefix("http://")
            .map(|h| h.trim_end_matches('/'))
            .filter(|h| !h.is_empty() && !h.contains('/'))
            .ok_or_else(|| ClientError::Endpoint(endpoint.to_owned()))?;
        Ok(Self {
            host: host.to_owned(),
            credential,
            region: region.to_owned(),
        })
    }

    /// Calls `action` with `params`; returns the `Response` object.
    pub async fn call(&self, action: &str, params: &Value) -> Result<Value, ClientError> {
        let body = params.to_string();
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let content_type = "application/json; charset=utf-8";
        let credential = Credential {
            access_key_id: &self.credential.secret_id,
            secret_key: &self.credential.secret_key,
            security_token: self.credential.security_token.as_deref(),
        };
        let authorization = tc3::sign(
            &credential,
            &Tc3Request {
                method: "POST",
                path: "/",
                query: "",
                headers: &[("content-type", content_type), ("host", &self.host)],
                payload: body.as_bytes(),
                service: "vod",
            },
            timestamp,
        );
        let mut request = http::Request::post("/")
            .header(http::header::HOST, &self.host)
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::AUTHORIZATION, authorization)
            .header("X-TC-Action", action)
            .header("X-TC-Version", VERSION)
            .header("X-TC-Timestamp", timestamp.to_string())
            .header("X-TC-Region", &self.region);
        if let Some(token) = &self.credential.security_token {
            request = request.header("X-TC-Token", token);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let transport =
            |e: &dyn std::fmt::Display| ClientError::Transport(format!("{}: {e}", self.host));
        let stream = tokio::net::TcpStream::connect(&self.host)
            .await
            .map_err(|e| transport(&e))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| transport(&e))?;
        tokio::spawn(connection);
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| transport(&e))?;
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| transport(&e))?
            .to_bytes();
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|_| ClientError::Answer(String::from_utf8_lossy(&bytes).into_owned()))?;
        let response = value
            .get("Response")
            .cloned()
            .ok_or_else(|| ClientError::Answer(value.to_string()))?;
        if let Some(error) = response.get("Error") {
            return Err(ClientError::Api {
                code: error["Code"].as_str().unwrap_or_default().to_owned(),
                message: error["Message"].as_str().unwrap_or_default().to_owned(),
            });
        }
        Ok(response)
    }
}
