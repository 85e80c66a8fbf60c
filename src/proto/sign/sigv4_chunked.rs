//! An incremental decoder for `Content-Encoding: aws-chunked` bodies, as S3
//! clients send them with `x-amz-content-sha256` set to
//! `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` (each chunk signed, the chain seeded
//! by the request signature), `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`
//! (the same plus a signed trailer) or `STREAMING-UNSIGNED-PAYLOAD-TRAILER`
//! (plain chunks, then a trailer carrying a checksum).
//!
//! Framing: `hex-size[;chunk-signature=sig]\r\n data \r\n` ... then a
//! zero-size chunk, optional `name:value\r\n` trailers and `\r\n`.
//!
//! The decoder is sans-I/O: feed it bytes with [`ChunkedDecoder::push`], get
//! back the data of every chunk whose signature verified (a signed chunk is
//! held back until its last byte arrived and checked), and call
//! [`ChunkedDecoder::finish`] at the end of the body.

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::encode::{ct_eq, decode_signature, hmac_sha256, sha256_hex};
use super::SignError;

/// SHA-256 of the empty string, part of every chunk's string to sign.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// The longest chunk header or trailer line accepted, CRLF included.
const MAX_LINE: usize = 4096;
/// The most trailer bytes accepted in all.
const MAX_TRAILERS: usize = 16 * 1024;
/// The default bound on one chunk's size (signed chunks are buffered).
pub const DEFAULT_MAX_CHUNK: u64 = 16 * 1024 * 1024;

/// Trailer fields of an `aws-chunked` body: lowercase names, trimmed values.
pub type Trailers = Vec<(String, String)>;

/// Which `aws-chunked` variant the request declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkedMode {
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: every chunk signed.
    Signed,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: chunks and trailer signed.
    SignedWithTrailer,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: no chunk signatures; the
    /// trailer's checksum is for the caller to check.
    UnsignedWithTrailer,
}

/// A derived SigV4 signing key (secret): redacted in `Debug`, compared in
/// constant time.
#[derive(Clone)]
pub struct SigningKey(pub(crate) [u8; 32]);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl PartialEq for SigningKey {
    fn eq(&self, other: &Self) -> bool {
        ct_eq(&self.0, &other.0)
    }
}

impl Eq for SigningKey {}

/// What the verified request signature hands to the body decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedContext {
    /// The declared variant.
    pub mode: ChunkedMode,
    /// The request's own signature, which seeds the chunk chain.
    pub seed_signature: [u8; 32],
    /// The key the request was signed with.
    pub signing_key: SigningKey,
    /// The credential scope, `date/region/service/aws4_request`.
    pub scope: String,
    /// The request timestamp, `yyyymmddThhmmssZ`.
    pub timestamp: String,
}

/// Where the decoder is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a chunk header line.
    Header,
    /// Reading chunk data.
    Data,
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the zero-size chunk: trailer lines up to an empty line.
    Trailers,
    /// The body is complete.
    Done,
}

/// The incremental `aws-chunked` decoder.
#[derive(Debug)]
pub struct ChunkedDecoder {
    ctx: ChunkedContext,
    previous: [u8; 32],
    state: State,
    line: Vec<u8>,
    chunk: Vec<u8>,
    hasher: Sha256,
    remaining: u64,
    chunk_size: u64,
    declared: Option<[u8; 32]>,
    trailers: Trailers,
    trailer_bytes: usize,
    decoded_len: u64,
    max_chunk: u64,
}

impl ChunkedDecoder {
    /// A decoder for a body of a request verified with `ctx`.
    pub fn new(ctx: ChunkedContext) -> Self {
        Self {
            previous: ctx.seed_signature,
            ctx,
            state: State::Header,
            line: Vec::new(),
            chunk: Vec::new(),
            hasher: Sha256::new(),
            remaining: 0,
            chunk_size: 0,
            declared: None,
            trailers: Vec::new(),
            trailer_bytes: 0,
            decoded_len: 0,
            max_chunk: DEFAULT_MAX_CHUNK,
        }
    }

    /// Bounds the size of one chunk (default [`DEFAULT_MAX_CHUNK`]); a signed
    /// chunk is buffered whole until its signature is checked.
    pub fn with_max_chunk(mut self, max_chunk: u64) -> Self {
        self.max_chunk = max_chunk;
        self
    }

