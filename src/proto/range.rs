//! The `Range` request header (a single byte range, RFC 9110 §14).

use std::ops::Range;

/// What a `Range` header asks of an object of known size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// No range, several ranges, or a header we may ignore: the whole object.
    Full,
    /// One satisfiable range (end exclusive).
    Partial(Range<u64>),
    /// The range lies wholly past the end: 416.
    Unsatisfiable,
}

/// Interprets a `Range` header value against an object of `size` bytes.
///
/// Multiple ranges and unknown units are answered with the full object, which
/// RFC 9110 allows; a syntactically broken `bytes=` range is ignored the same
/// way, as S3 does.
pub fn parse(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let parsed = if first.is_empty() {
        // Suffix range: the last N bytes.
        match last.parse::<u64>() {
            Ok(0) => return RangeRequest::Unsatisfiable,
            Ok(n) => Some(size.saturating_sub(n)..size),
            Err(_) => None,
        }
    } else {
        match (first.parse::<u64>(), last) {
            (Ok(start), "") => Some(start..size),
            (Ok(start), last) => match last.parse::<u64>() {
                Ok(end) if end >= start => Some(start..end.saturating_add(1).min(size)),
                _ => None,
            },
            _ => None,
        }
    };
    match parsed {
        None => RangeRequest::Full,
        Some(range) if range.start >= size => RangeRequest::Unsatisfiable,
        Some(range) => RangeRequest::Partial(range),
    }
}

/// The `Content-Range` value of a partial response.
pub fn content_range(range: &Range<u64>, size: u64) -> String {
    format!("bytes {}-{}/{}", range.start, range.end - 1, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(header: &str, size: u64, expected: RangeRequest) {
        assert_eq!(parse(Some(header), size), expected, "{header} of {size}");
    }

    #[test]
    fn single_ranges() {
        check("bytes=0-9", 100, RangeRequest::Partial(0..10));
        check("bytes=90-", 100, RangeRequest::Partial(90..100));
        check("bytes=-5", 100, RangeRequest::Partial(95..100));
        check("bytes=-500", 100, RangeRequest::Partial(0..100));
        check("bytes=50-1000", 100, RangeRequest::Partial(50..100));
        check("bytes=99-99", 100, RangeRequest::Partial(99..100));
    }

    #[test]
    fn unsatisfiable_and_ignored_ranges() {
        check("bytes=100-", 100, RangeRequest::Unsatisfiable);
        check("bytes=200-300", 100, RangeRequest::Unsatisfiable);
        check("bytes=-0", 100, RangeRequest::Unsatisfiable);
        check("bytes=0-", 0, RangeRequest::Unsatisfiable);
        check("bytes=5-1", 100, RangeRequest::Full);
        check("bytes=0-1,5-6", 100, RangeRequest::Full);
        check("items=0-1", 100, RangeRequest::Full);
        check("bytes=x-y", 100, RangeRequest::Full);
        assert_eq!(parse(None, 10), RangeRequest::Full);
    }

    #[test]
    fn content_range_is_inclusive() {
        assert_eq!(content_range(&(0..10), 100), "bytes 0-9/100");
    }
}
