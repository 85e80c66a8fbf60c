#!/usr/bin/env python3
"""Generates the signature vectors in this folder with the official SDKs.

Every vector is a request exactly as it arrived on a local socket: the SDKs
(`cos-python-sdk-v5`, `boto3`/`botocore`, `tencentcloud-sdk-python-vod`)
send real requests to a throw-away HTTP server on 127.0.0.1, which records
the method, the raw request target, the raw headers and the body. The Rust
test `tests/sign.rs` checks that every recorded request verifies.

The aws-chunked vectors (no Python SDK signs chunks) are built here from the
AWS specification: the seed signature by botocore's `SigV4Auth`, the chunk
signatures by a small independent implementation below.

Regenerate (writes cos.json, sigv4.json, tc3.json, chunked.json here):

    python3 -m venv /work/venv-sign
    /work/venv-sign/bin/pip install cos-python-sdk-v5 boto3 tencentcloud-sdk-python-vod
    /work/venv-sign/bin/python tests/vectors/sign/gen.py

The signatures embed the time of generation; the test verifies each vector
at its recorded `now`.
"""

import base64
import datetime
import hashlib
import hmac
import http.server
import json
import logging
import os
import threading
import time
from urllib.parse import quote

import boto3
import botocore
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import qcloud_cos
import requests
from qcloud_cos import CosConfig, CosS3Client
from tencentcloud.common import credential as tc_credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.vod.v20180717 import models as vod_models
from tencentcloud.vod.v20180717 import vod_client

HERE = os.path.dirname(os.path.abspath(__file__))
SECRET_ID = "AKIDframegateVECTORS0001"
SECRET_KEY = "fg/Secret+Key=0001~vectors"
TOKEN = "session-token/with+odd=chars~1"
BUCKET = "media-1250000000"

logging.disable(logging.CRITICAL)


class Recorder(http.server.BaseHTTPRequestHandler):
    """Records each request and answers 200 with a body that satisfies the SDKs."""

    protocol_version = "HTTP/1.1"
    captured = []

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = [
            [name, value.encode("latin-1").decode("utf-8", "surrogateescape")]
            for name, value in self.headers.raw_items()
        ]
        Recorder.captured.append(
            {"method": self.command, "target": self.path, "headers": headers, "body": body}
        )
        if self.headers.get("X-TC-Action"):
            payload = json.dumps({"Response": {"RequestId": "r-1"}}).encode()
            content_type = "application/json"
        else:
            payload = b""
            content_type = "application/xml"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("ETag", '"d41d8cd98f00b204e9800998ecf8427e"')
        self.send_header("x-cos-request-id", "r-1")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    def log_message(self, *args):
        pass


def start_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def capture(name, scheme, call, secret=SECRET_KEY, **extra):
    """Runs `call` (which sends exactly one request) and returns its vector."""
    before = len(Recorder.captured)
    now = int(time.time())
    try:
        call()
    except Exception:  # the SDKs may dislike the empty answers: the request is what counts
        pass
    sent = Recorder.captured[before:]
    assert len(sent) == 1, f"{name}: {len(sent)} requests"
    req = sent[0]
    vector = {
        "name": name,
        "scheme": scheme,
        "method": req["method"],
        "target": req["target"],
        "headers": req["headers"],
        "body_b64": base64.b64encode(req["body"]).decode(),
        "access_key_id": SECRET_ID,
        "secret_key": secret,
        "now": now,
    }
    vector.update(extra)
    return vector


ODD_KEYS = [
    "plain.txt",
    "dir/sub/file.mp4",
    "a b.txt",
    "a+b.txt",
    "tilde~x",
    "percent%20literal",
    "percent%zz",
    "hash#frag",
    "question?mark=1&x",
    "视频/封面.jpg",
    "emoji😀.png",
    "reserved!$&'()*+,;=:@",
    'quote"and<>',
    "back\\slash",
    " leading-space",
    "trailing-space ",
    "dots/../x",
    "./dot",
    "semi;colon",
    "caret^`{|}",
    "multi//slash",
    "UPPER/Case.MP4",
    "%2F-literal",
    "ünïcödé/ñ",
    "/leading-slash",
]

ODD_HEADERS = [
    {},
    {"x-cos-meta-note": "hello  world"},
    {"x-cos-meta-path": "a/b+c=d&e"},
    {"x-cos-meta-cjk": "中文 值"},
    {"Content-Disposition": 'attachment; filename="a b.txt"'},
    {"Cache-Control": "max-age=60, public", "x-cos-meta-tilde": "~x~"},
    {"Content-Type": 'video/mp4; codecs="avc1"'},
]


