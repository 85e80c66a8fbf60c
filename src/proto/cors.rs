//! Cross-origin resource sharing: bucket rules (from the configuration or
//! the `?cors` API), matching a request against them, the headers a match
//! adds, and the `CORSConfiguration` XML document.

use serde::{Deserialize, Serialize};

use super::xml::XmlWriter;
use super::ProtoError;

/// One rule: which origins may use which methods and headers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsRule {
    /// An id for the rule (optional).
    #[serde(default)]
    pub id: String,
    /// Origins, with `*` wildcards (`*`, `https://*.example.com`).
    pub allowed_origins: Vec<String>,
    /// `GET`, `PUT`, `POST`, `DELETE`, `HEAD`.
    pub allowed_methods: Vec<String>,
    /// Request headers a preflight may ask for, with `*` wildcards.
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    /// Response headers scripts may read.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// How long browsers may cache a preflight answer.
    #[serde(default)]
    pub max_age_secs: Option<u64>,
}

/// The most rules one bucket may have (S3's limit).
pub const MAX_RULES: usize = 100;

/// `*` matches any run of characters; the rest case-insensitively.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.to_ascii_lowercase(), text.to_ascii_lowercase());
    match p.split_once('*') {
        None => p == t,
        Some((head, tail)) => {
            t.len() >= head.len() + tail.len() && t.starts_with(head) && t.ends_with(tail)
        }
    }
}

impl CorsRule {
    fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| wildcard(o, origin))
    }

    fn allows_method(&self, method: &str) -> bool {
        self.allowed_methods
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method))
    }

    fn allows_header(&self, header: &str) -> bool {
        self.allowed_headers.iter().any(|h| wildcard(h, header))
    }

    /// The `Access-Control-Allow-Origin` value for `origin`.
    pub fn allow_origin_value(&self, origin: &str) -> String {
        if self.allowed_origins.iter().any(|o| o == "*") {
            "*".to_owned()
        } else {
            origin.to_owned()
        }
    }
}

/// The first rule that allows `origin` to use `method` with
/// `request_headers` (a preflight's `Access-Control-Request-Headers`).
pub fn find<'r>(
    rules: &'r [CorsRule],
    origin: &str,
    method: &str,
    request_headers: &[&str],
) -> Option<&'r CorsRule> {
    rules.iter().find(|r| {
        r.allows_origin(origin)
            && r.allows_method(method)
            && request_headers.iter().all(|h| r.allows_header(h))
    })
}