    /// The number of data bytes released so far (compare with
    /// `x-amz-decoded-content-length` at the end).
    pub fn decoded_len(&self) -> u64 {
        self.decoded_len
    }

    /// Feeds the next bytes of the body; returns the data now released.
    /// After an error the decoder must not be used again.
    pub fn push(&mut self, mut input: &[u8]) -> Result<Vec<Bytes>, SignError> {
        let mut out = Vec::new();
        while !input.is_empty() {
            match self.state {
                State::Header => {
                    if let Some(line) = self.take_line(&mut input)? {
                        self.start_chunk(&line)?;
                    }
                }
                State::Data => self.take_data(&mut input, &mut out)?,
                State::DataEnd => self.take_data_end(&mut input)?,
                State::Trailers => {
                    if let Some(line) = self.take_line(&mut input)? {
                        self.take_trailer(&line)?;
                    }
                }
                State::Done => return Err(invalid("data after the final chunk")),
            }
        }
        Ok(out)
    }

    /// Ends the body: succeeds with the trailers (names lowercased, values
    /// trimmed) only if the final chunk (and trailer) arrived and verified.
    pub fn finish(self) -> Result<Trailers, SignError> {
        let lenient_end = self.state == State::Trailers
            && self.line.is_empty()
            && self.trailers.is_empty()
            && self.ctx.mode == ChunkedMode::Signed;
        if self.state == State::Done || lenient_end {
            Ok(self.trailers)
        } else {
            Err(SignError::IncompleteBody)
        }
    }

    /// Accumulates a CRLF-terminated line; returns it (without CRLF) once whole.
    fn take_line(&mut self, input: &mut &[u8]) -> Result<Option<Vec<u8>>, SignError> {
        let newline = input.iter().position(|&b| b == b'\n');
        let take = newline.map_or(input.len(), |i| i + 1);
        if self.line.len() + take > MAX_LINE {
            return Err(invalid("a chunk header or trailer line is too long"));
        }
        self.line.extend_from_slice(&input[..take]);
        *input = &input[take..];
        if newline.is_none() {
            return Ok(None);
        }
        let mut line = std::mem::take(&mut self.line);
        if !line.ends_with(b"\r\n") {
            return Err(invalid("a line does not end in CRLF"));
        }
        line.truncate(line.len() - 2);
        Ok(Some(line))
    }

