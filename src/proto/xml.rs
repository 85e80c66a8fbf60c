//! XML documents of the COS/S3 API: a small writer for responses and the
//! parser of the one request document we accept (`CompleteMultipartUpload`).

use std::borrow::Cow;

use quick_xml::escape::partial_escape;
use serde::Deserialize;

use super::ProtoError;

/// Builds an XML document with the standard declaration.
#[derive(Debug)]
pub struct XmlWriter {
    out: String,
    open: Vec<Cow<'static, str>>,
}

impl XmlWriter {
    /// A new document whose root element is `root`.
    pub fn new(root: impl Into<Cow<'static, str>>) -> Self {
        let mut writer = Self {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
            open: Vec::new(),
        };
        writer.open(root);
        writer
    }

    /// Opens a child element.
    pub fn open(&mut self, tag: impl Into<Cow<'static, str>>) -> &mut Self {
        let tag = tag.into();
        self.out.push('<');
        self.out.push_str(&tag);
        self.out.push('>');
        self.open.push(tag);
        self
    }

    /// Closes the innermost open element.
    pub fn close(&mut self) -> &mut Self {
        if let Some(tag) = self.open.pop() {
            self.out.push_str("</");
            self.out.push_str(&tag);
            self.out.push('>');
        }
        self
    }

    /// Writes `<tag>text</tag>` with `text` escaped.
    pub fn text(&mut self, tag: &str, text: impl AsRef<str>) -> &mut Self {
        self.out.push('<');
        self.out.push_str(tag);
        self.out.push('>');
        self.out.push_str(&partial_escape(text.as_ref()));
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    /// Closes every open element and returns the document.
    pub fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.close();
        }
        self.out
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename = "Delete")]
struct DeleteDoc {
    #[serde(rename = "Quiet", default)]
    quiet: bool,
    #[serde(rename = "Object", default)]
    objects: Vec<DeleteObjectDoc>,
}

#[derive(Debug, Deserialize)]
struct DeleteObjectDoc {
    #[serde(rename = "Key")]
    key: String,
}

/// A multi-object delete request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteRequest {
    /// Report only failures.
    pub quiet: bool,
    /// The keys, 1..=1000.
    pub keys: Vec<String>,
}

/// Parses a `Delete` document (`POST /?delete`).
pub fn parse_delete(body: &[u8]) -> Result<DeleteRequest, ProtoError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ProtoError::MalformedXml("the body is not UTF-8".into()))?;
    let doc: DeleteDoc =
        quick_xml::de::from_str(text).map_err(|e| ProtoError::MalformedXml(e.to_string()))?;
    if doc.objects.is_empty() || doc.objects.len() > 1000 {
        return Err(ProtoError::MalformedXml(
            "a Delete request names 1 to 1000 objects".into(),
        ));
    }
    Ok(DeleteRequest {
        quiet: doc.quiet,
        keys: doc.objects.into_iter().map(|o| o.key).collect(),
    })
}

/// The body of `CompleteMultipartUpload`.
#[derive(Debug, Deserialize)]
#[serde(rename = "CompleteMultipartUpload")]
struct CompleteDoc {
    #[serde(rename = "Part", default)]
    parts: Vec<CompletePartDoc>,
}

#[derive(Debug, Deserialize)]
struct CompletePartDoc {
    #[serde(rename = "PartNumber")]
    part_number: u32,
    #[serde(rename = "ETag")]
    etag: String,
}

/// One part named in a `CompleteMultipartUpload` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletePart {
    /// 1..=10000.
    pub part_number: u32,
    /// The part's ETag as the client sent it, quotes removed.
    pub etag: String,
}

/// Parses a `CompleteMultipartUpload` document.
pub fn parse_complete_multipart(body: &[u8]) -> Result<Vec<CompletePart>, ProtoError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ProtoError::MalformedXml("the body is not UTF-8".into()))?;
    let doc: CompleteDoc =
        quick_xml::de::from_str(text).map_err(|e| ProtoError::MalformedXml(e.to_string()))?;
    if doc.parts.is_empty() {
        return Err(ProtoError::MalformedXml("no Part elements".into()));
    }
    Ok(doc
        .parts
        .into_iter()
        .map(|p| CompletePart {
            part_number: p.part_number,
            etag: p.etag.trim().trim_matches('"').to_owned(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_escapes_text_and_closes_elements() {
        let mut w = XmlWriter::new("Error");
        w.text("Code", "NoSuchKey").text("Key", "a<b>&\"c\"");
        w.open("Inner").text("X", "1");
        let doc = w.finish();
        assert!(doc.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>"));
        assert!(doc.contains("<Key>a&lt;b&gt;&amp;\"c\"</Key>"), "{doc}");
        assert!(doc.ends_with("<Inner><X>1</X></Inner></Error>"), "{doc}");
    }

    #[test]
    fn delete_documents() {
        let body = b"<Delete><Quiet>true</Quiet><Object><Key>a</Key></Object><Object><Key>b/c</Key><VersionId>x</VersionId></Object></Delete>";
        let request = parse_delete(body).unwrap();
        assert!(request.quiet);
        assert_eq!(request.keys, ["a", "b/c"]);
        assert!(parse_delete(b"<Delete></Delete>").is_err());
    }

    #[test]
    fn complete_multipart_documents() {
        let body = br#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
            <Part><ETag>"aa"</ETag><PartNumber>1</PartNumber></Part>
            <Part><PartNumber>2</PartNumber><ETag>bb</ETag></Part>
        </CompleteMultipartUpload>"#;
        let parts = parse_complete_multipart(body).unwrap();
        assert_eq!(
            parts,
            vec![
                CompletePart {
                    part_number: 1,
                    etag: "aa".into()
                },
                CompletePart {
                    part_number: 2,
                    etag: "bb".into()
                },
            ]
        );
        assert!(parse_complete_multipart(b"<CompleteMultipartUpload/>").is_err());
        assert!(parse_complete_multipart(b"<nope").is_err());
        assert!(parse_complete_multipart(b"\xff").is_err());
    }
}