/// Checks rules (from a document or the configuration).
pub fn validate(rules: &[CorsRule]) -> Result<(), ProtoError> {
    if rules.is_empty() || rules.len() > MAX_RULES {
        return Err(ProtoError::MalformedXml(format!(
            "a CORS configuration has 1 to {MAX_RULES} rules"
        )));
    }
    for rule in rules {
        if rule.allowed_origins.is_empty() || rule.allowed_methods.is_empty() {
            return Err(ProtoError::MalformedXml(
                "each CORSRule needs an AllowedOrigin and an AllowedMethod".into(),
            ));
        }
        for method in &rule.allowed_methods {
            if !["GET", "PUT", "POST", "DELETE", "HEAD"].contains(&method.as_str()) {
                return Err(ProtoError::InvalidArgument(format!(
                    "AllowedMethod {method:?} is not GET, PUT, POST, DELETE or HEAD"
                )));
            }
        }
        if rule
            .allowed_origins
            .iter()
            .any(|o| o.matches('*').count() > 1)
        {
            return Err(ProtoError::InvalidArgument(
                "an AllowedOrigin may contain one '*' at most".into(),
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(rename = "CORSConfiguration")]
struct ConfigurationDoc {
    #[serde(rename = "CORSRule", default)]
    rules: Vec<RuleDoc>,
}

#[derive(Debug, Deserialize)]
struct RuleDoc {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(rename = "AllowedOrigin", default)]
    origins: Vec<String>,
    #[serde(rename = "AllowedMethod", default)]
    methods: Vec<String>,
    #[serde(rename = "AllowedHeader", default)]
    headers: Vec<String>,
    #[serde(rename = "ExposeHeader", default)]
    expose: Vec<String>,
    #[serde(rename = "MaxAgeSeconds", default)]
    max_age: Option<u64>,
}

/// Parses and checks a `PUT ?cors` document.
pub fn parse(body: &[u8]) -> Result<Vec<CorsRule>, ProtoError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ProtoError::MalformedXml("the body is not UTF-8".into()))?;
    let doc: ConfigurationDoc =
        quick_xml::de::from_str(text).map_err(|e| ProtoError::MalformedXml(e.to_string()))?;
    let rules: Vec<CorsRule> = doc
        .rules
        .into_iter()
        .map(|r| CorsRule {
            id: r.id,
            allowed_origins: r.origins.into_iter().map(|s| s.trim().to_owned()).collect(),
            allowed_methods: r.methods.into_iter().map(|s| s.trim().to_owned()).collect(),
            allowed_headers: r.headers.into_iter().map(|s| s.trim().to_owned()).collect(),
            expose_headers: r.expose.into_iter().map(|s| s.trim().to_owned()).collect(),
            max_age_secs: r.max_age,
        })
        .collect();
    validate(&rules)?;
    Ok(rules)
}

/// The `GET ?cors` document.
pub fn render(rules: &[CorsRule]) -> String {
    let mut doc = XmlWriter::new("CORSConfiguration");
    for rule in rules {
        doc.open("CORSRule");
        if !rule.id.is_empty() {
            doc.text("ID", &rule.id);
        }
        for o in &rule.allowed_origins {
            doc.text("AllowedOrigin", o);
        }
        for m in &rule.allowed_methods {
            doc.text("AllowedMethod", m);
        }
        for h in &rule.allowed_headers {
            doc.text("AllowedHeader", h);
        }
        for h in &rule.expose_headers {
            doc.text("ExposeHeader", h);
        }
        if let Some(age) = rule.max_age_secs {
            doc.text("MaxAgeSeconds", age.to_string());
        }
        doc.close();
    }
    doc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> CorsRule {
        CorsRule {
            allowed_origins: vec![
                "https://*.example.com".into(),
                "http://127.0.0.1:8080".into(),
            ],
            allowed_methods: vec!["GET".into(), "HEAD".into()],
            allowed_headers: vec!["x-cos-*".into(), "range".into()],
            ..CorsRule::default()
        }
    }

    #[test]
    fn matching_needs_origin_method_and_every_header() {
        let rules = [rule()];
        assert!(find(&rules, "https://www.example.com", "GET", &[]).is_some());
        assert!(find(&rules, "http://127.0.0.1:8080", "HEAD", &["Range"]).is_some());
        assert!(find(&rules, "https://example.org", "GET", &[]).is_none());
        assert!(find(&rules, "https://www.example.com", "PUT", &[]).is_none());
        assert!(find(
            &rules,
            "https://a.example.com",
            "GET",
            &["x-cos-meta-a", "authorization"]
        )
        .is_none());
        assert_eq!(
            rules[0].allow_origin_value("https://a.example.com"),
            "https://a.example.com"
        );
    }

    #[test]
    fn documents_round_trip_and_bad_ones_are_refused() {
        let xml = br#"<CORSConfiguration><CORSRule><ID>r1</ID><AllowedOrigin>*</AllowedOrigin>
            <AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>
            <AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>
            <MaxAgeSeconds>600</MaxAgeSeconds></CORSRule></CORSConfiguration>"#;
        let rules = parse(xml).unwrap();
        assert_eq!(rules[0].allowed_methods, ["GET", "PUT"]);
        assert_eq!(rules[0].max_age_secs, Some(600));
        assert_eq!(parse(render(&rules).as_bytes()).unwrap(), rules);
        assert!(parse(b"<CORSConfiguration></CORSConfiguration>").is_err());
        assert!(parse(b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>").is_err());
        assert!(parse(b"not xml").is_err());
    }
}