    /// Parses `hex-size[;chunk-signature=sig]` and starts that chunk.
    fn start_chunk(&mut self, line: &[u8]) -> Result<(), SignError> {
        let text = std::str::from_utf8(line).map_err(|_| invalid("chunk header is not ASCII"))?;
        let mut parts = text.split(';');
        let size_text = parts.next().unwrap_or("").trim();
        if size_text.is_empty()
            || size_text.len() > 16
            || !size_text.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(invalid("bad chunk size"));
        }
        let size = u64::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
        if size > self.max_chunk {
            return Err(invalid("chunk larger than allowed"));
        }
        self.declared = parts
            .filter_map(|ext| ext.trim().strip_prefix("chunk-signature="))
            .map(|sig| decode_signature::<32>(sig, "chunk-signature").map_err(invalid))
            .next()
            .transpose()?;
        if self.declared.is_none() && self.ctx.mode != ChunkedMode::UnsignedWithTrailer {
            return Err(invalid("chunk-signature is missing"));
        }
        self.remaining = size;
        self.chunk_size = size;
        self.state = State::Data;
        if size == 0 {
            self.end_chunk(&mut Vec::new())?;
        }
        Ok(())
    }

    /// Consumes chunk data; unsigned data is released at once.
    fn take_data(&mut self, input: &mut &[u8], out: &mut Vec<Bytes>) -> Result<(), SignError> {
        let take = usize::try_from(self.remaining).map_or(input.len(), |r| r.min(input.len()));
        let (data, rest) = input.split_at(take);
        *input = rest;
        self.remaining -= take as u64;
        if self.ctx.mode == ChunkedMode::UnsignedWithTrailer {
            self.decoded_len += take as u64;
            out.push(Bytes::copy_from_slice(data));
        } else {
            self.hasher.update(data);
            self.chunk.extend_from_slice(data);
        }
        if self.remaining == 0 {
            self.end_chunk(out)?;
        }
        Ok(())
    }

    /// The chunk's data is complete: verify it and release it.
    fn end_chunk(&mut self, out: &mut Vec<Bytes>) -> Result<(), SignError> {
        if self.ctx.mode != ChunkedMode::UnsignedWithTrailer {
            let hash = hex::encode(std::mem::take(&mut self.hasher).finalize());
            self.check_chained(
                "AWS4-HMAC-SHA256-PAYLOAD",
                &format!("{EMPTY_SHA256}\n{hash}"),
            )?;
            let data = std::mem::take(&mut self.chunk);
            if !data.is_empty() {
                self.decoded_len += data.len() as u64;
                out.push(Bytes::from(data));
            }
        }
        self.state = if self.chunk_size == 0 {
            State::Trailers
        } else {
            State::DataEnd
        };
        Ok(())
    }

    /// Expects the CRLF that closes chunk data.
    fn take_data_end(&mut self, input: &mut &[u8]) -> Result<(), SignError> {
        let need = 2 - self.line.len();
        let take = need.min(input.len());
        self.line.extend_from_slice(&input[..take]);
        *input = &input[take..];
        if self.line.len() == 2 {
            if self.line != b"\r\n" {
                return Err(invalid("chunk data is not followed by CRLF"));
            }
            self.line.clear();
            self.state = State::Header;
        }
        Ok(())
    }

    /// A trailer line, or the empty line that ends the body.
    fn take_trailer(&mut self, line: &[u8]) -> Result<(), SignError> {
        if line.is_empty() {
            return self.end_trailers();
        }
        self.trailer_bytes += line.len();
        if self.trailer_bytes > MAX_TRAILERS {
            return Err(invalid("trailers too large"));
        }
        let text = std::str::from_utf8(line).map_err(|_| invalid("trailer is not UTF-8"))?;
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| invalid("trailer is not name:value"))?;
        self.trailers
            .push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        Ok(())
    }

    /// Checks the trailer signature (signed-trailer mode) and ends the body.
    fn end_trailers(&mut self) -> Result<(), SignError> {
        let signature_at = self
            .trailers
            .iter()
            .position(|(name, _)| name == "x-amz-trailer-signature");
        match (self.ctx.mode, signature_at) {
            (ChunkedMode::SignedWithTrailer, Some(at)) => {
                let (_, signature) = self.trailers.remove(at);
                self.declared =
                    Some(decode_signature(&signature, "x-amz-trailer-signature").map_err(invalid)?);
                let canonical: String = self
                    .trailers
                    .iter()
                    .map(|(name, value)| format!("{name}:{value}\n"))
                    .collect();
                self.check_chained(
                    "AWS4-HMAC-SHA256-TRAILER",
                    &sha256_hex(canonical.as_bytes()),
                )?;
            }
            (ChunkedMode::SignedWithTrailer, None) => {
                return Err(invalid("x-amz-trailer-signature is missing"))
            }
            (ChunkedMode::Signed, _) if !self.trailers.is_empty() => {
                return Err(invalid("trailers are not declared for this payload"))
            }
            _ => {}
        }
        self.state = State::Done;
        Ok(())
    }

    /// Checks the declared signature over `kind`, the timestamp, the scope,
    /// the previous signature and `tail`, and advances the chain.
    fn check_chained(&mut self, kind: &str, tail: &str) -> Result<(), SignError> {
        let text = format!(
            "{kind}\n{}\n{}\n{}\n{tail}",
            self.ctx.timestamp,
            self.ctx.scope,
            hex::encode(self.previous)
        );
        let expected = hmac_sha256(&self.ctx.signing_key.0, text.as_bytes());
        let declared = self
            .declared
            .take()
            .ok_or(SignError::SignatureDoesNotMatch)?;
        if !ct_eq(&expected, &declared) {
            return Err(SignError::SignatureDoesNotMatch);
        }
        self.previous = expected;
        Ok(())
    }
}

fn invalid(message: impl Into<String>) -> SignError {
    SignError::InvalidChunk(message.into())
}