def cos_vectors(port):
    vectors = []
    domain = CosConfig(
        Domain=f"127.0.0.1:{port}", Scheme="http", SecretId=SECRET_ID, SecretKey=SECRET_KEY
    )
    vhost = CosConfig(
        Region="ap-guangzhou",
        IP="127.0.0.1",
        Port=port,
        Scheme="http",
        SecretId=SECRET_ID,
        SecretKey=SECRET_KEY,
    )
    token = CosConfig(
        Domain=f"127.0.0.1:{port}",
        Scheme="http",
        SecretId=SECRET_ID,
        SecretKey=SECRET_KEY,
        Token=TOKEN,
    )
    configs = [("domain", domain), ("vhost", vhost), ("token", token)]
    for i, key in enumerate(ODD_KEYS):
        mode, conf = configs[i % len(configs)]
        client = CosS3Client(conf, retry=0)
        extra = {"security_token": TOKEN} if mode == "token" else {}
        # The SDK leaves the token out of pre-signed URLs: users append it.
        token_param = f"&x-cos-security-token={quote(TOKEN, safe='')}" if extra else ""
        headers = ODD_HEADERS[i % len(ODD_HEADERS)]
        kwargs = {k.replace("-", "_"): v for k, v in headers.items()}
        put_kwargs = {}
        for k, v in headers.items():
            if k.startswith("x-cos-meta-"):
                put_kwargs.setdefault("Metadata", {})[k] = v
            else:
                put_kwargs[k.replace("-", "")] = v
        del kwargs
        vectors.append(capture(f"cos put {mode} {key!r}", "cos", lambda: client.put_object(
            Bucket=BUCKET, Key=key, Body=b"hello " + key.encode(), **put_kwargs), **extra))
        vectors.append(capture(f"cos get {mode} {key!r}", "cos", lambda: client.get_object(
            Bucket=BUCKET, Key=key, Range="bytes=0-99",
            ResponseContentDisposition='attachment; filename="x y+z.txt"',
            ResponseContentType="text/plain; charset=utf-8"), **extra))
        vectors.append(capture(f"cos head {mode} {key!r}", "cos", lambda: client.head_object(
            Bucket=BUCKET, Key=key, IfNoneMatch='"abc"'), **extra))
        vectors.append(capture(f"cos delete {mode} {key!r}", "cos", lambda: client.delete_object(
            Bucket=BUCKET, Key=key), **extra))
        vectors.append(capture(f"cos snapshot {mode} {key!r}", "cos", lambda: client.get_snapshot(
            Bucket=BUCKET, Key=key, Time=1.5, Width=320, Format="jpg"), **extra))
        vectors.append(capture(f"cos presigned get {mode} {key!r}", "cos", lambda: requests.get(
            client.get_presigned_url(Bucket=BUCKET, Key=key, Method="GET", Expired=600, Params={
                "ci-process": "snapshot", "time": "1.5", "width": "320",
                "response-content-disposition": 'inline; filename="a b+c.jpg"'}) + token_param), **extra))
        vectors.append(capture(f"cos presigned put {mode} {key!r}", "cos", lambda: requests.put(
            client.get_presigned_url(Bucket=BUCKET, Key=key, Method="PUT", Expired=60) + token_param,
            data=b"presigned body"), **extra))
    client = CosS3Client(domain, retry=0)
    vectors.append(capture("cos list bucket", "cos", lambda: client.list_objects(
        Bucket=BUCKET, Prefix="视频/a b", Delimiter="/", Marker="m+1", MaxKeys=10)))
    vectors.append(capture("cos initiate multipart", "cos", lambda: client.create_multipart_upload(
        Bucket=BUCKET, Key="big video.mp4")))
    vectors.append(capture("cos upload part", "cos", lambda: client.upload_part(
        Bucket=BUCKET, Key="big video.mp4", Body=b"x" * 1000, PartNumber=3, UploadId="up/1+2")))
    vectors.append(capture("cos get_auth header signed by hand", "cos", lambda: requests.get(
        f"http://127.0.0.1:{port}/%E8%A7%86%E9%A2%91.mp4",
        params={"ci-process": "videoinfo", "odd key": "v a/l~"},
        headers={"Authorization": client.get_auth(
            Method="GET", Bucket=BUCKET, Key="视频.mp4",
            Params={"ci-process": "videoinfo", "odd key": "v a/l~"},
            Headers={"x-cos-meta-a": "1"}), "x-cos-meta-a": "1"})))
    return vectors


def s3_client(port, region="us-east-1", token=None, sign_payload=None):
    config = botocore.config.Config(
        signature_version="s3v4",
        s3={"addressing_style": "path", "payload_signing_enabled": sign_payload},
        retries={"max_attempts": 1, "mode": "standard"},
    )
    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name=region,
        aws_access_key_id=SECRET_ID,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=token,
        config=config,
    )


