//! Property tests: arbitrary input into every protocol parser never panics,
//! and what the parsers accept keeps their documented invariants.

use framegate::proto::conditional;
use framegate::proto::query::Query;
use framegate::proto::range::{self, RangeRequest};
use framegate::proto::route::{route, validate_key, Addressing};
use framegate::proto::snapshot;
use framegate::proto::xml::{parse_complete_multipart, parse_delete};
use framegate::storage::{key_to_path, path_to_key};
use http::{HeaderMap, Method};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn ranges_stay_inside_the_object(header in "\\PC{0,40}", size in 0u64..10_000) {
        match range::parse(Some(&header), size) {
            RangeRequest::Partial(r) => prop_assert!(r.start < r.end && r.end <= size),
            RangeRequest::Full | RangeRequest::Unsatisfiable => {}
        }
    }

    #[test]
    fn byte_ranges_follow_the_rfc(start in 0u64..2000, len in 0u64..2000, size in 1u64..1500) {
        let end = start + len;
        let got = range::parse(Some(&format!("bytes={start}-{end}")), size);
        if start >= size {
            prop_assert_eq!(got, RangeRequest::Unsatisfiable);
        } else {
            prop_assert_eq!(got, RangeRequest::Partial(start..(end + 1).min(size)));
        }
    }

    #[test]
    fn queries_and_snapshot_parameters_never_panic(raw in "[a-z=&%+0-9.\\-]{0,60}") {
        if let Ok(query) = Query::parse(Some(&raw)) {
            let _ = snapshot::parse(&query);
        }
    }

    #[test]
    fn routing_never_panics(
        method in prop::sample::select(vec!["GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS", "PATCH"]),
        host in "[a-z0-9.:\\-]{0,40}",
        path in "/[\\PC]{0,60}",
        query in "[\\PC]{0,60}",
        amz in any::<bool>(),
    ) {
        let buckets = vec!["demo-125".to_owned()];
        let addressing = Addressing { domain: "myqcloud.com", default_bucket: "demo-125", buckets: &buckets };
        let mut headers = HeaderMap::new();
        if amz {
            headers.insert("x-amz-date", "20260101T000000Z".parse().unwrap());
        }
        let method: Method = method.parse().unwrap();
        if let Ok(routed) = route(addressing, &method, Some(&host), &path, Some(&query), &headers) {
            if let Some(key) = &routed.key {
                prop_assert!(validate_key(key).is_ok());
            }
        }
    }

    #[test]
    fn every_valid_key_maps_to_one_path_and_back(key in "[\\PC]{1,80}") {
        if validate_key(&key).is_ok() {
            let path = key_to_path(&key);
            prop_assert_eq!(path_to_key(&path), key);
            prop_assert!(!path.as_ref().split('/').any(|s| s == ".." || s == "." || s.is_empty()));
        }
    }

    #[test]
    fn xml_documents_never_panic(body in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_complete_multipart(&body);
        let _ = parse_delete(&body);
    }

    #[test]
    fn conditional_headers_never_panic(value in "[\\PC]{0,60}") {
        let mut headers = HeaderMap::new();
        if let Ok(v) = value.parse() {
            headers.insert("if-none-match", v);
        }
        if let Ok(v) = value.parse() {
            headers.insert("if-modified-since", v);
        }
        let _ = conditional::evaluate(&headers, "\"x\"", std::time::SystemTime::now());
    }
}
