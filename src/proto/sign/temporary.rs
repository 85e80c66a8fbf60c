//! Temporary credentials: the `TempCertificate` of VOD's `ApplyUpload`.
//!
//! Nothing about a temporary credential is stored. Its security token is a
//! self-describing grant (bucket, the keys it may write, expiry, session)
//! with an HMAC-SHA256 under the gateway's credential key; the SecretId and
//! SecretKey are derived from the token with the same key. Any gateway that
//! holds the key (every gateway of a fleet reads it from the shared job
//! store) verifies a request synchronously: check the token's MAC and
//! expiry, re-derive the SecretId (it must be the request's) and the
//! SecretKey, then verify the signature with that key as with any other
//! credential. A token changed by one byte fails its MAC; a token moved to
//! another SecretId fails the derivation.
//!
//! Pure: no I/O, `now` is a parameter.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::SignError;

/// How every temporary SecretId starts (a configured credential never
/// needs to).
pub const SECRET_ID_PREFIX: &str = "AKIDfgtmp";

/// The policy actions a temporary upload credential may take: a simple PUT
/// and the steps of a multipart upload, nothing else. Listing multipart
/// uploads is allowed with one of the grant's keys as the prefix: the COS
/// SDKs' `upload_file` looks for an upload to resume that way.
pub const UPLOAD_ACTIONS: [&str; 7] = [
    "cos:PutObject",
    "cos:ListMultipartUploads",
    "cos:InitiateMultipartUpload",
    "cos:UploadPart",
    "cos:CompleteMultipartUpload",
    "cos:AbortMultipartUpload",
    "cos:ListParts",
];

/// What a temporary credential allows: writing `keys` of `bucket` until
/// `expires_secs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadGrant {
    /// The bucket.
    #[serde(rename = "b")]
    pub bucket: String,
    /// The object keys it may write (no leading `/`).
    #[serde(rename = "k")]
    pub keys: Vec<String>,
    /// Unix seconds after which it is refused.
    #[serde(rename = "e")]
    pub expires_secs: i64,
    /// The upload session it belongs to (for logs).
    #[serde(rename = "s")]
    pub session: String,
}

impl UploadGrant {
    /// Whether the grant allows the policy `action` on `bucket/key`.
    pub fn allows(&self, action: &str, bucket: &str, key: Option<&str>) -> bool {
        UPLOAD_ACTIONS.contains(&action)
            && bucket == self.bucket
            && key.is_some_and(|key| self.keys.iter().any(|k| k == key))
    }
}

/// A temporary credential as handed to the uploader.
#[derive(Clone, PartialEq, Eq)]
pub struct TemporaryCredential {
    /// The SecretId (starts with [`SECRET_ID_PREFIX`]).
    pub secret_id: String,
    /// The SecretKey.
    pub secret_key: String,
    /// The security token (`x-cos-security-token`).
    pub token: String,
    /// Unix seconds when it expires.
    pub expires_secs: i64,
}

impl std::fmt::Debug for TemporaryCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemporaryCredential")
            .field("secret_id", &self.secret_id)
            .field("expires_secs", &self.expires_secs)
            .finish_non_exhaustive()
    }
}

/// The gateway's key that issues and verifies temporary credentials.
#[derive(Clone)]
pub struct IssuerKey(Vec<u8>);

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IssuerKey(<redacted>)")
    }
}

/// The MAC domains: one key, three unrelated uses.
const TOKEN_DOMAIN: &[u8] = b"framegate temporary token\n";
const ID_DOMAIN: &[u8] = b"framegate temporary secret id\n";
const KEY_DOMAIN: &[u8] = b"framegate temporary secret key\n";

impl IssuerKey {
    /// A key from its secret bytes (at least 32).
    pub fn new(secret: Vec<u8>) -> Self {
        debug_assert!(secret.len() >= 32);
        Self(secret)
    }

    fn mac(&self, domain: &[u8], data: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(domain);
        mac.update(data);
        mac
    }

    fn derive(&self, domain: &[u8], token: &str, len: usize) -> Vec<u8> {
        self.mac(domain, token.as_bytes()).finalize().into_bytes()[..len].to_vec()
    }

    fn secret_id(&self, token: &str) -> String {
        format!(
            "{SECRET_ID_PREFIX}{}",
            hex::encode(self.derive(ID_DOMAIN, token, 12))
        )
    }

