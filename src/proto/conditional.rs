//! Conditional requests: `If-Match`, `If-None-Match`, `If-Modified-Since`,
//! `If-Unmodified-Since` (RFC 9110 §13.2.2 order of evaluation).

use std::time::SystemTime;

use http::HeaderMap;

/// What the preconditions say about a request for a representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Serve it.
    Proceed,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// Evaluates the conditional headers of a GET/HEAD against the current
/// `etag` (quoted) and `last_modified` of the object.
pub fn evaluate(headers: &HeaderMap, etag: &str, last_modified: SystemTime) -> Precondition {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let last_modified_secs = secs(last_modified);
    if let Some(value) = header("if-match") {
        if !etag_list_matches(value, etag) {
            return Precondition::Failed;
        }
    } else if let Some(since) = header("if-unmodified-since").and_then(parse_date) {
        if last_modified_secs > secs(since) {
            return Precondition::Failed;
        }
    }
    if let Some(value) = header("if-none-match") {
        if etag_list_matches(value, etag) {
            return Precondition::NotModified;
        }
    } else if let Some(since) = header("if-modified-since").and_then(parse_date) {
        if last_modified_secs <= secs(since) {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// Whether a comma-separated list of entity tags (or `*`) contains `etag`,
/// comparing weakly (a `W/` prefix is ignored) and tolerating unquoted tags
/// as some clients send them.
pub fn etag_list_matches(list: &str, etag: &str) -> bool {
    let bare = |t: &str| {
        t.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_owned()
    };
    let wanted = bare(etag);
    list.split(',')
        .any(|t| t.trim() == "*" || bare(t) == wanted)
}

fn parse_date(text: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(text.trim()).ok()
}

fn secs(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn etags_and_dates() {
        let etag = "\"abc\"";
        let modified = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let before = httpdate::fmt_http_date(modified - Duration::from_secs(60));
        let after = httpdate::fmt_http_date(modified + Duration::from_secs(60));
        let case = |pairs: &[(&'static str, &str)]| evaluate(&headers(pairs), etag, modified);
        assert_eq!(case(&[]), Precondition::Proceed);
        assert_eq!(
            case(&[("if-none-match", "\"abc\"")]),
            Precondition::NotModified
        );
        assert_eq!(
            case(&[("if-none-match", "W/\"abc\", \"x\"")]),
            Precondition::NotModified
        );
        assert_eq!(case(&[("if-none-match", "\"x\"")]), Precondition::Proceed);
        assert_eq!(case(&[("if-match", "\"x\"")]), Precondition::Failed);
        assert_eq!(case(&[("if-match", "abc")]), Precondition::Proceed);
        assert_eq!(case(&[("if-match", "*")]), Precondition::Proceed);
        assert_eq!(
            case(&[("if-modified-since", &after)]),
            Precondition::NotModified
        );
        assert_eq!(
            case(&[("if-modified-since", &before)]),
            Precondition::Proceed
        );
        assert_eq!(
            case(&[("if-unmodified-since", &before)]),
            Precondition::Failed
        );
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            case(&[("if-none-match", "\"x\""), ("if-modified-since", &after)]),
            Precondition::Proceed
        );
    }
}