def sigv4_vectors(port):
    vectors = []
    clients = [
        ("plain", s3_client(port), {}),
        ("region", s3_client(port, region="ap-guangzhou"), {}),
        ("token", s3_client(port, token=TOKEN), {"security_token": TOKEN}),
        ("unsigned", s3_client(port, sign_payload=False), {}),
    ]
    for i, key in enumerate(ODD_KEYS):
        mode, s3, extra = clients[i % len(clients)]
        meta = {"note": "hello  world", "cjk": "value"}
        vectors.append(capture(f"s3 put {mode} {key!r}", "sigv4", lambda: s3.put_object(
            Bucket=BUCKET, Key=key, Body=b"hello " + key.encode(), Metadata=meta,
            ContentType='video/mp4; codecs="avc1"',
            ContentDisposition='attachment; filename="a b.txt"'), **extra))
        vectors.append(capture(f"s3 get {mode} {key!r}", "sigv4", lambda: s3.get_object(
            Bucket=BUCKET, Key=key, Range="bytes=0-99", IfNoneMatch='"abc"',
            ResponseContentType="text/plain; charset=utf-8",
            ResponseContentDisposition='inline; filename="x y+z.txt"'), **extra))
        vectors.append(capture(f"s3 head {mode} {key!r}", "sigv4", lambda: s3.head_object(
            Bucket=BUCKET, Key=key), **extra))
        vectors.append(capture(f"s3 delete {mode} {key!r}", "sigv4", lambda: s3.delete_object(
            Bucket=BUCKET, Key=key), **extra))
        if "./" in key:
            continue  # requests would remove the dot segments the URL was signed with
        url = s3.generate_presigned_url("get_object", ExpiresIn=900, Params={
            "Bucket": BUCKET, "Key": key, "ResponseContentType": "image/jpeg; q=0.9"})
        vectors.append(capture(f"s3 presigned get {mode} {key!r}", "sigv4",
                               lambda: requests.get(url), **extra))
        url_put = s3.generate_presigned_url("put_object", ExpiresIn=60, Params={
            "Bucket": BUCKET, "Key": key})
        vectors.append(capture(f"s3 presigned put {mode} {key!r}", "sigv4",
                               lambda: requests.put(url_put, data=b"presigned"), **extra))
    s3 = s3_client(port)
    vectors.append(capture("s3 list v2", "sigv4", lambda: s3.list_objects_v2(
        Bucket=BUCKET, Prefix="视频/a b+c", Delimiter="/", MaxKeys=10, StartAfter="~x")))
    vectors.append(capture("s3 list v1", "sigv4", lambda: s3.list_objects(
        Bucket=BUCKET, Prefix="a%b", Marker="m&n=o")))
    vectors.append(capture("s3 create multipart", "sigv4", lambda: s3.create_multipart_upload(
        Bucket=BUCKET, Key="big video.mp4")))
    vectors.append(capture("s3 upload part", "sigv4", lambda: s3.upload_part(
        Bucket=BUCKET, Key="big video.mp4", Body=b"x" * 1000, PartNumber=3, UploadId="up/1+2")))
    return vectors


def tc3_vectors(port):
    vectors = []
    profiles = [
        ("post", HttpProfile(endpoint=f"127.0.0.1:{port}", protocol="http"), None),
        ("get", HttpProfile(endpoint=f"127.0.0.1:{port}", protocol="http", reqMethod="GET"), None),
        ("token", HttpProfile(endpoint=f"127.0.0.1:{port}", protocol="http"), TOKEN),
    ]
    names = ["模板 1", "a b+c", "emoji 😀", "plain", "quote \" and \\", "semi;colon&amp=1"]
    for mode, http_profile, token in profiles:
        cred = tc_credential.Credential(SECRET_ID, SECRET_KEY, token)
        client = vod_client.VodClient(cred, "ap-guangzhou", ClientProfile(httpProfile=http_profile))
        extra = {"security_token": token} if token else {}
        for name in names:
            req = vod_models.CreateSnapshotByTimeOffsetTemplateRequest()
            req.Name = name
            req.Width = 320
            req.Format = "jpg"
            req.Comment = name * 3
            vectors.append(capture(f"tc3 create template {mode} {name!r}", "tc3",
                                   lambda: client.CreateSnapshotByTimeOffsetTemplate(req), **extra))
            describe = vod_models.DescribeSnapshotByTimeOffsetTemplatesRequest()
            describe.Definitions = [10, 20]
            describe.Offset = 0
            describe.Limit = 5
            vectors.append(capture(f"tc3 describe templates {mode} {name!r}", "tc3",
                                   lambda: client.DescribeSnapshotByTimeOffsetTemplates(describe),
                                   **extra))
            process = vod_models.ProcessMediaRequest()
            process.FileId = "file-" + name
            process.SessionContext = name
            vectors.append(capture(f"tc3 process media {mode} {name!r}", "tc3",
                                   lambda: client.ProcessMedia(process), **extra))
    return vectors


