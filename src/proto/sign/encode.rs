//! Percent-encoding and decoding as the signers apply it, and the small
//! hashing helpers every scheme shares.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Whether `byte` is an RFC 3986 unreserved character (`A-Z a-z 0-9 - _ . ~`),
/// the only bytes every signer here leaves unencoded.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~')
}

/// Percent-encodes `input`: unreserved bytes stay, every other byte becomes
/// `%XX` with uppercase hex; `/` stays too when `keep_slash` is set.
///
/// This is what `cos-python-sdk-v5` (`quote(v, '-_.~')`), `botocore` and the
/// AWS SigV4 canonical form all produce.
pub fn uri_encode(input: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    for &byte in input {
        if is_unreserved(byte) || (keep_slash && byte == b'/') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(hex_digit(byte >> 4));
            out.push(hex_digit(byte & 0x0f));
        }
    }
    out
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789ABCDEF"[usize::from(nibble)])
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// How a `+` in the input is read when percent-decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plus {
    /// `+` is a literal plus (URI paths).
    Literal,
    /// `+` is a space (query strings, as the SDKs' form encoding sends them).
    Space,
}

/// Percent-decodes `input` into bytes. A `%` not followed by two hex digits
/// is kept literally.
pub fn percent_decode(input: &[u8], plus: Plus) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let byte = input[i];
        let escaped = match input.get(i + 1..i + 3) {
            Some(&[hi, lo]) if byte == b'%' => hex_value(hi).zip(hex_value(lo)),
            _ => None,
        };
        if let Some((hi, lo)) = escaped {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(if byte == b'+' && plus == Plus::Space {
            b' '
        } else {
            byte
        });
        i += 1;
    }
    out
}

/// A query string split into decoded `(name, value)` pairs in wire order.
/// A name without `=` has an empty value; empty segments are skipped; `+`
/// decodes to a space.
pub fn query_pairs(raw: Option<&str>) -> Vec<(Vec<u8>, Vec<u8>)> {
    raw.unwrap_or("")
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            (
                percent_decode(name.as_bytes(), Plus::Space),
                percent_decode(value.as_bytes(), Plus::Space),
            )
        })
        .collect()
}

/// The value of the first query parameter named exactly `name`, decoded.
pub(crate) fn query_value(pairs: &[(Vec<u8>, Vec<u8>)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(n, _)| n == name.as_bytes())
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
}

/// Lowercase hex of SHA-1 of `data`.
pub(crate) fn sha1_hex(data: &[u8]) -> String {
    hex::encode(Sha1::digest(data))
}

/// Lowercase hex of SHA-256 of `data`.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// HMAC-SHA1 of `data` under `key`.
pub(crate) fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA256 of `data` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Decodes a hex signature of exactly `N` bytes (either case).
pub(crate) fn decode_signature<const N: usize>(text: &str, field: &str) -> Result<[u8; N], String> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out)
        .map_err(|_| format!("{field} must be {} hex digits", N * 2))?;
    Ok(out)
}

/// Constant-time equality of two byte strings.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Collapses runs of spaces and tabs into one space and trims both ends, as
/// the SigV4 canonical header form (`Trimall`) requires.
pub(crate) fn trim_all(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    for word in value
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_the_sdks() {
        assert_eq!(uri_encode(b"a b+c/~_.-", false), "a%20b%2Bc%2F~_.-");
        assert_eq!(uri_encode(b"a b/c", true), "a%20b/c");
        assert_eq!(uri_encode("视频".as_bytes(), false), "%E8%A7%86%E9%A2%91");
    }

    #[test]
    fn decodes_plus_by_context_and_keeps_bad_escapes() {
        assert_eq!(percent_decode(b"a+b%20c%zz%4", Plus::Space), b"a b c%zz%4");
        assert_eq!(percent_decode(b"a+b%2b", Plus::Literal), b"a+b+");
    }

    #[test]
    fn splits_queries_into_decoded_pairs() {
        let pairs = query_pairs(Some("uploads&a=1%3B2&&b=x+y"));
        assert_eq!(
            pairs,
            vec![
                (b"uploads".to_vec(), Vec::new()),
                (b"a".to_vec(), b"1;2".to_vec()),
                (b"b".to_vec(), b"x y".to_vec()),
            ]
        );
    }

    #[test]
    fn trims_and_collapses_whitespace() {
        assert_eq!(trim_all(b"  a \t  b  "), b"a b");
    }
}
