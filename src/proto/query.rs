//! Query strings: percent-decoded name/value pairs in wire order.

use super::sign::{percent_decode, Plus};
use super::ProtoError;

/// A parsed query string. Names are kept as sent; lookups are exact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses a raw query (`a=1&b&c=x%20y`). `+` means a space (the COS
    /// SDK form-encodes queries; S3 SDKs send a literal plus as `%2B`),
    /// exactly as the signature layer reads it.
    pub fn parse(raw: Option<&str>) -> Result<Self, ProtoError> {
        let mut pairs = Vec::new();
        for part in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            pairs.push((decode(name)?, decode(value)?));
        }
        Ok(Self { pairs })
    }

    /// The first value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `name` is present (with or without a value).
    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n == name)
    }

    /// All pairs in wire order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Parses `name` as an integer in `min..=max`, if present.
    pub fn int_in(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>, ProtoError> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        match text.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(ProtoError::InvalidArgument(format!(
                "Parameter {name} must be an integer from {min} to {max}, got {text:?}."
            ))),
        }
    }
}

fn decode(text: &str) -> Result<String, ProtoError> {
    String::from_utf8(percent_decode(text.as_bytes(), Plus::Space)).map_err(|_| {
        ProtoError::InvalidArgument("The query string is not valid percent-encoded UTF-8.".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes_and_plus_as_space() {
        let q = Query::parse(Some("prefix=a%20b+c%2Bd&uploads&max-keys=5")).unwrap();
        assert_eq!(q.get("prefix"), Some("a b c+d"));
        assert!(q.has("uploads"));
        assert_eq!(q.get("uploads"), Some(""));
        assert_eq!(q.int_in("max-keys", 0, 1000).unwrap(), Some(5));
        assert!(q.int_in("prefix", 0, 10).is_err());
    }

    #[test]
    fn invalid_utf8_is_rejected() {
        assert!(Query::parse(Some("a=%FF")).is_err());
    }
}
