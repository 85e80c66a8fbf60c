//! First-run conveniences of `framegate serve`: a root credential kept in
//! the data directory, the demo video, and the banner that tells the user
//! how to reach the gateway.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::config::CredentialConfig;
use crate::storage::{Bucket, PutRequest, StorageError};

/// The file under the data dir that keeps the generated root credential.
pub const CREDENTIALS_FILE: &str = "credentials.toml";

#[derive(Serialize, Deserialize)]
struct StoredCredential {
    secret_id: String,
    secret_key: String,
}

/// The root credential from `data_dir/credentials.toml`, generated (and saved
/// with mode 0600) on first use.
pub fn root_credential(data_dir: &Path) -> std::io::Result<CredentialConfig> {
    let path = data_dir.join(CREDENTIALS_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let stored: StoredCredential = toml::from_str(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?;
        return Ok(CredentialConfig {
            secret_id: stored.secret_id,
            secret_key: stored.secret_key,
            security_token: None,
            allow: Vec::new(),
        });
    }
    std::fs::create_dir_all(data_dir)?;
    let stored = StoredCredential {
        secret_id: format!("AKID{}", random_token(32)),
        secret_key: random_token(32),
    };
    let text = toml::to_string(&stored).map_err(std::io::Error::other)?;
    write_private(&path, &text)?;
    Ok(CredentialConfig {
        secret_id: stored.secret_id,
        secret_key: stored.secret_key,
        security_token: None,
        allow: Vec::new(),
    })
}

fn write_private(path: &PathBuf, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

fn random_token(len: usize) -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Uploads `file` as `key` unless the bucket already has that key.
/// Returns whether it uploaded.
pub async fn seed_demo(bucket: &Bucket, key: &str, file: &Path) -> Result<bool, StorageError> {
    match bucket.head(key).await {
        Ok(_) => return Ok(false),
        Err(StorageError::NoSuchKey) => {}
        Err(e) => return Err(e),
    }
    let handle = tokio::fs::File::open(file)
        .await
        .map_err(|e| StorageError::Client(Box::new(e)))?;
    let len = handle
        .metadata()
        .await
        .map_err(|e| StorageError::Client(Box::new(e)))?
        .len();
    let body = tokio_util::io::ReaderStream::with_capacity(handle, 256 * 1024)
        .map(|chunk| chunk.map_err(|e| Box::new(e) as crate::storage::BoxError))
        .boxed();
    let request = PutRequest {
        content_length: Some(len),
        max_len: u64::MAX,
        ..PutRequest::default()
    };
    bucket.put_object(key, body, request).await?;
    Ok(true)
}