    fn secret_key(&self, token: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.derive(KEY_DOMAIN, token, 24))
    }

    /// Issues the credential of `grant`.
    pub fn issue(&self, grant: &UploadGrant) -> TemporaryCredential {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(grant).expect("grant serialises"));
        let tag = self
            .mac(TOKEN_DOMAIN, payload.as_bytes())
            .finalize()
            .into_bytes();
        let token = format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag));
        TemporaryCredential {
            secret_id: self.secret_id(&token),
            secret_key: self.secret_key(&token),
            token,
            expires_secs: grant.expires_secs,
        }
    }

    /// Verifies that `token` is one this key issued for `secret_id` and has
    /// not expired at `now_secs`; returns its grant and the SecretKey the
    /// request must be signed with.
    pub fn verify(
        &self,
        secret_id: &str,
        token: Option<&str>,
        now_secs: i64,
    ) -> Result<(UploadGrant, String), SignError> {
        let token = token.ok_or(SignError::MissingSecurityToken)?;
        let (payload, tag) = token
            .split_once('.')
            .ok_or(SignError::InvalidSecurityToken)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| SignError::InvalidSecurityToken)?;
        self.mac(TOKEN_DOMAIN, payload.as_bytes())
            .verify_slice(&tag)
            .map_err(|_| SignError::InvalidSecurityToken)?;
        let expected_id = self.secret_id(token);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            expected_id.as_bytes(),
            secret_id.as_bytes(),
        )) {
            return Err(SignError::InvalidSecurityToken);
        }
        let grant: UploadGrant = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(SignError::InvalidSecurityToken)?;
        if now_secs >= grant.expires_secs {
            return Err(SignError::ExpiredToken);
        }
        Ok((grant, self.secret_key(token)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> IssuerKey {
        IssuerKey::new(vec![byte; 32])
    }

    fn grant() -> UploadGrant {
        UploadGrant {
            bucket: "media-1250000000".into(),
            keys: vec!["up/abc/clip.mp4".into(), "up/abc/cover.jpg".into()],
            expires_secs: 1_000,
            session: "abc".into(),
        }
    }

    #[test]
    fn an_issued_credential_verifies_until_it_expires() {
        let credential = key(7).issue(&grant());
        assert!(credential.secret_id.starts_with(SECRET_ID_PREFIX));
        let (got, secret_key) = key(7)
            .verify(&credential.secret_id, Some(&credential.token), 999)
            .unwrap();
        assert_eq!(got, grant());
        assert_eq!(secret_key, credential.secret_key);
        assert_eq!(
            key(7).verify(&credential.secret_id, Some(&credential.token), 1_000),
            Err(SignError::ExpiredToken)
        );
    }

    #[test]
    fn a_tampered_or_foreign_token_is_refused() {
        let credential = key(7).issue(&grant());
        let mut other = grant();
        other.keys.push("up/abc/other.mp4".into());
        let forged_payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).expect("serialises"));
        let (_, tag) = credential.token.split_once('.').unwrap();
        let forged = format!("{forged_payload}.{tag}");
        for token in [forged.as_str(), "garbage", "a.b", ""] {
            assert_eq!(
                key(7).verify(&credential.secret_id, Some(token), 0),
                Err(SignError::InvalidSecurityToken),
                "{token}"
            );
        }
        // Another gateway key, another credential's id, no token.
        assert_eq!(
            key(8).verify(&credential.secret_id, Some(&credential.token), 0),
            Err(SignError::InvalidSecurityToken)
        );
        let second = key(7).issue(&UploadGrant {
            session: "def".into(),
            ..grant()
        });
        assert_eq!(
            key(7).verify(&second.secret_id, Some(&credential.token), 0),
            Err(SignError::InvalidSecurityToken)
        );
        assert_eq!(
            key(7).verify(&credential.secret_id, None, 0),
            Err(SignError::MissingSecurityToken)
        );
    }

    #[test]
    fn the_grant_allows_only_uploads_of_its_keys() {
        let g = grant();
        for action in UPLOAD_ACTIONS {
            assert!(g.allows(action, "media-1250000000", Some("up/abc/clip.mp4")));
        }
        assert!(!g.allows("cos:GetObject", "media-1250000000", Some("up/abc/clip.mp4")));
        assert!(!g.allows(
            "cos:DeleteObject",
            "media-1250000000",
            Some("up/abc/clip.mp4")
        ));
        assert!(!g.allows("cos:PutObject", "media-1250000000", Some("up/abc/x.mp4")));
        assert!(!g.allows("cos:PutObject", "other-1250000000", Some("up/abc/clip.mp4")));
        assert!(!g.allows("cos:GetBucket", "media-1250000000", None));
    }
}
