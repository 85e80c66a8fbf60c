"""Helpers for test_auth.py: the multi-bucket, multi-credential gateway
config, SDK clients per credential, outcome normalisation, request capture
and replay, and the hand-made signers (SigV4 streaming chunks, TC3 check)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import requests

from support import REGION, DOMAIN, toml_str

PRIVATE = "private-1250000000"      # the default bucket, acl = private
PUBLIC = "public-1250000000"        # acl = public-read
MEDIA = "media-1250000000"          # acl = public-read, anonymous_media = true

TOKEN = "tmp-session-token-3f9a"    # the temporary credential's security_token


@dataclass(frozen=True)
class Cred:
    name: str
    id: str
    key: str
    token: str | None = None
    allow: tuple = ()                # ((actions...), (resources...)) pairs

    def with_key(self, key: str) -> "Cred":
        return Cred(self.name + "-wrongkey", self.id, key, self.token, self.allow)

    def with_token(self, token: str | None) -> "Cred":
        return Cred(self.name + "-token", self.id, self.key, token, self.allow)


MULTIPART_ACTIONS = (
    "cos:InitiateMultipartUpload", "cos:UploadPart", "cos:CompleteMultipartUpload",
    "cos:AbortMultipartUpload", "cos:ListParts",
)

ROOT = Cred("root", "AKIDauthroot", "root-secret-key-0001")
READONLY = Cred("readonly", "AKIDauthreadonly", "readonly-secret-0002",
                allow=((("cos:Get*", "cos:Head*"), ("*",)),))
UPLOADER = Cred("uploader", "AKIDauthuploader", "uploader-secret-0003",
                allow=((("cos:PutObject",) + MULTIPART_ACTIONS, (f"{PRIVATE}/uploads/*",)),))
SNAPSHOTTER = Cred("snapshotter", "AKIDauthsnapshot", "snapshot-secret-0004",
                   allow=((("ci:GenerateSnapshot",), (f"{PRIVATE}/videos/*",)),))
TEMP = Cred("temp", "AKIDauthtemporary", "temporary-secret-0005", token=TOKEN)
# May write the public-read bucket and nothing else (in particular: may not
# read the private bucket).
PUBLISHER = Cred("publisher", "AKIDauthpublisher", "publisher-secret-0006",
                 allow=((("cos:PutObject", "cos:GetObject", "cos:HeadObject"), (f"{PUBLIC}/*",)),))
# May only delete under uploads/ (for the per-key multi-delete check).
JANITOR = Cred("janitor", "AKIDauthjanitor", "janitor-secret-0007",
               allow=((("cos:DeleteObject",), (f"{PRIVATE}/uploads/*",)),))

ALL_CREDS = (ROOT, READONLY, UPLOADER, SNAPSHOTTER, TEMP, PUBLISHER, JANITOR)
UNKNOWN = Cred("unknown", "AKIDnobodyknowsthis", "whatever-secret")


def write_auth_config(path: Path, data_dir: Path, clock_skew_secs: int) -> Path:
    lines = [
        'listen = "127.0.0.1:0"',
        f"data_dir = {toml_str(str(data_dir))}",
        f"region = {toml_str(REGION)}",
        f"domain = {toml_str(DOMAIN)}",
        f"default_bucket = {toml_str(PRIVATE)}",
        "",
        "[limits]",
        f"clock_skew_secs = {clock_skew_secs}",
        "",
    ]
    for name, acl, media in ((PRIVATE, "private", False), (PUBLIC, "public-read", False),
                             (MEDIA, "public-read", True)):
        lines += [
            "[[buckets]]",
            f"name = {toml_str(name)}",
            'store = "memory://"',
            f"acl = {toml_str(acl)}",
            f"anonymous_media = {'true' if media else 'false'}",
            "",
        ]
    for cred in ALL_CREDS:   # ROOT first: `framegate presign` signs with the first
        lines += [
            "[[credentials]]",
            f"secret_id = {toml_str(cred.id)}",
            f"secret_key = {toml_str(cred.key)}",
        ]
        if cred.token:
            lines.append(f"security_token = {toml_str(cred.token)}")
        for actions, resources in cred.allow:
            lines += [
                "[[credentials.allow]]",
                "actions = [" + ", ".join(toml_str(a) for a in actions) + "]",
                "resources = [" + ", ".join(toml_str(r) for r in resources) + "]",
            ]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


# --------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------

def cos_for(port: int, cred: Cred | None, style: str = "vhost", token: str | None = None):
    """COS SDK client. vhost: connects to 127.0.0.1:port and sends
    Host: <bucket>.cos.<region>.myqcloud.com (any bucket); domain: path /<key>
    on the default bucket. cred None: anonymous."""
    from qcloud_cos import CosConfig, CosS3Client

    kw = dict(Region=REGION, Scheme="http", Timeout=30)
    if cred is None:
        kw["Anonymous"] = True
    else:
        kw.update(SecretId=cred.id, SecretKey=cred.key)
        tok = token if token is not None else cred.token
        if tok:
            kw["Token"] = tok
    if style == "vhost":
        kw.update(IP="127.0.0.1", Port=port)
    else:
        kw.update(Domain=f"127.0.0.1:{port}")
    return CosS3Client(CosConfig(**kw), retry=0)


def boto_for(port: int, cred: Cred | None, token: str | None = None, **config):
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    kw = {}
    if cred is None:
        config["signature_version"] = UNSIGNED
        kw.update(aws_access_key_id="x", aws_secret_access_key="x")
    else:
        kw.update(aws_access_key_id=cred.id, aws_secret_access_key=cred.key)
        tok = token if token is not None else cred.token
        if tok:
            kw["aws_session_token"] = tok
    return boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1},
                      connect_timeout=10, read_timeout=30, **config),
        **kw,
    )


# --------------------------------------------------------------------------
# Outcomes
# --------------------------------------------------------------------------

OK = (200, None)


def outcome(fn: Callable, *args, **kwargs):
    """(status, code) of an SDK call: (200, None) when it succeeded (any 2xx),
    else the HTTP status and the error code the SDK parsed."""
    from botocore.exceptions import ClientError
    from qcloud_cos.cos_exception import CosServiceError

    try:
        fn(*args, **kwargs)
    except CosServiceError as e:
        return e.get_status_code(), e.get_error_code()
    except ClientError as e:
        r = e.response
        return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"].get("Code")
    return OK


def xml_code(text: str) -> str | None:
    import re

    m = re.search(r"<Code>([^<]*)</Code>", text or "")
    return m.group(1) if m else None


# --------------------------------------------------------------------------
# Capture and replay of what an SDK sends
# --------------------------------------------------------------------------

@dataclass
class Sent:
    method: str
    url: str
    headers: dict
    body: bytes | None

    def replay(self, session: requests.Session | None = None, **changes) -> requests.Response:
        s = session or requests.Session()
        req = requests.Request(changes.get("method", self.method), changes.get("url", self.url),
                               headers=changes.get("headers", self.headers),
                               data=changes.get("body", self.body))
        prepared = req.prepare()
        # requests must not add or rewrite anything signed.
        prepared.headers = requests.structures.CaseInsensitiveDict(changes.get("headers", self.headers))
        body = changes.get("body", self.body)
        prepared.body = body
        if body is not None and not any(k.lower() == "content-length" for k in prepared.headers):
            prepared.headers["Content-Length"] = str(len(body))
        return s.send(prepared, timeout=30)


def capture_cos(client) -> list[Sent]:
    """Records every request the COS SDK client sends (as sent on the wire)."""
    sent: list[Sent] = []

    def hook(resp, *a, **kw):
        p = resp.request
        body = p.body
        if isinstance(body, str):
            body = body.encode()
        elif body is not None and not isinstance(body, (bytes, bytearray)):
            body = None   # a stream: not replayable
        headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in p.headers.items()}
        sent.append(Sent(p.method, p.url, headers, body))
        return resp

    client._session.hooks["response"].append(hook)
    return sent


def capture_boto(client) -> list[Sent]:
    """Records every request boto3 sends (after signing)."""
    sent: list[Sent] = []

    def hook(request, **kw):
        body = request.body
        if hasattr(body, "read"):
            pos = body.tell()
            data = body.read()
            body.seek(pos)
            body = data
        elif isinstance(body, str):
            body = body.encode()
        headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
        sent.append(Sent(request.method, request.url, headers, body))

    client.meta.events.register("before-send.s3", hook)
    return sent


def flip_char(text: str, index: int) -> str:
    """text with the alphanumeric character at index replaced by a different
    one of the same class (so encodings stay valid)."""
    c = text[index]
    if c.isdigit():
        new = "7" if c != "7" else "3"
    elif c in "abcdef":
        new = "a" if c != "a" else "b"     # still hex
    elif c.islower():
        new = "q" if c != "q" else "r"
    else:
        new = "Q" if c != "Q" else "R"
    return text[:index] + new + text[index + 1:]


def flip_in(text: str, start: int, end: int | None = None) -> str:
    """Flips the first alphanumeric character of text[start:end]."""
    end = len(text) if end is None else end
    for i in range(start, end):
        if text[i].isascii() and text[i].isalnum():
            return flip_char(text, i)
    raise ValueError(f"nothing to flip in {text[start:end]!r}")


# --------------------------------------------------------------------------
# SigV4 by hand (botocore signs the seed; chunk signatures per the AWS docs)
# --------------------------------------------------------------------------

STREAMING = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def sigv4_sign(method: str, url: str, cred: Cred, headers: dict | None = None,
               payload_hash: str | None = None, token: str | None = None) -> dict:
    """Headers (with Authorization) for a request signed by botocore's
    S3SigV4Auth. payload_hash: what to put into x-amz-content-sha256 (default:
    the empty body's hash)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    fixed = payload_hash or EMPTY_SHA256

    class Auth(S3SigV4Auth):
        def payload(self, request):
            return fixed

    req = AWSRequest(method=method, url=url, headers=dict(headers or {}), data=b"")
    tok = token if token is not None else cred.token
    Auth(Credentials(cred.id, cred.key, tok), "s3", "us-east-1").add_auth(req)
    return dict(req.headers.items())


def signing_key(secret: str, date: str, region: str = "us-east-1", service: str = "s3") -> bytes:
    def h(key, msg):
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()
    return h(h(h(h(("AWS4" + secret).encode(), date), region), service), "aws4_request")


def aws_chunked(chunks: list[bytes], headers: dict, secret: str) -> bytes:
    """The aws-chunked body for STREAMING-AWS4-HMAC-SHA256-PAYLOAD, chained
    from the seed signature in headers['Authorization']."""
    auth = headers["Authorization"]
    seed = auth.rsplit("Signature=", 1)[1].strip()
    scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/", 1)[1]
    amz_date = headers["X-Amz-Date"]
    key = signing_key(secret, amz_date[:8])
    prev = seed
    out = bytearray()
    for chunk in list(chunks) + [b""]:
        sts = "\n".join([
            "AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, EMPTY_SHA256,
            hashlib.sha256(chunk).hexdigest(),
        ])
        sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        out += f"{len(chunk):x};chunk-signature={sig}\r\n".encode() + chunk + b"\r\n"
        prev = sig
    return bytes(out)


# --------------------------------------------------------------------------
# COS q-sign by hand (the documented algorithm, API.md section 2)
# --------------------------------------------------------------------------

def cos_sign(method: str, path: str, params: dict, headers: dict, cred: Cred,
             start: int, end: int) -> str:
    """An Authorization value / the q-* parameters (unencoded) for a request."""
    from urllib.parse import quote

    def enc(d):
        items = sorted((quote(k.encode(), safe="-_.~").lower(), quote(str(v).encode(), safe="-_.~"))
                       for k, v in d.items())
        return "&".join(f"{k}={v}" for k, v in items), ";".join(k for k, _ in items)

    key_time = f"{start};{end}"
    p, plist = enc(params)
    h, hlist = enc(headers)
    http_string = f"{method.lower()}\n{path}\n{p}\n{h}\n"
    sts = f"sha1\n{key_time}\n{hashlib.sha1(http_string.encode()).hexdigest()}\n"
    sign_key = hmac.new(cred.key.encode(), key_time.encode(), hashlib.sha1).hexdigest()
    sig = hmac.new(sign_key.encode(), sts.encode(), hashlib.sha1).hexdigest()
    return (f"q-sign-algorithm=sha1&q-ak={cred.id}&q-sign-time={key_time}&q-key-time={key_time}"
            f"&q-header-list={hlist}&q-url-param-list={plist}&q-signature={sig}")


def aws_chunked_signed_trailer(chunks: list[bytes], headers: dict, secret: str,
                               trailer: tuple[str, str]) -> bytes:
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: signed chunks, then the
    trailer line and its x-amz-trailer-signature chained after the final
    chunk's signature."""
    auth = headers["Authorization"]
    seed = auth.rsplit("Signature=", 1)[1].strip()
    scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/", 1)[1]
    amz_date = headers["X-Amz-Date"]
    key = signing_key(secret, amz_date[:8])
    prev = seed
    out = bytearray()
    for chunk in list(chunks) + [b""]:
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, EMPTY_SHA256,
                         hashlib.sha256(chunk).hexdigest()])
        sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        out += f"{len(chunk):x};chunk-signature={sig}\r\n".encode() + chunk
        if chunk:
            out += b"\r\n"
        prev = sig
    canonical = f"{trailer[0]}:{trailer[1]}\n"
    sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, prev,
                     hashlib.sha256(canonical.encode()).hexdigest()])
    tsig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    out += f"{trailer[0]}:{trailer[1]}\r\nx-amz-trailer-signature:{tsig}\r\n\r\n".encode()
    return bytes(out)
