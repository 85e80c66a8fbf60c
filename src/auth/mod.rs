//! Access control: who may do what, decided before any storage or decoding
//! work starts.

pub mod policy;

use crate::config::BucketAcl;
use crate::error::{ApiError, ErrorCode};
use crate::proto::route::{Endpoint, Route};
use crate::storage::Bucket;

/// Whether anonymous clients of a public-read bucket may call `endpoint`.
fn public_read_allows(bucket: &Bucket, endpoint: &Endpoint) -> bool {
    match endpoint {
        Endpoint::GetObject | Endpoint::HeadObject => true,
        Endpoint::Snapshot | Endpoint::VideoInfo => bucket.anonymous_media,
        _ => false,
    }
}

/// Decides whether an anonymous request may proceed, from the bucket ACL.
pub fn authorize(bucket: &Bucket, route: &Route) -> Result<(), ApiError> {
    let allowed = match bucket.acl {
        BucketAcl::PublicReadWrite => true,
        BucketAcl::PublicRead => public_read_allows(bucket, &route.endpoint),
        BucketAcl::Private => false,
    };
    if allowed {
        Ok(())
    } else {
        tracing::info!(action = policy::action(&route.endpoint), bucket = %bucket.name, "access denied");
        Err(ApiError::new(ErrorCode::AccessDenied, "Access Denied."))
    }
}
