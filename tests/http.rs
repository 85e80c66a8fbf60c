//! The real server on an ephemeral loopback port, driven with raw HTTP for
//! the edge cases SDKs never send.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use framegate::config::{Config, Overrides};
use framegate::ops::AppState;

/// A running gateway; stops when dropped.
struct Gateway {
    addr: SocketAddr,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Gateway {
    fn start(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let toml = format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\ndefault_bucket = \"open-125\"\n{extra}\n\
             [[buckets]]\nname = \"open-125\"\nacl = \"public-read-write\"\n\
             [[buckets]]\nname = \"private-125\"\n",
            dir.path().display().to_string()
        );
        let config = Config::from_toml(&toml, Overrides::default()).unwrap();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let state = Arc::new(AppState::new(config).await.unwrap());
                let listener = tokio::net::TcpListener::bind(state.config.listen)
                    .await
                    .unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                framegate::server::run(listener, state, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
        });
        let addr = addr_rx.recv().unwrap();
        Self {
            addr,
            _dir: dir,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    }

    /// Sends `head` (request line + headers, without the final CRLF) and
    /// `body` on a fresh connection and reads the whole response.
    fn send(&self, head: &str, body: &[u8]) -> Reply {
        let mut stream = self.connect();
        let mut request = format!("{head}\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        if !body.is_empty() {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        Reply::parse(&raw)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn parse(raw: &[u8]) -> Self {
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Self {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn code(&self) -> &str {
        let start = self.body.find("<Code>").map(|i| i + 6).unwrap_or(0);
        let end = self.body.find("</Code>").unwrap_or(0);
        &self.body[start..end.max(start)]
    }
}

#[test]
fn errors_are_cos_xml_with_the_request_id() {
    let gw = Gateway::start("");
    let reply = gw.send("GET /missing.mp4 HTTP/1.1", b"");
    assert_eq!(reply.status, 404);
    assert_eq!(reply.code(), "NoSuchKey");
    let id = reply.header("x-cos-request-id").expect("request id header");
    assert!(
        reply.body.contains(&format!("<RequestId>{id}</RequestId>")),
        "{}",
        reply.body
    );
    assert!(reply.header("server").unwrap().starts_with("framegate/"));
    assert!(reply.header("date").is_some());
    let again = gw.send("GET /missing.mp4 HTTP/1.1", b"");
    assert_ne!(
        again.header("x-cos-request-id"),
        Some(id),
        "request ids are unique"
    );
}

#[test]
fn unknown_bucket_is_no_such_bucket() {
    let gw = Gateway::start("");
    let mut stream = gw.connect();
    stream
        .write_all(b"GET /k HTTP/1.1\r\nHost: nope-1.cos.ap-guangzhou.myqcloud.com\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let reply = Reply::parse(&raw);
    assert_eq!((reply.status, reply.code()), (404, "NoSuchBucket"));
}

#[test]
fn keys_that_escape_the_bucket_are_refused() {
    let gw = Gateway::start("");
    for path in [
        "/a/../../etc/passwd",
        "/a/%2e%2e/b",
        "/./x",
        "/a//b",
        "/x%00y",
    ] {
        let reply = gw.send(&format!("PUT {path} HTTP/1.1"), b"data");
        assert_eq!(
            (reply.status, reply.code()),
            (400, "InvalidArgument"),
            "{path}"
        );
    }
}

#[test]
fn ranges_conditionals_and_digests() {
    let gw = Gateway::start("");
    let put = gw.send("PUT /v/clip.bin HTTP/1.1", b"0123456789");
    assert_eq!(put.status, 200);
    let etag = put.header("etag").unwrap().to_owned();
    assert_eq!(etag, "\"781e5e245d69b566979b86e28d23f2c7\"");

    let part = gw.send("GET /v/clip.bin HTTP/1.1\r\nRange: bytes=2-4", b"");
    assert_eq!((part.status, part.body.as_str()), (206, "234"));
    assert_eq!(part.header("content-range"), Some("bytes 2-4/10"));
    let suffix = gw.send("GET /v/clip.bin HTTP/1.1\r\nRange: bytes=-3", b"");
    assert_eq!((suffix.status, suffix.body.as_str()), (206, "789"));
    let bad = gw.send("GET /v/clip.bin HTTP/1.1\r\nRange: bytes=10-20", b"");
    assert_eq!((bad.status, bad.code()), (416, "InvalidRange"));
    let ignored = gw.send("GET /v/clip.bin HTTP/1.1\r\nRange: bytes=0-1,3-4", b"");
    assert_eq!((ignored.status, ignored.body.len()), (200, 10));

    let cached = gw.send(
        &format!("GET /v/clip.bin HTTP/1.1\r\nIf-None-Match: {etag}"),
        b"",
    );
    assert_eq!((cached.status, cached.body.as_str()), (304, ""));
    let failed = gw.send("GET /v/clip.bin HTTP/1.1\r\nIf-Match: \"other\"", b"");
    assert_eq!((failed.status, failed.code()), (412, "PreconditionFailed"));

    // A wrong Content-MD5 is refused and the old object stays.
    let wrong = gw.send(
        "PUT /v/clip.bin HTTP/1.1\r\nContent-MD5: 1B2M2Y8AsgTpgAmY7PhCfg==",
        b"other bytes",
    );
    assert_eq!((wrong.status, wrong.code()), (400, "BadDigest"));
    let still = gw.send("GET /v/clip.bin HTTP/1.1", b"");
    assert_eq!(still.body, "0123456789");
    let malformed = gw.send("PUT /v/clip.bin HTTP/1.1\r\nContent-MD5: nope", b"x");
    assert_eq!((malformed.status, malformed.code()), (400, "InvalidDigest"));

    let overrides = gw.send(
        "GET /v/clip.bin?response-content-type=text/plain&response-content-disposition=attachment HTTP/1.1",
        b"",
    );
    assert_eq!(overrides.header("content-type"), Some("text/plain"));
    assert_eq!(overrides.header("content-disposition"), Some("attachment"));

    assert_eq!(gw.send("DELETE /v/clip.bin HTTP/1.1", b"").status, 204);
    assert_eq!(gw.send("DELETE /v/clip.bin HTTP/1.1", b"").status, 204);
    assert_eq!(gw.send("GET /v/clip.bin HTTP/1.1", b"").status, 404);
}

#[test]
fn oversized_bodies_and_headers_are_refused() {
    let gw = Gateway::start("[limits]\nmax_object_bytes = 16\nmax_header_bytes = 8192");
    let big = gw.send("PUT /big HTTP/1.1", &[b'x'; 17]);
    assert_eq!((big.status, big.code()), (400, "EntityTooLarge"));
    assert_eq!(gw.send("GET /big HTTP/1.1", b"").status, 404);
    let header = format!("GET /k HTTP/1.1\r\nX-Long: {}", "a".repeat(20_000));
    let reply = gw.send(&header, b"");
    assert_eq!(reply.status, 431, "{reply:?}");
}

#[test]
fn private_buckets_refuse_anonymous_requests() {
    let gw = Gateway::start("");
    let reply = gw.send("GET /private-125/k HTTP/1.1", b"");
    assert_eq!((reply.status, reply.code()), (403, "AccessDenied"));
    let reply = gw.send("PUT /private-125/k HTTP/1.1", b"x");
    assert_eq!((reply.status, reply.code()), (403, "AccessDenied"));
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let gw = Gateway::start("[limits]\nidle_timeout_secs = 1\nheader_read_timeout_secs = 30");
    let mut stream = gw.connect();
    stream
        .write_all(b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 404"));
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        stream.read(&mut buf).unwrap(),
        0,
        "the idle connection was closed"
    );
}

#[test]
fn slow_request_heads_time_out() {
    let gw = Gateway::start("[limits]\nheader_read_timeout_secs = 1");
    let mut stream = gw.connect();
    stream.write_all(b"GET /x HTTP/1.1\r\nHost: x\r\n").unwrap();
    let started = std::time::Instant::now();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "connection closed by the server"
    );
}

#[test]
fn shutdown_lets_in_flight_requests_finish() {
    let mut gw = Gateway::start("");
    let mut stream = gw.connect();
    stream
        .write_all(b"PUT /slow.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // Ask the server to stop while the upload is half sent.
    let _ = gw.stop.take().unwrap().send(());
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        TcpStream::connect_timeout(&gw.addr, Duration::from_millis(500)).is_err(),
        "no new connections once shutdown begins"
    );
    stream.write_all(b"56789").unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let reply = Reply::parse(&raw);
    assert_eq!(reply.status, 200, "{reply:?}");
    gw.thread.take().unwrap().join().unwrap();
}

#[test]
fn http2_prior_knowledge_is_served() {
    let gw = Gateway::start("");
    let mut stream = gw.connect();
    // The HTTP/2 connection preface followed by an empty SETTINGS frame.
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    let mut header = [0u8; 9];
    stream.read_exact(&mut header).unwrap();
    assert_eq!(header[3], 0x04, "the server answers with a SETTINGS frame");
}
