//! Which requests are calls of Cloud Infinite's media API (CI) rather than
//! object operations (docs/ci-media-api.md, "Where CI calls arrive").
//!
//! On a CI host (`<bucket>.ci.<region>.<domain>`) every request is a CI call.
//! Pointed at a self-hosted endpoint, `cos-python-sdk-v5` sends CI calls to
//! the object host with object-like paths (`POST /jobs`, `PUT
//! /template/<id>`, `DELETE /workflow/<id>`), so there [`recognize`] tells
//! them apart by their shape: the first path segment is a CI resource name
//! and either nothing, or one segment without a dot, follows it; or it is a
//! `POST` that is not a multipart upload; or the query carries a CI flag
//! (`cancel`, `active`, `paused`). Everything else stays an object key.

use http::Method;

use super::query::Query;

/// The CI resources framegate serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiResource {
    /// `/jobs`: media jobs.
    Jobs,
    /// `/template`: media templates.
    Template,
    /// `/queue`: the bucket's media queue.
    Queue,
    /// `/mediabucket`: buckets with media processing.
    MediaBucket,
    /// `/workflow`: workflows.
    Workflow,
    /// `/triggerworkflow`: start a workflow on an object.
    TriggerWorkflow,
    /// `/workflowexecution`: workflow runs.
    WorkflowExecution,
    /// `/snapshot`: one frame saved as an object (GenerateSnapshot).
    Snapshot,
    /// `/mediainfo`: media information (GenerateMediaInfo).
    MediaInfo,
}

/// What a CI request addresses: a resource framegate serves, or one it
/// does not (answered `NotImplemented`, changing nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CiTarget {
    /// A served resource.
    Served(CiResource),
    /// Another CI API, by the path segment that names it.
    Unserved(String),
}

/// A flag in the query of a CI call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiFlag {
    /// `?cancel`: cancel a job.
    Cancel,
    /// `?active`: activate a workflow.
    Active,
    /// `?paused`: pause a workflow.
    Paused,
}

impl CiFlag {
    const ALL: [(CiFlag, &'static str); 3] = [
        (CiFlag::Cancel, "cancel"),
        (CiFlag::Active, "active"),
        (CiFlag::Paused, "paused"),
    ];

    /// The first CI flag `query` carries.
    pub fn of(query: &Query) -> Option<CiFlag> {
        Self::ALL
            .iter()
            .find(|(_, name)| query.has(name))
            .map(|(flag, _)| *flag)
    }
}

/// A routed CI call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiCall {
    /// The resource.
    pub target: CiTarget,
    /// The path below the resource (`j8d1…` of `/jobs/j8d1…`), if any.
    pub id: Option<String>,
    /// A flag of the query.
    pub flag: Option<CiFlag>,
}

/// First path segments that name CI resources: those served, then the
/// other CI APIs `cos-python-sdk-v5` calls on the same host.
const SERVED: [(&str, CiResource); 9] = [
    ("jobs", CiResource::Jobs),
    ("template", CiResource::Template),
    ("queue", CiResource::Queue),
    ("mediabucket", CiResource::MediaBucket),
    ("workflow", CiResource::Workflow),
    ("triggerworkflow", CiResource::TriggerWorkflow),
    ("workflowexecution", CiResource::WorkflowExecution),
    ("snapshot", CiResource::Snapshot),
    ("mediainfo", CiResource::MediaInfo),
];
const UNSERVED: [&str; 15] = [
    "pic_jobs",
    "doc_jobs",
    "asr_jobs",
    "file_jobs",
    "picqueue",
    "docqueue",
    "asrqueue",
    "ai_queue",
    "picbucket",
    "docbucket",
    "asrbucket",
    "ai_bucket",
    "inventorytriggerjob",
    "playKey",
    "virus",
];

/// The resource a first path segment names, if it is a CI name.
fn target_of(segment: &str) -> Option<CiTarget> {
    if let Some((_, resource)) = SERVED.iter().find(|(name, _)| *name == segment) {
        return Some(CiTarget::Served(*resource));
    }
    UNSERVED
        .contains(&segment)
        .then(|| CiTarget::Unserved(segment.to_owned()))
}

