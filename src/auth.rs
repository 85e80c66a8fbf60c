//! Access control: who may do what, decided before any storage or decoding
//! work starts.

use crate::config::BucketAcl;
use crate::error::{ApiError, ErrorCode};
use crate::proto::route::{Endpoint, Route};
use crate::storage::Bucket;

/// Whether an endpoint only reads.
fn is_read(endpoint: &Endpoint) -> bool {
    matches!(
        endpoint,
        Endpoint::GetObject | Endpoint::HeadObject | Endpoint::HeadBucket
    )
}

/// Decides whether the request may proceed. Until signature verification
/// is wired in, only the bucket ACL grants access.
pub fn authorize(bucket: &Bucket, route: &Route) -> Result<(), ApiError> {
    let allowed = match bucket.acl {
        BucketAcl::PublicReadWrite => true,
        BucketAcl::PublicRead => is_read(&route.endpoint),
        BucketAcl::Private => false,
    };
    if allowed {
        Ok(())
    } else {
        tracing::info!(action = route.endpoint.name(), bucket = %bucket.name, "access denied");
        Err(ApiError::new(ErrorCode::AccessDenied, "Access Denied."))
    }
}
