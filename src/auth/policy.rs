//! Policies: which actions a credential may take on which resources.
//!
//! Resources are `<bucket>/<key>` for object operations and
//! `<bucket>/<prefix>` for listings (so a credential limited to `videos/*`
//! may list `videos/`). Patterns use `*` for any run of characters,
//! including `/`.

use crate::config::PolicyStatement;
use crate::proto::ci_route::{CiResource, CiTarget};
use crate::proto::route::{Endpoint, Route};

/// The policy action name of an endpoint (`cos:GetObject`, ...).
pub fn action(endpoint: &Endpoint) -> &'static str {
    match endpoint {
        Endpoint::ListObjects | Endpoint::ListObjectsV2 => "cos:GetBucket",
        Endpoint::ListMultipartUploads => "cos:ListMultipartUploads",
        Endpoint::HeadBucket => "cos:HeadBucket",
        Endpoint::GetBucketLocation => "cos:GetBucketLocation",
        Endpoint::GetObject => "cos:GetObject",
        Endpoint::HeadObject => "cos:HeadObject",
        Endpoint::PutObject | Endpoint::CopyObject { .. } => "cos:PutObject",
        Endpoint::DeleteObject | Endpoint::DeleteObjects => "cos:DeleteObject",
        Endpoint::CreateMultipartUpload => "cos:InitiateMultipartUpload",
        Endpoint::UploadPart { .. } => "cos:UploadPart",
        Endpoint::CompleteMultipartUpload { .. } => "cos:CompleteMultipartUpload",
        Endpoint::AbortMultipartUpload { .. } => "cos:AbortMultipartUpload",
        Endpoint::ListParts { .. } => "cos:ListParts",
        Endpoint::Snapshot => "ci:GenerateSnapshot",
        Endpoint::VideoInfo => "ci:GetMediaInfo",
        Endpoint::GetBucketCors => "cos:GetBucketCORS",
        Endpoint::PutBucketCors => "cos:PutBucketCORS",
        Endpoint::DeleteBucketCors => "cos:DeleteBucketCORS",
        Endpoint::Preflight => "cos:OptionsObject",
        Endpoint::Ci(call) => match call.target {
            CiTarget::Served(CiResource::Jobs) => "ci:MediaJobs",
            CiTarget::Served(CiResource::Template) => "ci:MediaTemplates",
            CiTarget::Served(CiResource::Queue) => "ci:MediaQueue",
            CiTarget::Served(CiResource::MediaBucket) => "ci:MediaBuckets",
            CiTarget::Served(CiResource::Snapshot) => "ci:GenerateSnapshot",
            CiTarget::Served(CiResource::MediaInfo) => "ci:GetMediaInfo",
            CiTarget::Served(
                CiResource::Workflow | CiResource::TriggerWorkflow | CiResource::WorkflowExecution,
            ) => "ci:MediaWorkflows",
            CiTarget::Unserved(_) => "ci:Other",
        },
    }
}

/// The policy resource of a routed request.
pub fn resource(route: &Route) -> String {
    match &route.key {
        Some(key) => format!("{}/{key}", route.bucket),
        None => format!(
            "{}/{}",
            route.bucket,
            route.query.get("prefix").unwrap_or_default()
        ),
    }
}

/// Whether `statements` allow `action` on `resource`. No statements means
/// unrestricted (a root credential).
pub fn allows(statements: &[PolicyStatement], action: &str, resource: &str) -> bool {
    statements.is_empty()
        || statements.iter().any(|s| {
            s.actions.iter().any(|a| wildcard_match(a, action))
                && s.resources.iter().any(|r| wildcard_match(r, resource))
        })
}

/// `*`-wildcard matching (iterative, linear backtracking; no recursion).
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(actions: &[&str], resources: &[&str]) -> PolicyStatement {
        PolicyStatement {
            actions: actions.iter().map(|s| s.to_string()).collect(),
            resources: resources.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("cos:*", "cos:GetObject"));
        assert!(wildcard_match("b-1/videos/*", "b-1/videos/a/b.mp4"));
        assert!(!wildcard_match("b-1/videos/*", "b-1/video.mp4"));
        assert!(wildcard_match("*.mp4", "b-1/x/y.mp4"));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(!wildcard_match("a*b*c", "aXXbYY"));
        assert!(!wildcard_match("cos:GetObject", "cos:GetObjectX"));
    }

    #[test]
    fn statements_grant_actions_on_resources() {
        let snapshot_only = [stmt(&["ci:GenerateSnapshot"], &["b-1/videos/*"])];
        assert!(allows(
            &snapshot_only,
            "ci:GenerateSnapshot",
            "b-1/videos/x.mp4"
        ));
        assert!(!allows(&snapshot_only, "cos:GetObject", "b-1/videos/x.mp4"));
        assert!(!allows(
            &snapshot_only,
            "ci:GenerateSnapshot",
            "b-1/other/x.mp4"
        ));
        assert!(allows(&[], "cos:DeleteObject", "anything"));
        let read_only = [stmt(&["cos:Get*", "cos:Head*"], &["*"])];
        assert!(allows(&read_only, "cos:GetBucket", "b-1/"));
        assert!(!allows(&read_only, "cos:PutObject", "b-1/k"));
    }
}