/// The CI call a request on a CI host makes (every request there is one).
pub fn on_ci_host(path: &str, query: &Query) -> CiCall {
    let path = path.trim_start_matches('/');
    let (first, rest) = path.split_once('/').unwrap_or((path, ""));
    CiCall {
        target: target_of(first).unwrap_or_else(|| CiTarget::Unserved(first.to_owned())),
        id: (!rest.is_empty()).then(|| rest.to_owned()),
        flag: CiFlag::of(query),
    }
}

/// The CI call a request on an object host makes, if it is one (see the
/// module comment for the rule). `key` is the decoded object key.
pub fn recognize(method: &Method, key: &str, query: &Query) -> Option<CiCall> {
    let (first, rest) = key.split_once('/').unwrap_or((key, ""));
    let target = target_of(first)?;
    let flag = CiFlag::of(query);
    let multipart = query.has("uploads") || query.has("uploadId");
    let shaped = rest.is_empty()
        || (!rest.contains('/') && !rest.contains('.'))
        || (*method == Method::POST && !multipart)
        || flag.is_some();
    shaped.then(|| CiCall {
        target,
        id: (!rest.is_empty()).then(|| rest.to_owned()),
        flag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(raw: &str) -> Query {
        Query::parse(Some(raw)).unwrap()
    }

    #[test]
    fn sdk_calls_are_ci_calls() {
        let cases = [
            (Method::POST, "jobs", ""),
            (Method::GET, "jobs", "tag=Snapshot&size=10"),
            (
                Method::GET,
                "jobs/j0123456789abcdef0123456789abcdef,jbogus",
                "",
            ),
            (Method::PUT, "jobs/jbogus", "cancel"),
            (Method::PUT, "template/t0123", ""),
            (Method::DELETE, "template/nope", ""),
            (Method::PUT, "queue/p0123", ""),
            (Method::GET, "mediabucket", "regions="),
            (Method::DELETE, "workflow/w123", ""),
            (Method::PUT, "workflow/w123", "active"),
            (Method::PUT, "inventorytriggerjob/abc", "cancel"),
            (Method::PUT, "playKey", ""),
            (Method::POST, "virus/detect", ""),
        ];
        for (method, key, query) in cases {
            assert!(
                recognize(&method, key, &q(query)).is_some(),
                "{method} {key}?{query}"
            );
        }
    }

    #[test]
    fn ordinary_keys_stay_objects() {
        let cases = [
            (Method::GET, "jobs/2024/report.mp4", ""),
            (Method::PUT, "jobs/2024/report.mp4", ""),
            (Method::PUT, "template/a.png", ""),
            (Method::DELETE, "template/a.png", ""),
            (Method::GET, "queue/p1.jpg", ""),
            (Method::PUT, "workflow/w1/x.txt", ""),
            (Method::POST, "jobs/x.mp4", "uploads"),
            (Method::POST, "template/a/b.mp4", "uploadId=abc"),
            (Method::PUT, "video/auditing", ""),
            (Method::GET, "jobsx", ""),
        ];
        for (method, key, query) in cases {
            assert_eq!(
                recognize(&method, key, &q(query)),
                None,
                "{method} {key}?{query}"
            );
        }
    }

    #[test]
    fn served_and_unserved_resources() {
        let call = recognize(&Method::PUT, "jobs/j1", &q("cancel")).unwrap();
        assert_eq!(call.target, CiTarget::Served(CiResource::Jobs));
        assert_eq!(call.id.as_deref(), Some("j1"));
        assert_eq!(call.flag, Some(CiFlag::Cancel));
        let call = recognize(&Method::POST, "workflow", &q("")).unwrap();
        assert_eq!(call.target, CiTarget::Served(CiResource::Workflow));
        let call = recognize(&Method::POST, "docqueue", &q("")).unwrap();
        assert_eq!(call.target, CiTarget::Unserved("docqueue".into()));
        let call = on_ci_host("/anything/at/all", &q(""));
        assert_eq!(call.target, CiTarget::Unserved("anything".into()));
        assert_eq!(call.id.as_deref(), Some("at/all"));
        assert_eq!(
            on_ci_host("/queue", &q("")).target,
            CiTarget::Served(CiResource::Queue)
        );
    }
}