# --- aws-chunked, built from the specification ----------------------------

def _hmac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _signing_key(secret, date, region, service):
    key = _hmac(("AWS4" + secret).encode(), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def chunked_vector(port, name, data, chunk_size, mode, trailer=None):
    """A signed aws-chunked PUT; `mode` is the x-amz-content-sha256 marker."""
    region, service = "us-east-1", "s3"
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    url = f"http://127.0.0.1:{port}/{BUCKET}/chunked%20{len(data)}.bin"
    headers = {
        "Content-Encoding": "aws-chunked",
        "X-Amz-Content-SHA256": mode,
        "X-Amz-Decoded-Content-Length": str(len(data)),
        "X-Amz-Date": stamp,
    }
    if trailer:
        headers["X-Amz-Trailer"] = trailer[0]
    request = botocore.awsrequest.AWSRequest(method="PUT", url=url, headers=headers)
    request.context["timestamp"] = stamp
    creds = botocore.credentials.Credentials(SECRET_ID, SECRET_KEY)
    signer = botocore.auth.S3SigV4Auth(creds, service, region)
    canonical = signer.canonical_request(request)
    seed = signer.signature(signer.string_to_sign(request, canonical), request)
    authorization = (
        f"AWS4-HMAC-SHA256 Credential={SECRET_ID}/{stamp[:8]}/{region}/{service}/aws4_request, "
        f"SignedHeaders={signer.signed_headers(signer.headers_to_sign(request))}, Signature={seed}"
    )
    key = _signing_key(SECRET_KEY, stamp[:8], region, service)
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    empty = hashlib.sha256(b"").hexdigest()
    body, previous, signed = b"", seed, mode != "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    pieces = [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    for piece in pieces:
        if signed:
            text = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", stamp, scope, previous, empty,
                              hashlib.sha256(piece).hexdigest()])
            previous = hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
            body += f"{len(piece):x};chunk-signature={previous}\r\n".encode()
        else:
            body += f"{len(piece):x}\r\n".encode()
        if piece:
            body += piece + b"\r\n"
    if trailer:
        line = f"{trailer[0]}:{trailer[1]}"
        body += (line + "\r\n").encode()
        if signed:
            text = "\n".join(["AWS4-HMAC-SHA256-TRAILER", stamp, scope, previous,
                              hashlib.sha256((line + "\n").encode()).hexdigest()])
            sig = hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
            body += f"x-amz-trailer-signature:{sig}\r\n".encode()
    body += b"\r\n"
    send_headers = dict(headers, Authorization=authorization)
    vector = capture(name, "sigv4", lambda: requests.put(url, data=body, headers=send_headers))
    vector["decoded_b64"] = base64.b64encode(data).decode()
    vector["trailer"] = list(trailer) if trailer else None
    return vector


def chunked_vectors(port):
    out = []
    crc = base64.b64encode(b"\x12\x34\x56\x78").decode()
    cases = [
        (b"", 1024),
        (b"a" * 10, 1024),
        (bytes(range(256)) * 40, 8192),
        (bytes(range(256)) * 40, 1000),
        ("视频 chunk ".encode() * 800, 8192),
    ]
    for data, size in cases:
        out.append(chunked_vector(port, f"chunked signed {len(data)}/{size}", data, size,
                                  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"))
        out.append(chunked_vector(port, f"chunked signed trailer {len(data)}/{size}", data, size,
                                  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
                                  ("x-amz-checksum-crc32", crc)))
        out.append(chunked_vector(port, f"chunked unsigned trailer {len(data)}/{size}", data,
                                  size, "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                                  ("x-amz-checksum-crc32", crc)))
    return out


def write(name, sdk, vectors):
    document = {
        "generator": "tests/vectors/sign/gen.py",
        "sdk": sdk,
        "count": len(vectors),
        "vectors": vectors,
    }
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        json.dump(document, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{name}: {len(vectors)} vectors")


def main():
    server, port = start_server()
    try:
        write("cos.json", f"cos-python-sdk-v5 {qcloud_cos.cos_client.__version__}",
              cos_vectors(port))
        write("sigv4.json", f"botocore {botocore.__version__}", sigv4_vectors(port))
        write("tc3.json", "tencentcloud-sdk-python-vod", tc3_vectors(port))
        write("chunked.json", f"botocore {botocore.__version__} seed + gen.py chunks",
              chunked_vectors(port))
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
