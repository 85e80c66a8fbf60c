"""Authentication and authorization, end to end with the official clients
(issue 3): per-credential policies for every action class through
cos-python-sdk-v5 and boto3, anonymous access by bucket ACL, temporary
credentials, a table of 200+ SDK-signed requests per SDK with byte flips,
pre-signed URLs through curl, API 3.0 (TC3) through tencentcloud-sdk-python-vod,
SigV4 streaming (aws-chunked) uploads, and that denials leave nothing behind.

One gateway (memory stores) serves the module: a private default bucket, a
public-read bucket and a public-read bucket with anonymous_media; the
credentials are in auth_support.py. A second gateway with clock_skew_secs = 1
serves the expiry tests.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from types import SimpleNamespace
from unittest import mock
from urllib.parse import quote, urlsplit, urlunsplit, parse_qsl, urlencode

import pytest
import requests

import support
from support import REGION, Gateway, gateway_binary
from auth_support import (
    MEDIA, PRIVATE, PUBLIC, TOKEN, OK,
    ROOT, READONLY, UPLOADER, SNAPSHOTTER, TEMP, PUBLISHER, JANITOR, UNKNOWN,
    STREAMING, Cred, aws_chunked, boto_for, capture_boto, capture_cos, cos_for, cos_sign,
    flip_char, flip_in, outcome, sigv4_sign, write_auth_config, xml_code,
)

DENIED = (403, "AccessDenied")
JPEG_MAGIC = b"\xff\xd8\xff"
SNAPSHOT_TIME = "3"


# --------------------------------------------------------------------------
# Gateways
# --------------------------------------------------------------------------

def _start(workroot, name: str, skew: int) -> Gateway:
    workdir = workroot / f"{name}-{uuid.uuid4().hex[:6]}"
    (workdir / "data").mkdir(parents=True)
    config = write_auth_config(workdir / "framegate.toml", workdir / "data", skew)
    return Gateway(config, workdir, name).start()


def _stop(gw: Gateway):
    alive = gw.alive()
    code = gw.stop()
    assert alive, f"{gw.name} died during the module:\n{gw.stderr_tail()}"
    assert code == 0, f"{gw.name} exited {code} on SIGTERM:\n{gw.stderr_tail()}"


@pytest.fixture(scope="module")
def gw(workroot):
    """The auth gateway (clock_skew_secs = 60), seeded by root."""
    g = _start(workroot, "authgw", 60)
    s3 = boto_for(g.port, ROOT)
    for bucket, key, body in SEED:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    yield g
    _stop(g)


@pytest.fixture(scope="module")
def strict_gw(workroot):
    """The same configuration with clock_skew_secs = 1, for expiry tests."""
    g = _start(workroot, "authgw-strict", 1)
    boto_for(g.port, ROOT).put_object(Bucket=PRIVATE, Key="expiry.txt", Body=b"expiry body")
    yield g
    _stop(g)


@pytest.fixture(autouse=True)
def _still_alive(request):
    yield
    for name in ("gw", "strict_gw"):
        if name in request.fixturenames:
            g = request.getfixturevalue(name)
            assert g.alive(), f"the gateway died during this test:\n{g.stderr_tail()}"


# A real video (the committed fixture) behind every clip.mp4, so an allowed
# snapshot is a 200 JPEG.
DEMO_MP4 = (support.REPO / "fixtures" / "demo.mp4").read_bytes()
SEED = [
    (PRIVATE, "secret.txt", b"top secret"),
    (PRIVATE, "other/existing.txt", b"other body"),
    (PRIVATE, "other/clip.mp4", DEMO_MP4),
    (PRIVATE, "uploads/existing.txt", b"uploads body"),
    (PRIVATE, "uploads/clip.mp4", DEMO_MP4),
    (PRIVATE, "videos/existing.txt", b"videos body"),
    (PRIVATE, "videos/clip.mp4", DEMO_MP4),
    (PUBLIC, "hello.txt", b"hello public"),
    (PUBLIC, "clip.mp4", DEMO_MP4),
    (MEDIA, "clip.mp4", DEMO_MP4),
]
SEED_BODY = {(b, k): v for b, k, v in SEED}


def uid() -> str:
    return uuid.uuid4().hex[:10]


def root_head(gw, bucket: str, key: str) -> int:
    """Status of root's HEAD: 200 exists, 404 absent."""
    return outcome(boto_for(gw.port, ROOT).head_object, Bucket=bucket, Key=key)[0]


def root_get(gw, bucket: str, key: str) -> bytes:
    return boto_for(gw.port, ROOT).get_object(Bucket=bucket, Key=key)["Body"].read()


def root_put(gw, bucket: str, key: str, body: bytes):
    boto_for(gw.port, ROOT).put_object(Bucket=bucket, Key=key, Body=body)


# --------------------------------------------------------------------------
# One action class, through either SDK
# --------------------------------------------------------------------------

class Actor:
    """Performs one action class as `cred` through `sdk` ("cos" or "boto")
    and returns (status, code)."""

    def __init__(self, gw, sdk: str, cred: Cred | None, token: str | None = None):
        self.gw, self.sdk, self.cred = gw, sdk, cred
        self.token = token

    @property
    def c(self):
        # A fresh client (and connection pool) per call: after a refused PUT
        # the gateway may drop the connection without `Connection: close`
        # (see test_refused_upload_response_announces_connection_close...),
        # which would fail the next call on a reused connection.
        if self.sdk == "cos":
            return cos_for(self.gw.port, self.cred, token=self.token)
        return boto_for(self.gw.port, self.cred, token=self.token)

    def get(self, bucket, key):
        got = {}

        def run():
            if self.sdk == "cos":
                got["body"] = self.c.get_object(Bucket=bucket, Key=key)["Body"].get_raw_stream().read()
            else:
                got["body"] = self.c.get_object(Bucket=bucket, Key=key)["Body"].read()
        res = outcome(run)
        if res == OK:
            assert got["body"] == SEED_BODY.get((bucket, key), got["body"])
        return res

    def head(self, bucket, key):
        return outcome(self.c.head_object, Bucket=bucket, Key=key)

    def put(self, bucket, key):
        return outcome(self.c.put_object, Bucket=bucket, Key=key, Body=b"put by " + self.sdk.encode())

    def delete(self, bucket, key):
        return outcome(self.c.delete_object, Bucket=bucket, Key=key)

    def list(self, bucket, prefix):
        """Lists prefix; on success checks that the seeded keys under it are listed."""
        got = {}

        def run():
            got["r"] = self.c.list_objects(Bucket=bucket, Prefix=prefix)
        res = outcome(run)
        if res == OK:
            keys = {c["Key"] for c in got["r"].get("Contents", [])}
            want = {k for b, k, _ in SEED if b == bucket and k.startswith(prefix)}
            assert want <= keys, (want, keys)
        return res

    def multipart(self, bucket, key):
        c = self.c

        def run():
            part = b"p" * 1024
            if self.sdk == "cos":
                up = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
                etag = c.upload_part(Bucket=bucket, Key=key, Body=part, PartNumber=1,
                                          UploadId=up)["ETag"]
                c.list_parts(Bucket=bucket, Key=key, UploadId=up)
                c.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=up,
                    MultipartUpload={"Part": [{"ETag": etag, "PartNumber": 1}]})
            else:
                up = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
                etag = c.upload_part(Bucket=bucket, Key=key, Body=part, PartNumber=1,
                                          UploadId=up)["ETag"]
                c.list_parts(Bucket=bucket, Key=key, UploadId=up)
                c.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=up,
                    MultipartUpload={"Parts": [{"ETag": etag, "PartNumber": 1}]})
        return outcome(run)

    def copy(self, bucket, key, src_bucket, src_key):
        if self.sdk == "cos":
            return outcome(self.c.copy_object, Bucket=bucket, Key=key,
                           CopySource={"Bucket": src_bucket, "Key": src_key, "Region": REGION})
        return outcome(self.c.copy_object, Bucket=bucket, Key=key,
                       CopySource={"Bucket": src_bucket, "Key": src_key})

    def snapshot(self, bucket, key):
        """(200, None) only for a real JPEG answer; else (status, code)."""
        if self.sdk == "cos":
            got = {}

            def run():
                got["r"] = self.c.get_snapshot(Bucket=bucket, Key=key, Time=SNAPSHOT_TIME)
            res = outcome(run)
            if res == OK:
                data = got["r"]["Body"].get_raw_stream().read()
                assert data[:3] == JPEG_MAGIC, data[:40]
            return res
        # boto3 has no snapshot call: sign the GET with botocore's SigV4 signer.
        url = (f"http://127.0.0.1:{self.gw.port}/{bucket}/{quote(key)}"
               f"?ci-process=snapshot&time={SNAPSHOT_TIME}")
        if self.cred is None:
            headers = {}
        else:
            headers = sigv4_sign("GET", url, self.cred, token=self.token)
        r = requests.get(url, headers=headers, timeout=30)
        if r.ok:
            assert r.headers["Content-Type"] == "image/jpeg" and r.content[:3] == JPEG_MAGIC
            return OK
        return r.status_code, xml_code(r.text)


# --------------------------------------------------------------------------
# 1. Per-credential policies, every action class, both SDKs
# --------------------------------------------------------------------------

A = True   # allowed
D = False  # denied

# (credential, key area under the private bucket, {action: allowed}).
POLICY_TABLE = [
    (ROOT, "other", dict(get=A, head=A, put=A, delete=A, list=A, multipart=A, copy=A, snapshot=A)),
    (TEMP, "other", dict(get=A, head=A, put=A, delete=A, list=A, multipart=A, copy=A, snapshot=A)),
    (READONLY, "other", dict(get=A, head=A, put=D, delete=D, list=A, multipart=D, copy=D, snapshot=D)),
    (READONLY, "videos", dict(snapshot=D)),   # read is not enough for a snapshot
    # Copy needs read on the source too (COS: GetObject on the source, PutObject
    # on the destination); the uploader may not read even uploads/.
    (UPLOADER, "uploads", dict(get=D, head=D, put=A, delete=D, list=D, multipart=A, copy=D, snapshot=D)),
    (UPLOADER, "other", dict(put=D, multipart=D, copy=D)),
    (SNAPSHOTTER, "videos", dict(get=D, head=D, put=D, delete=D, list=D, multipart=D, copy=D, snapshot=A)),
    (SNAPSHOTTER, "other", dict(snapshot=D)),
    (PUBLISHER, "other", dict(get=D, head=D, put=D, delete=D, list=D, multipart=D, snapshot=D)),
]


def _policy_cases():
    for cred, area, actions in POLICY_TABLE:
        for action, allowed in actions.items():
            for sdk in ("cos", "boto"):
                verdict = "allowed" if allowed else "denied"
                yield pytest.param(sdk, cred, area, action, allowed,
                                   id=f"{sdk}-{cred.name}-{action}-{area}-{verdict}")


@pytest.mark.parametrize("sdk,cred,area,action,allowed", list(_policy_cases()))
def test_credential_policy_allows_or_denies_each_action_class(gw, sdk, cred, area, action, allowed):
    actor = Actor(gw, sdk, cred)
    fresh = f"{area}/{action}-{sdk}-{uid()}.bin"
    if action in ("get", "head"):
        res = getattr(actor, action)(PRIVATE, f"{area}/existing.txt")
    elif action == "put":
        res = actor.put(PRIVATE, fresh)
        # Denials leave nothing behind; an allowed PUT stored the object.
        assert root_head(gw, PRIVATE, fresh) == (200 if allowed else 404)
    elif action == "delete":
        root_put(gw, PRIVATE, fresh, b"victim")
        res = actor.delete(PRIVATE, fresh)
        assert root_head(gw, PRIVATE, fresh) == (404 if allowed else 200)
    elif action == "list":
        res = actor.list(PRIVATE, f"{area}/")
    elif action == "multipart":
        res = actor.multipart(PRIVATE, fresh)
        assert root_head(gw, PRIVATE, fresh) == (200 if allowed else 404)
    elif action == "copy":
        res = actor.copy(PRIVATE, fresh, PRIVATE, f"{area}/existing.txt")
        assert root_head(gw, PRIVATE, fresh) == (200 if allowed else 404)
        if allowed:
            assert root_get(gw, PRIVATE, fresh) == SEED_BODY[(PRIVATE, f"{area}/existing.txt")]
    elif action == "snapshot":
        res = actor.snapshot(PRIVATE, f"{area}/clip.mp4")
    else:
        raise AssertionError(action)
    if allowed:
        assert res == OK, f"{cred.name} {action} on {area}: {res}"
    elif action == "head":
        assert res[0] == 403, res    # HEAD errors carry no body to name the code
    else:
        assert res == DENIED, f"{cred.name} {action} on {area}: {res}"


@pytest.mark.parametrize("sdk", ["cos", "boto"])
@pytest.mark.parametrize("step", ["upload_part", "list_parts", "complete", "abort"])
def test_multipart_steps_on_a_foreign_upload_are_denied(gw, sdk, step):
    """root starts an upload under other/; the uploader (uploads/* only) may
    take none of its steps, and the upload survives for root to finish."""
    key = f"other/foreign-{uid()}.bin"
    root = boto_for(gw.port, ROOT)
    up = root.create_multipart_upload(Bucket=PRIVATE, Key=key)["UploadId"]
    etag = root.upload_part(Bucket=PRIVATE, Key=key, PartNumber=1, UploadId=up, Body=b"r" * 100)["ETag"]
    c = cos_for(gw.port, UPLOADER) if sdk == "cos" else boto_for(gw.port, UPLOADER)
    parts_key = "Part" if sdk == "cos" else "Parts"
    if step == "upload_part":
        res = outcome(c.upload_part, Bucket=PRIVATE, Key=key, PartNumber=2, UploadId=up, Body=b"evil")
    elif step == "list_parts":
        res = outcome(c.list_parts, Bucket=PRIVATE, Key=key, UploadId=up)
    elif step == "complete":
        res = outcome(c.complete_multipart_upload, Bucket=PRIVATE, Key=key, UploadId=up,
                      MultipartUpload={parts_key: [{"ETag": etag, "PartNumber": 1}]})
    else:
        res = outcome(c.abort_multipart_upload, Bucket=PRIVATE, Key=key, UploadId=up)
    assert res == DENIED
    assert root_head(gw, PRIVATE, key) == 404
    parts = root.list_parts(Bucket=PRIVATE, Key=key, UploadId=up)["Parts"]
    assert [p["PartNumber"] for p in parts] == [1]
    root.complete_multipart_upload(Bucket=PRIVATE, Key=key, UploadId=up,
                                   MultipartUpload={"Parts": [{"ETag": etag, "PartNumber": 1}]})
    assert root_get(gw, PRIVATE, key) == b"r" * 100


@pytest.mark.parametrize("sdk", ["cos", "boto"])
def test_copy_into_writable_prefix_from_unreadable_source_is_denied(gw, sdk):
    """The uploader may write uploads/* but read nothing: copying secret.txt
    into uploads/ must be 403 (COS checks GetObject on the copy source)."""
    dest = f"uploads/stolen-{uid()}.txt"
    res = Actor(gw, sdk, UPLOADER).copy(PRIVATE, dest, PRIVATE, "secret.txt")
    assert res == DENIED
    assert root_head(gw, PRIVATE, dest) == 404


@pytest.mark.parametrize("sdk", ["cos", "boto"])
def test_copy_from_private_bucket_into_public_bucket_is_denied(gw, sdk):
    """The publisher may write (and read) the public-read bucket only. Copying
    the private bucket's secret.txt there would publish it to everyone."""
    dest = f"leak-{uid()}.txt"
    res = Actor(gw, sdk, PUBLISHER).copy(PUBLIC, dest, PRIVATE, "secret.txt")
    leaked = requests.get(f"{gw.url}/{PUBLIC}/{dest}", timeout=30)
    # Nothing was published: the public bucket has no such object (COS
    # answers 404 for a missing key of a public-read bucket; S3 says 403).
    assert res == DENIED and leaked.status_code in (403, 404), (
        f"copy answered {res}; anonymous GET of the copy: {leaked.status_code} {leaked.content[:40]!r}")


def test_publisher_may_put_and_get_its_own_bucket(gw):
    """Control for the copy tests: the publisher's own grants work."""
    key = f"own-{uid()}.txt"
    c = boto_for(gw.port, PUBLISHER)
    c.put_object(Bucket=PUBLIC, Key=key, Body=b"mine")
    assert c.get_object(Bucket=PUBLIC, Key=key)["Body"].read() == b"mine"
    assert Actor(gw, "boto", PUBLISHER).copy(PUBLIC, key + ".copy", PUBLIC, key) == OK


@pytest.mark.parametrize("sdk", ["cos", "boto"])
def test_multi_delete_checks_each_key_against_the_policy(gw, sdk):
    """The janitor may delete uploads/* only: a multi-object delete of one key
    inside and one outside deletes the first and reports AccessDenied for the
    second, which survives."""
    inside, outside = f"uploads/j-{uid()}.txt", f"other/j-{uid()}.txt"
    root_put(gw, PRIVATE, inside, b"x")
    root_put(gw, PRIVATE, outside, b"y")
    if sdk == "cos":
        c = cos_for(gw.port, JANITOR)
        call = lambda: c.delete_objects(Bucket=PRIVATE, Delete={  # noqa: E731
            "Object": [{"Key": inside}, {"Key": outside}], "Quiet": "false"})
    else:
        c = boto_for(gw.port, JANITOR)
        call = lambda: c.delete_objects(Bucket=PRIVATE, Delete={  # noqa: E731
            "Objects": [{"Key": inside}, {"Key": outside}], "Quiet": False})
    try:
        result = call()
        res = OK
    except Exception:  # noqa: BLE001
        result, res = None, outcome(call)
    assert root_head(gw, PRIVATE, outside) == 200
    assert res == OK, f"multi-delete refused as a whole: {res}"
    assert root_head(gw, PRIVATE, inside) == 404
    errors = result.get("Error") or result.get("Errors") or []
    if isinstance(errors, dict):
        errors = [errors]
    assert [(e["Key"], e["Code"]) for e in errors] == [(outside, "AccessDenied")]


@pytest.mark.parametrize("sdk", ["cos", "boto"])
def test_multi_delete_by_read_only_credential_deletes_nothing(gw, sdk):
    keys = [f"other/ro-{uid()}.txt" for _ in range(2)]
    for k in keys:
        root_put(gw, PRIVATE, k, b"keep")
    if sdk == "cos":
        c = cos_for(gw.port, READONLY)
        try:
            result = c.delete_objects(Bucket=PRIVATE, Delete={"Object": [{"Key": k} for k in keys]})
            errs = result.get("Error", [])
            errs = [errs] if isinstance(errs, dict) else errs
            assert sorted(e["Code"] for e in errs) == ["AccessDenied"] * 2
        except Exception as e:  # noqa: BLE001
            assert outcome(lambda: (_ for _ in ()).throw(e)) == DENIED
    else:
        c = boto_for(gw.port, READONLY)
        res = outcome(c.delete_objects, Bucket=PRIVATE, Delete={"Objects": [{"Key": k} for k in keys]})
        if res == OK:
            result = c.delete_objects(Bucket=PRIVATE, Delete={"Objects": [{"Key": k} for k in keys]})
            assert sorted(e["Code"] for e in result.get("Errors", [])) == ["AccessDenied"] * 2
        else:
            assert res == DENIED
    for k in keys:
        assert root_head(gw, PRIVATE, k) == 200


# --------------------------------------------------------------------------
# Anonymous access by bucket ACL
# --------------------------------------------------------------------------

@pytest.mark.parametrize("client", ["cos", "boto", "raw"])
@pytest.mark.parametrize("action", ["get", "head", "put", "delete", "list", "snapshot"])
def test_unsigned_requests_to_private_bucket_are_denied(gw, client, action):
    key = "secret.txt" if action != "snapshot" else "videos/clip.mp4"
    if client == "raw":
        url = f"{gw.url}/{PRIVATE}/{key}"
        method, params = {"get": ("GET", {}), "head": ("HEAD", {}), "put": ("PUT", {}),
                          "delete": ("DELETE", {}), "list": ("GET", {}),
                          "snapshot": ("GET", {"ci-process": "snapshot", "time": "3"})}[action]
        if action == "list":
            url = f"{gw.url}/{PRIVATE}/"
        r = requests.request(method, url, params=params, data=b"x" if method == "PUT" else None, timeout=30)
        assert r.status_code == 403
        if method != "HEAD":
            assert xml_code(r.text) == "AccessDenied"
    else:
        actor = Actor(gw, client, None)
        res = {"get": lambda: actor.get(PRIVATE, key), "head": lambda: actor.head(PRIVATE, key),
               "put": lambda: actor.put(PRIVATE, key), "delete": lambda: actor.delete(PRIVATE, key),
               "list": lambda: actor.list(PRIVATE, ""),
               "snapshot": lambda: actor.snapshot(PRIVATE, key)}[action]()
        assert res[0] == 403 and (action == "head" or res[1] == "AccessDenied"), res
    assert root_get(gw, PRIVATE, "secret.txt") == b"top secret"


@pytest.mark.parametrize("client", ["cos", "boto"])
def test_anonymous_reads_public_read_bucket_but_cannot_write_delete_or_list(gw, client):
    actor = Actor(gw, client, None)
    assert actor.get(PUBLIC, "hello.txt") == OK
    assert actor.head(PUBLIC, "hello.txt") == OK
    new = f"anon-{uid()}.txt"
    assert actor.put(PUBLIC, new) == DENIED
    assert root_head(gw, PUBLIC, new) == 404
    assert actor.delete(PUBLIC, "hello.txt") == DENIED
    assert root_get(gw, PUBLIC, "hello.txt") == b"hello public"
    assert actor.list(PUBLIC, "") == DENIED
    assert actor.multipart(PUBLIC, new) == DENIED
    assert actor.copy(PUBLIC, new, PUBLIC, "hello.txt") == DENIED
    assert root_head(gw, PUBLIC, new) == 404


def test_anonymous_raw_http_on_public_read_bucket(gw):
    r = requests.get(f"{gw.url}/{PUBLIC}/hello.txt", timeout=30)
    assert (r.status_code, r.content) == (200, b"hello public")
    assert requests.head(f"{gw.url}/{PUBLIC}/hello.txt", timeout=30).status_code == 200
    for method, path in (("PUT", "hello.txt"), ("DELETE", "hello.txt"), ("GET", "")):
        r = requests.request(method, f"{gw.url}/{PUBLIC}/{path}", data=b"x" if method == "PUT" else None,
                             timeout=30)
        assert (r.status_code, xml_code(r.text)) == DENIED, (method, path)
    assert root_get(gw, PUBLIC, "hello.txt") == b"hello public"


@pytest.mark.parametrize("client", ["cos", "boto"])
def test_anonymous_snapshots_only_on_anonymous_media_bucket(gw, client):
    actor = Actor(gw, client, None)
    assert actor.snapshot(MEDIA, "clip.mp4") == OK
    assert actor.snapshot(PUBLIC, "clip.mp4") == DENIED
    assert actor.get(MEDIA, "clip.mp4") == OK


# --------------------------------------------------------------------------
# Unknown keys, wrong secrets, temporary credentials
# --------------------------------------------------------------------------

@pytest.mark.parametrize("sdk", ["cos", "boto"])
def test_unknown_secret_id_is_invalid_access_key_id(gw, sdk):
    actor = Actor(gw, sdk, UNKNOWN)
    assert actor.get(PRIVATE, "secret.txt") == (403, "InvalidAccessKeyId")
    key = f"other/unknown-{uid()}"
    assert actor.put(PRIVATE, key) == (403, "InvalidAccessKeyId")
    assert root_head(gw, PRIVATE, key) == 404
    # Even on a public bucket a bad signature is not silently anonymous.
    assert actor.get(PUBLIC, "hello.txt") == (403, "InvalidAccessKeyId")


@pytest.mark.parametrize("sdk", ["cos", "boto"])
@pytest.mark.parametrize("cred", [ROOT, READONLY], ids=lambda c: c.name)
def test_wrong_secret_key_is_signature_does_not_match(gw, sdk, cred):
    actor = Actor(gw, sdk, cred.with_key(cred.key + "x"))
    assert actor.get(PRIVATE, "secret.txt") == (403, "SignatureDoesNotMatch")
    assert actor.list(PRIVATE, "") == (403, "SignatureDoesNotMatch")
    key = f"other/wrongkey-{uid()}"
    assert actor.put(PRIVATE, key) == (403, "SignatureDoesNotMatch")
    assert root_head(gw, PRIVATE, key) == 404
    assert actor.get(PUBLIC, "hello.txt") == (403, "SignatureDoesNotMatch")


@pytest.mark.parametrize("sdk", ["cos", "boto"])
def test_temporary_credential_needs_its_security_token(gw, sdk):
    key = f"other/temp-{uid()}.txt"
    # Without a token: refused.
    no_token = Actor(gw, sdk, Cred("temp-notoken", TEMP.id, TEMP.key))
    assert no_token.get(PRIVATE, "secret.txt") == DENIED
    assert no_token.put(PRIVATE, key) == DENIED
    assert root_head(gw, PRIVATE, key) == 404
    # With a wrong token: refused (400 InvalidToken, as S3 answers).
    wrong = Actor(gw, sdk, TEMP, token=TOKEN + "x")
    status, code = wrong.get(PRIVATE, "secret.txt")
    assert status in (400, 403) and code in ("InvalidToken", "AccessDenied"), (status, code)
    assert wrong.put(PRIVATE, key)[0] in (400, 403)
    assert root_head(gw, PRIVATE, key) == 404
    # With it (COS: CosConfig(Token=...), boto3: aws_session_token): accepted.
    good = Actor(gw, sdk, TEMP)
    assert good.get(PRIVATE, "secret.txt") == OK
    assert good.put(PRIVATE, key) == OK
    assert root_head(gw, PRIVATE, key) == 200


def test_permanent_credential_ignores_a_stray_security_token(gw):
    """Documents the current choice (sign/mod.rs check_security_token): a
    permanent credential's requests are not refused for carrying a token."""
    assert Actor(gw, "boto", READONLY, token="irrelevant").get(PRIVATE, "secret.txt") == OK


# --------------------------------------------------------------------------
# 2. A table of SDK-signed requests (>= 200 per SDK), then byte flips
# --------------------------------------------------------------------------

TABLE_KEYS = [
    "plain.txt", "with space.txt", "two  spaces.txt", "plus+sign.txt", "plus + space.txt",
    "tilde~x.txt", "100%.txt", "percent%20literal.txt", "percent%2Fslash.txt", "hash#frag.txt",
    "q?mark.txt", "amp&and.txt", "eq=sign.txt", "semi;colon,comma.txt", "quote'apos(paren).txt",
    "dollar$at@bang!.txt", "star*caret^pipe|.txt", "brackets[x]{y}.txt", "colon:x.txt",
    "视频/封面 图.jpg", "中文+文件=名&.txt", "emoji 😀🎬.mp4", "accent-é-ü-ß.txt",
    "deep/a/b/c/d/e/f/g/h/i/j.txt", "dots.a..b.txt", "unicode ＋ fullwidth.txt",
    "mixed/路径 with+all&the=odd?chars#.bin", "UPPER/Case/Key.TXT", "x", "trailing-dot.",
]
META_VALUES = [
    "plain", "a b+c=d&e%20f~g/h;i,j", "quote\"x'y", "colon: x", "=?UTF-8?B?5Lit5paH?=",
    "star*and(paren)", "#hash?q", "tab-free  double  spaces",
]
CONTENT_TYPES = ["text/plain; charset=utf-8", "application/x-odd+type", "video/mp4",
                 "image/jpeg", "application/octet-stream"]
CACHE_CONTROLS = ["max-age=60, private", "no-cache", "public, max-age=3600, s-maxage=7"]
DISPOSITIONS = ['attachment; filename="a b+c.txt"', "inline", "attachment; filename=x y z.bin",
                "attachment; filename*=UTF-8''%E4%B8%AD.txt"]


def _table_body(i: int, key: str) -> bytes:
    return f"body {i} of {key} ".encode() * (1 + i % 5)


def _run_cos_table(gw, prefix: str, client, failures: list) -> None:
    from support import hget

    def check(what, cond, detail=""):
        if not cond:
            failures.append(f"cos {what}: {detail}")

    def safely(what, fn):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001
            failures.append(f"cos {what}: {e!r}"[:400])
            return None

    for i, name in enumerate(TABLE_KEYS):
        key = prefix + name
        body = _table_body(i, key)
        meta = META_VALUES[i % len(META_VALUES)]
        ctype = CONTENT_TYPES[i % len(CONTENT_TYPES)]
        cache = CACHE_CONTROLS[i % len(CACHE_CONTROLS)]
        disp = DISPOSITIONS[i % len(DISPOSITIONS)]
        safely(f"put {key!r}", lambda: client.put_object(
            Bucket=PRIVATE, Key=key, Body=body, ContentType=ctype, CacheControl=cache,
            Metadata={"x-cos-meta-odd": meta, "x-cos-meta-Index": str(i)}))
        r = safely(f"get+params {key!r}", lambda: client.get_object(
            Bucket=PRIVATE, Key=key, ResponseContentType="text/x-odd; a=b c",
            ResponseContentDisposition=disp, ResponseCacheControl="no-store"))
        if r is not None:
            got = r["Body"].get_raw_stream().read()
            check(f"get body {key!r}", got == body, got[:40])
            check(f"get content-type {key!r}", hget(r, "Content-Type") == "text/x-odd; a=b c",
                  hget(r, "Content-Type"))
            check(f"get disposition {key!r}", hget(r, "Content-Disposition") == disp,
                  hget(r, "Content-Disposition"))
        r = safely(f"get range {key!r}", lambda: client.get_object(Bucket=PRIVATE, Key=key, Range="bytes=0-3"))
        if r is not None:
            check(f"range body {key!r}", r["Body"].get_raw_stream().read() == body[:4])
        h = safely(f"head {key!r}", lambda: client.head_object(Bucket=PRIVATE, Key=key))
        if h is not None:
            check(f"head meta {key!r}", hget(h, "x-cos-meta-odd") == meta, hget(h, "x-cos-meta-odd"))
            check(f"head content-type {key!r}", hget(h, "Content-Type") == ctype, hget(h, "Content-Type"))
            check(f"head cache-control {key!r}", hget(h, "Cache-Control") == cache, hget(h, "Cache-Control"))
        listed = safely(f"list {key!r}", lambda: client.list_objects(Bucket=PRIVATE, Prefix=key, MaxKeys=5))
        if listed is not None:
            keys = [c["Key"] for c in listed.get("Contents", [])]
            check(f"list {key!r}", key in keys, keys)
        if i % 3 == 0:   # multipart on a third of the keys
            mkey = key + ".mp"

            def mp():
                up = client.create_multipart_upload(Bucket=PRIVATE, Key=mkey, ContentType=ctype)["UploadId"]
                e1 = client.upload_part(Bucket=PRIVATE, Key=mkey, Body=body, PartNumber=1, UploadId=up)["ETag"]
                client.list_parts(Bucket=PRIVATE, Key=mkey, UploadId=up)
                client.complete_multipart_upload(Bucket=PRIVATE, Key=mkey, UploadId=up,
                                                 MultipartUpload={"Part": [{"ETag": e1, "PartNumber": 1}]})
                got = client.get_object(Bucket=PRIVATE, Key=mkey)["Body"].get_raw_stream().read()
                check(f"multipart body {mkey!r}", got == body)
                client.delete_object(Bucket=PRIVATE, Key=mkey)
            safely(f"multipart {mkey!r}", mp)
        safely(f"delete {key!r}", lambda: client.delete_object(Bucket=PRIVATE, Key=key))
        gone = outcome(client.head_object, Bucket=PRIVATE, Key=key)
        check(f"head after delete {key!r}", gone[0] == 404, gone)
    # Listing parameters: prefix / delimiter / max-keys / marker over a tree.
    tree = [prefix + f"tree/{d}/{n}" for d in ("a b", "c+d", "中") for n in ("1.txt", "2 x.txt", "3+y.txt")]
    for k in tree:
        safely(f"tree put {k!r}", lambda: client.put_object(Bucket=PRIVATE, Key=k, Body=b"t"))
    base = prefix + "tree/"
    r = safely("list delimiter", lambda: client.list_objects(Bucket=PRIVATE, Prefix=base, Delimiter="/"))
    if r is not None:
        cps = sorted(p["Prefix"] for p in r.get("CommonPrefixes", []))
        check("list delimiter", cps == sorted({base + d + "/" for d in ("a b", "c+d", "中")}), cps)
    seen, marker = [], ""
    for _ in range(12):
        r = safely("list marker page", lambda: client.list_objects(
            Bucket=PRIVATE, Prefix=base, MaxKeys=2, Marker=marker))
        if r is None:
            break
        page = [c["Key"] for c in r.get("Contents", [])]
        seen += page
        if r.get("IsTruncated") != "true":
            break
        marker = r.get("NextMarker") or page[-1]
    check("list marker pages", seen == sorted(tree), seen)
    for d in ("a b", "c+d", "中"):
        r = safely(f"list prefix {d!r}", lambda: client.list_objects(
            Bucket=PRIVATE, Prefix=f"{base}{d}/", Delimiter="/", MaxKeys=10))
        if r is not None:
            got = [c["Key"] for c in r.get("Contents", [])]
            check(f"list prefix {d!r}", got == sorted(k for k in tree if k.startswith(f"{base}{d}/")), got)
    for k in tree:
        safely(f"tree delete {k!r}", lambda: client.delete_object(Bucket=PRIVATE, Key=k))


def _run_boto_table(gw, prefix: str, client, failures: list) -> None:
    def check(what, cond, detail=""):
        if not cond:
            failures.append(f"boto {what}: {detail}")

    def safely(what, fn):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001
            failures.append(f"boto {what}: {e!r}"[:400])
            return None

    for i, name in enumerate(TABLE_KEYS):
        key = prefix + name
        body = _table_body(i, key)
        meta = META_VALUES[i % len(META_VALUES)]
        ctype = CONTENT_TYPES[i % len(CONTENT_TYPES)]
        cache = CACHE_CONTROLS[i % len(CACHE_CONTROLS)]
        disp = DISPOSITIONS[i % len(DISPOSITIONS)]
        safely(f"put {key!r}", lambda: client.put_object(
            Bucket=PRIVATE, Key=key, Body=body, ContentType=ctype, CacheControl=cache,
            Metadata={"odd": meta, "index": str(i)}))
        r = safely(f"get+params {key!r}", lambda: client.get_object(
            Bucket=PRIVATE, Key=key, ResponseContentType="text/x-odd; a=b c",
            ResponseContentDisposition=disp, ResponseCacheControl="no-store"))
        if r is not None:
            got = r["Body"].read()
            check(f"get body {key!r}", got == body, got[:40])
            check(f"get content-type {key!r}", r.get("ContentType") == "text/x-odd; a=b c", r.get("ContentType"))
            check(f"get disposition {key!r}", r.get("ContentDisposition") == disp, r.get("ContentDisposition"))
        r = safely(f"get range {key!r}", lambda: client.get_object(Bucket=PRIVATE, Key=key, Range="bytes=0-3"))
        if r is not None:
            check(f"range body {key!r}", r["Body"].read() == body[:4])
        h = safely(f"head {key!r}", lambda: client.head_object(Bucket=PRIVATE, Key=key))
        if h is not None:
            check(f"head meta {key!r}", h.get("Metadata", {}).get("odd") == meta, h.get("Metadata"))
            check(f"head content-type {key!r}", h.get("ContentType") == ctype, h.get("ContentType"))
            check(f"head cache-control {key!r}", h.get("CacheControl") == cache, h.get("CacheControl"))
        lister = client.list_objects if i % 2 else client.list_objects_v2
        listed = safely(f"list {key!r}", lambda: lister(Bucket=PRIVATE, Prefix=key, MaxKeys=5))
        if listed is not None:
            keys = [c["Key"] for c in listed.get("Contents", [])]
            check(f"list {key!r}", key in keys, keys)
        if i % 3 == 0:
            mkey = key + ".mp"

            def mp():
                up = client.create_multipart_upload(Bucket=PRIVATE, Key=mkey, ContentType=ctype)["UploadId"]
                e1 = client.upload_part(Bucket=PRIVATE, Key=mkey, Body=body, PartNumber=1, UploadId=up)["ETag"]
                client.list_parts(Bucket=PRIVATE, Key=mkey, UploadId=up)
                client.complete_multipart_upload(Bucket=PRIVATE, Key=mkey, UploadId=up,
                                                 MultipartUpload={"Parts": [{"ETag": e1, "PartNumber": 1}]})
                check(f"multipart body {mkey!r}", client.get_object(Bucket=PRIVATE, Key=mkey)["Body"].read() == body)
                client.delete_object(Bucket=PRIVATE, Key=mkey)
            safely(f"multipart {mkey!r}", mp)
        safely(f"delete {key!r}", lambda: client.delete_object(Bucket=PRIVATE, Key=key))
        gone = outcome(client.head_object, Bucket=PRIVATE, Key=key)
        check(f"head after delete {key!r}", gone[0] == 404, gone)
    tree = [prefix + f"tree/{d}/{n}" for d in ("a b", "c+d", "中") for n in ("1.txt", "2 x.txt", "3+y.txt")]
    for k in tree:
        safely(f"tree put {k!r}", lambda: client.put_object(Bucket=PRIVATE, Key=k, Body=b"t"))
    base = prefix + "tree/"
    r = safely("list delimiter", lambda: client.list_objects(Bucket=PRIVATE, Prefix=base, Delimiter="/"))
    if r is not None:
        cps = sorted(p["Prefix"] for p in r.get("CommonPrefixes", []))
        check("list delimiter", cps == sorted({base + d + "/" for d in ("a b", "c+d", "中")}), cps)
    seen, marker = [], ""
    for _ in range(12):
        r = safely("list marker page", lambda: client.list_objects(Bucket=PRIVATE, Prefix=base, MaxKeys=2,
                                                                  Marker=marker))
        if r is None:
            break
        page = [c["Key"] for c in r.get("Contents", [])]
        seen += page
        if not r.get("IsTruncated"):
            break
        marker = r.get("NextMarker") or page[-1]
    check("list marker pages", seen == sorted(tree), seen)
    seen, token = [], None
    for _ in range(12):
        kw = {"ContinuationToken": token} if token else {}
        r = safely("list v2 page", lambda: client.list_objects_v2(Bucket=PRIVATE, Prefix=base, MaxKeys=4, **kw))
        if r is None:
            break
        seen += [c["Key"] for c in r.get("Contents", [])]
        token = r.get("NextContinuationToken")
        if not token:
            break
    check("list v2 pages", seen == sorted(tree), seen)
    for k in tree:
        safely(f"tree delete {k!r}", lambda: client.delete_object(Bucket=PRIVATE, Key=k))


@pytest.mark.parametrize("sdk", ["cos", "boto"])
def test_sdk_signed_request_table_is_accepted_with_right_content(gw, sdk):
    """>= 200 requests signed by the SDK over methods, odd keys, query
    parameters and headers: every one accepted, every answer right."""
    failures: list[str] = []
    prefix = f"table-{sdk}-{uid()}/"
    if sdk == "cos":
        client = cos_for(gw.port, ROOT)
        sent = capture_cos(client)
        _run_cos_table(gw, prefix, client, failures)
        signed = [s for s in sent if s.headers.get("Authorization", "").startswith("q-sign-algorithm=sha1")]
    else:
        client = boto_for(gw.port, ROOT)
        sent = capture_boto(client)
        _run_boto_table(gw, prefix, client, failures)
        signed = [s for s in sent if s.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256")]
    support.REPORT_LINES.append(f"auth table: {len(signed)} requests signed by {sdk}, {len(failures)} failures")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:40])
    assert len(signed) >= 200, f"only {len(signed)} signed requests"
    assert len(signed) == len(sent)


def _alnum_outside_escapes(path: str, start: int) -> int:
    """Index of the first ASCII alphanumeric of path[start:] that is not part
    of a %XX escape."""
    i = start
    while i < len(path):
        if path[i] == "%":
            i += 3
            continue
        if path[i].isascii() and path[i].isalnum():
            return i
        i += 1
    raise ValueError(path)


def _flip_path(url: str, prefix: str) -> str:
    """Flips a character of the key part (after the prefix) of a URL's path."""
    parts = urlsplit(url)
    path = parts.path
    at = path.find(quote(prefix.rstrip("/"), safe="/-_.~"))
    assert at >= 0, (path, prefix)
    i = _alnum_outside_escapes(path, at + len(quote(prefix, safe="/-_.~")))
    return urlunsplit(parts._replace(path=flip_char(path, i)))


def _flip_query_value(url: str, name: str) -> str:
    parts = urlsplit(url)
    q = parts.query
    at = q.find(name + "=")
    assert at >= 0, (q, name)
    i = _alnum_outside_escapes(q, at + len(name) + 1)
    return urlunsplit(parts._replace(query=flip_char(q, i)))


def _flip_signature(auth: str, marker: str) -> str:
    at = auth.index(marker) + len(marker)
    return flip_char(auth, at + 5)


def _flip_header(headers: dict, name: str) -> dict:
    out = dict(headers)
    real = next(k for k in out if k.lower() == name.lower())
    out[real] = flip_in(out[real], 0)
    return out


FLIP_KEYS = ["with space.txt", "plus+sign.txt", "q?mark.txt", "amp&and.txt", "视频/封面 图.jpg",
             "emoji 😀🎬.mp4", "deep/a/b/c/d/e/f/g/h/i/j.txt", "100%.txt", "hash#frag.txt", "eq=sign.txt"]


def _no_expect(headers: dict) -> dict:
    return {k: v for k, v in headers.items() if k.lower() != "expect"}


@pytest.mark.parametrize("sdk", ["cos", "boto"])
@pytest.mark.parametrize("name", FLIP_KEYS)
def test_flipping_one_byte_of_a_signed_request_is_refused(gw, sdk, name):
    """Replays what the SDK sent: unchanged it works; one byte flipped in the
    signature, the key, a signed header or a signed parameter: 403
    SignatureDoesNotMatch, and a flipped PUT stores nothing."""
    prefix = f"flip-{sdk}-{uid()}/"
    key = prefix + name
    body = b"flip body " + name.encode()
    if sdk == "cos":
        client = cos_for(gw.port, ROOT, style="domain")
        sent = capture_cos(client)
        client.put_object(Bucket=PRIVATE, Key=key, Body=body, ContentType="text/plain",
                          Metadata={"x-cos-meta-flip": "value-one"})
        client.get_object(Bucket=PRIVATE, Key=key, ResponseContentType="text/odd",
                          ResponseContentDisposition="attachment; filename=x y.txt", Range="bytes=0-3")
        sig_marker, meta_header = "q-signature=", "x-cos-meta-flip"
    else:
        client = boto_for(gw.port, ROOT)
        sent = capture_boto(client)
        client.put_object(Bucket=PRIVATE, Key=key, Body=body, ContentType="text/plain",
                          Metadata={"flip": "value-one"})
        client.get_object(Bucket=PRIVATE, Key=key, ResponseContentType="text/odd",
                          ResponseContentDisposition="attachment; filename=x y.txt", Range="bytes=0-3")
        sig_marker, meta_header = "Signature=", "x-amz-meta-flip"
    put, get = sent[0], sent[1]
    assert put.method == "PUT" and get.method == "GET" and put.body == body
    put_headers = _no_expect(put.headers)
    session = requests.Session()

    def refused(r, what):
        assert (r.status_code, xml_code(r.text)) == (403, "SignatureDoesNotMatch"), (
            what, r.status_code, r.text[:300])

    # GET: control, then flips.
    r = get.replay(session)
    assert (r.status_code, r.content) == (206, body[:4]), r.text[:300]
    assert r.headers["Content-Type"] == "text/odd"
    refused(get.replay(session, headers=dict(get.headers, Authorization=_flip_signature(
        get.headers["Authorization"], sig_marker))), "GET signature")
    refused(get.replay(session, url=_flip_path(get.url, prefix)), "GET key")
    refused(get.replay(session, headers=_flip_header(get.headers, "Range")), "GET signed Range header")
    other_host = dict(get.headers, Host=f"localhost:{gw.port}")
    refused(get.replay(session, headers=other_host), "GET signed Host header")
    refused(get.replay(session, url=_flip_query_value(get.url, "response-content-type")),
            "GET signed response-content-type")
    refused(get.replay(session, url=_flip_query_value(get.url, "response-content-disposition")),
            "GET signed response-content-disposition")

    # PUT: remove the object, replay flipped (nothing may appear), then the control.
    # Each on a fresh connection: after a refused PUT the gateway may close the
    # connection without saying so (see test_refused_upload_...connection_close).
    root_delete = boto_for(gw.port, ROOT)
    root_delete.delete_object(Bucket=PRIVATE, Key=key)
    flipped_url = _flip_path(put.url, prefix)
    refused(put.replay(None, headers=dict(put_headers, Authorization=_flip_signature(
        put.headers["Authorization"], sig_marker))), "PUT signature")
    refused(put.replay(None, url=flipped_url), "PUT key")
    refused(put.replay(None, headers=_flip_header(put_headers, meta_header)), "PUT signed meta header")
    refused(put.replay(None, headers=_flip_header(put_headers, "Content-Type")), "PUT signed Content-Type")
    assert root_head(gw, PRIVATE, key) == 404
    flipped_key = urlsplit(flipped_url).path
    assert requests.get(gw.url + flipped_key, timeout=30).status_code == 403   # (anonymous: just no crash)
    r = put.replay(None, headers=put_headers)
    assert r.status_code == 200, r.text[:300]
    assert root_get(gw, PRIVATE, key) == body


# --------------------------------------------------------------------------
# 3. Pre-signed URLs with curl
# --------------------------------------------------------------------------

def curl(url: str, method: str = "GET", upload: bytes | None = None, tmp=None) -> tuple[int, bytes]:
    """(status, body) of curl fetching url, as a browser-like client would."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        out = f"{d}/out"
        cmd = ["curl", "-sS", "--globoff", "-o", out, "-w", "%{http_code}", "--max-time", "30"]
        if upload is not None:
            src = f"{d}/upload"
            with open(src, "wb") as f:
                f.write(upload)
            cmd += ["-T", src, "-H", "Expect:"]
        elif method == "HEAD":
            cmd += ["-I"]
        elif method != "GET":
            cmd += ["-X", method]
        cmd.append(url)
        p = subprocess.run(cmd, capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr
        with open(out, "rb") as f:
            return int(p.stdout.decode()), f.read()


def presign_cli(gw, key: str, *args: str) -> str:
    """`framegate presign KEY ...` against the test gateway's config."""
    p = subprocess.run(
        [str(gateway_binary()), "presign", "--config", str(gw.config), "--endpoint", gw.url, key, *args],
        capture_output=True, timeout=60, cwd=gw.workdir,
    )
    assert p.returncode == 0, p.stderr.decode()
    url = p.stdout.decode().strip()
    assert url.startswith(gw.url + "/"), url
    return url


PRESIGN_KEYS = ["presign/plain.txt", "presign/a b+c~d.txt", "presign/视频 封面+图.jpg",
                "presign/q?mark&amp=eq#hash%25.txt", "presign/emoji 🎬.mp4"]


@pytest.mark.parametrize("key", PRESIGN_KEYS)
@pytest.mark.parametrize("style", ["cos-default-bucket", "cos-path", "sigv4"])
def test_framegate_presign_get_and_put_urls_work_with_curl(gw, style, key):
    key = key.replace("presign/", f"presign-{uid()}/")
    extra = {"cos-default-bucket": [], "cos-path": ["--bucket", PRIVATE],
             "sigv4": ["--sigv4", "--bucket", PRIVATE]}[style]
    body = b"uploaded by curl to " + key.encode()
    put_url = presign_cli(gw, key, "--method", "PUT", "--expires", "120", *extra)
    assert curl(put_url, upload=body)[0] == 200
    assert root_get(gw, PRIVATE, key) == body
    get_url = presign_cli(gw, key, "--expires", "120", *extra)
    assert curl(get_url) == (200, body)
    # The GET URL is for GET only; anything else about it is not signed for PUT.
    status, text = curl(get_url, upload=b"overwrite")
    assert (status, xml_code(text.decode())) == (403, "SignatureDoesNotMatch")
    assert root_get(gw, PRIVATE, key) == body


def test_framegate_presign_with_extra_params_signs_them(gw):
    url = presign_cli(gw, "secret.txt", "--param", "response-content-type=text/x-odd",
                      "--param", "response-content-disposition=attachment; filename=a b.txt")
    p = subprocess.run(["curl", "-sS", "--globoff", "-D", "-", "-o", "/dev/null", url],
                       capture_output=True, timeout=30)
    head = p.stdout.decode().lower()
    assert head.startswith("http/1.1 200"), head
    assert "content-type: text/x-odd" in head
    assert 'content-disposition: attachment; filename=a b.txt' in head
    # Changing the signed parameter's value breaks the signature.
    assert curl(url.replace("text%2Fx-odd", "text%2Fx-oddx"))[0] == 403


@pytest.mark.parametrize("cred,key,allowed", [
    (SNAPSHOTTER, "videos/clip.mp4", True),
    (SNAPSHOTTER, "other/clip.mp4", False),
    (READONLY, "videos/clip.mp4", False),   # read is not enough
    (ROOT, "videos/clip.mp4", True),
], ids=["snapshotter-videos", "snapshotter-other", "readonly-videos", "root-videos"])
@pytest.mark.parametrize("style", ["cos", "sigv4"])
def test_framegate_presigned_snapshot_url_passes_auth_for_snapshot_credential(gw, cred, key, allowed, style):
    extra = ["--sigv4", "--bucket", PRIVATE] if style == "sigv4" else []
    url = presign_cli(gw, key, "--secret-id", cred.id, "--param", "ci-process=snapshot",
                      "--param", "time=3", *extra)
    assert "ci-process=snapshot" in url
    status, body = curl(url)
    if allowed:
        assert (status, body[:3]) == (200, JPEG_MAGIC), body[:300]
    else:
        assert (status, xml_code(body.decode())) == DENIED
    # The snapshot credential's URL without the snapshot parameters is a plain
    # GET, which it may not do: the signed parameters cannot be dropped either.
    if cred is SNAPSHOTTER:
        stripped = url.replace("ci-process=snapshot&", "").replace("&ci-process=snapshot", "")
        assert curl(stripped)[0] == 403


def test_framegate_presign_for_temporary_credential_carries_the_token(gw):
    url = presign_cli(gw, "secret.txt", "--secret-id", TEMP.id)
    assert "x-cos-security-token=" in url
    assert curl(url) == (200, b"top secret")
    no_token = "&".join(p for p in url.split("?", 1)[1].split("&") if not p.startswith("x-cos-security-token"))
    assert curl(url.split("?", 1)[0] + "?" + no_token)[0] == 403
    sig = presign_cli(gw, "secret.txt", "--secret-id", TEMP.id, "--sigv4", "--bucket", PRIVATE)
    assert "X-Amz-Security-Token=" in sig
    assert curl(sig) == (200, b"top secret")


@pytest.mark.parametrize("key", PRESIGN_KEYS)
def test_cos_sdk_presigned_urls_work_with_curl(gw, key):
    key = key.replace("presign/", f"cos-presign-{uid()}/")
    client = cos_for(gw.port, ROOT, style="domain")
    body = b"cos presigned put " + key.encode()
    put_url = client.get_presigned_url(Bucket=PRIVATE, Key=key, Method="PUT", Expired=120)
    assert curl(put_url, upload=body)[0] == 200
    assert root_get(gw, PRIVATE, key) == body
    assert curl(client.get_presigned_download_url(Bucket=PRIVATE, Key=key, Expired=120)) == (200, body)
    url = client.get_presigned_url(Bucket=PRIVATE, Key=key, Method="GET", Expired=120,
                                   Params={"response-content-disposition": "attachment; filename=a b.txt"})
    assert curl(url) == (200, body)
    head_url = client.get_presigned_url(Bucket=PRIVATE, Key=key, Method="HEAD", Expired=120)
    assert curl(head_url, method="HEAD")[0] == 200
    del_url = client.get_presigned_url(Bucket=PRIVATE, Key=key, Method="DELETE", Expired=120)
    # A GET URL does not authorize a DELETE.
    assert curl(url, method="DELETE")[0] == 403
    assert root_head(gw, PRIVATE, key) == 200
    assert curl(del_url, method="DELETE")[0] == 204
    assert root_head(gw, PRIVATE, key) == 404


@pytest.mark.parametrize("cred,key,allowed", [
    (SNAPSHOTTER, "videos/clip.mp4", True),
    (SNAPSHOTTER, "other/clip.mp4", False),
    (READONLY, "videos/clip.mp4", False),
], ids=["snapshotter-videos", "snapshotter-other", "readonly-videos"])
def test_cos_sdk_presigned_snapshot_url_passes_auth_for_snapshot_credential(gw, cred, key, allowed):
    client = cos_for(gw.port, cred, style="domain")
    url = client.get_presigned_url(Bucket=PRIVATE, Key=key, Method="GET", Expired=120,
                                   Params={"ci-process": "snapshot", "time": "3"})
    status, body = curl(url)
    if allowed:
        assert (status, body[:3]) == (200, JPEG_MAGIC), body[:300]
    else:
        assert (status, xml_code(body.decode())) == DENIED


@pytest.mark.parametrize("cred,key,allowed", [
    (ROOT, "videos/clip.mp4", True),
    (SNAPSHOTTER, "videos/clip.mp4", True),
    (SNAPSHOTTER, "other/clip.mp4", False),
    (READONLY, "videos/clip.mp4", False),
], ids=["root", "snapshotter-videos", "snapshotter-other", "readonly-videos"])
def test_ci_process_appended_to_a_presigned_get_is_authorized_as_a_snapshot(gw, cred, key,
                                                                           allowed):
    """COS's way: the SDK's pre-signed GET (q-url-param-list empty, the
    seed's "Request 2" shape) with `&ci-process=snapshot&time=3` appended is
    a snapshot, authorized as one: a credential allowed ci:GenerateSnapshot
    gets the picture, one allowed only cos:GetObject does not."""
    client = cos_for(gw.port, cred, style="domain")
    url = client.get_presigned_url(Bucket=PRIVATE, Key=key, Method="GET", Expired=120)
    assert "q-url-param-list=&" in url
    status, body = curl(url + "&ci-process=snapshot&time=3")
    if allowed:
        assert (status, body[:3]) == (200, JPEG_MAGIC), body[:300]
    else:
        assert (status, xml_code(body.decode())) == DENIED


def test_an_operator_may_require_a_signed_ci_process(workroot):
    """limits.require_signed_ci_process = true: the appended ci-process is
    refused (403), a URL that signs it still works."""
    workdir = workroot / f"authgw-signed-{uuid.uuid4().hex[:6]}"
    (workdir / "data").mkdir(parents=True)
    config = write_auth_config(workdir / "framegate.toml", workdir / "data", 60)
    text = config.read_text().replace("[limits]\n", "[limits]\nrequire_signed_ci_process = true\n")
    assert "require_signed_ci_process = true" in text
    config.write_text(text)
    g = Gateway(config, workdir, "authgw-signed").start()
    try:
        boto_for(g.port, ROOT).put_object(Bucket=PRIVATE, Key="videos/clip.mp4", Body=DEMO_MP4)
        client = cos_for(g.port, ROOT, style="domain")
        url = client.get_presigned_url(Bucket=PRIVATE, Key="videos/clip.mp4", Method="GET",
                                       Expired=120)
        assert curl(url + "&ci-process=snapshot&time=3")[0] == 403
        assert curl(url)[0] == 200
        signed = client.get_presigned_url(Bucket=PRIVATE, Key="videos/clip.mp4", Method="GET",
                                          Expired=120, Params={"ci-process": "snapshot",
                                                               "time": "3"})
        status, body = curl(signed)
        assert (status, body[:3]) == (200, JPEG_MAGIC), body[:300]
    finally:
        g.stop()


def test_cos_sdk_presigned_url_for_temporary_credential_with_token_param(gw):
    client = cos_for(gw.port, TEMP, style="domain")
    url = client.get_presigned_url(Bucket=PRIVATE, Key="secret.txt", Method="GET", Expired=120,
                                   Params={"x-cos-security-token": TOKEN})
    assert curl(url) == (200, b"top secret")
    bare = client.get_presigned_url(Bucket=PRIVATE, Key="secret.txt", Method="GET", Expired=120)
    assert curl(bare)[0] == 403


@pytest.mark.parametrize("key", PRESIGN_KEYS)
def test_boto3_presigned_urls_work_with_curl(gw, key):
    key = key.replace("presign/", f"boto-presign-{uid()}/")
    s3 = boto_for(gw.port, ROOT, signature_version="s3v4")
    body = b"boto presigned put " + key.encode()
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": PRIVATE, "Key": key}, ExpiresIn=120)
    assert curl(put_url, upload=body)[0] == 200
    assert root_get(gw, PRIVATE, key) == body
    get_url = s3.generate_presigned_url("get_object", ExpiresIn=120, Params={
        "Bucket": PRIVATE, "Key": key, "ResponseContentType": "text/x-odd",
        "ResponseContentDisposition": "attachment; filename=a b.txt"})
    assert curl(get_url) == (200, body)
    assert curl(_flip_query_value(get_url, "response-content-type"))[0] == 403
    assert curl(_flip_query_value(get_url, "X-Amz-Signature")) [0] == 403
    del_url = s3.generate_presigned_url("delete_object", Params={"Bucket": PRIVATE, "Key": key}, ExpiresIn=120)
    assert curl(del_url, method="DELETE")[0] == 204
    assert root_head(gw, PRIVATE, key) == 404


def test_boto3_default_sigv2_presigned_url_is_verified_or_refused_never_ignored(gw):
    """boto3's generate_presigned_url defaults to SigV2 query auth
    (AWSAccessKeyId/Signature/Expires; test_more_operations relies on it).
    The gateway must either verify it (valid: 200 on the private bucket;
    forged: 403) or refuse it as unsupported (400, like S3 in a V4-only
    region: InvalidRequest "Please use AWS4-HMAC-SHA256"). It must not treat
    it as anonymous: then a valid URL gets a misleading 403 AccessDenied on a
    private bucket, and a forged one is served on a public bucket."""
    s3 = boto_for(gw.port, ROOT)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": PRIVATE, "Key": "secret.txt"}, ExpiresIn=120)
    assert "AWSAccessKeyId=" in url and "X-Amz-Signature" not in url
    valid = curl(url)
    forged_url = s3.generate_presigned_url("get_object", Params={"Bucket": PUBLIC, "Key": "hello.txt"},
                                           ExpiresIn=120).replace("Signature=", "Signature=AAAA")
    forged = curl(forged_url)
    verified = valid == (200, b"top secret") and forged[0] == 403
    refused = valid[0] == 400 and forged[0] == 400
    assert verified or refused, (
        f"valid SigV2 URL on private bucket: {valid[0]} {valid[1][:120]!r}; "
        f"forged SigV2 URL on public bucket: {forged[0]} {forged[1][:60]!r}")


def test_presigned_urls_of_a_credential_obey_its_policy(gw):
    """A valid pre-signed URL grants no more than its credential."""
    ro = boto_for(gw.port, READONLY, signature_version="s3v4")
    key = f"other/ro-presign-{uid()}.txt"
    put = ro.generate_presigned_url("put_object", Params={"Bucket": PRIVATE, "Key": key}, ExpiresIn=120)
    status, body = curl(put, upload=b"nope")
    assert (status, xml_code(body.decode())) == DENIED
    assert root_head(gw, PRIVATE, key) == 404
    cos_ro = cos_for(gw.port, READONLY, style="domain")
    put = cos_ro.get_presigned_url(Bucket=PRIVATE, Key=key, Method="PUT", Expired=120)
    status, body = curl(put, upload=b"nope")
    assert (status, xml_code(body.decode())) == DENIED
    assert root_head(gw, PRIVATE, key) == 404
    assert curl(cos_ro.get_presigned_download_url(Bucket=PRIVATE, Key="secret.txt"))[0] == 200


def test_expired_presigned_urls_are_refused(strict_gw):
    """clock_skew_secs = 1: URLs valid for 2 s work at once and are refused
    (403 AccessDenied) once expiry + skew has passed."""
    gw = strict_gw
    makers = {
        "framegate-cos": lambda: presign_cli(gw, "expiry.txt", "--expires", "2"),
        "framegate-sigv4": lambda: presign_cli(gw, "expiry.txt", "--expires", "2", "--sigv4", "--bucket", PRIVATE),
        "cos-sdk": lambda: cos_for(gw.port, ROOT, style="domain").get_presigned_download_url(
            Bucket=PRIVATE, Key="expiry.txt", Expired=2),
        "boto3": lambda: boto_for(gw.port, ROOT, signature_version="s3v4").generate_presigned_url(
            "get_object", Params={"Bucket": PRIVATE, "Key": "expiry.txt"}, ExpiresIn=2),
    }
    urls = {}
    for name, make in makers.items():
        urls[name] = make()
        assert curl(urls[name]) == (200, b"expiry body"), name
    # Every URL was signed before now: valid until (signing second + 2) + 1 s
    # skew, whole seconds on both sides.
    time.sleep(2 + 1 + 2.2)
    for name, url in urls.items():
        status, body = curl(url)
        assert (status, xml_code(body.decode())) == DENIED, (name, status, body[:300])
        assert b"expired" in body.lower(), body[:300]


def test_not_yet_valid_presigned_urls_are_refused(strict_gw):
    """URLs signed validly by the SDKs' own signers for a window that starts
    10 minutes from now: 403 AccessDenied; the same signers now: 200."""
    import datetime

    import botocore.auth
    from qcloud_cos import cos_auth

    gw = strict_gw
    future = time.time() + 600
    client = cos_for(gw.port, ROOT, style="domain")
    with mock.patch.object(cos_auth, "time", SimpleNamespace(time=lambda: future)):
        cos_url = client.get_presigned_download_url(Bucket=PRIVATE, Key="expiry.txt", Expired=300)
    s3 = boto_for(gw.port, ROOT, signature_version="s3v4")
    later = datetime.datetime.fromtimestamp(future, datetime.timezone.utc).replace(tzinfo=None)
    with mock.patch.object(botocore.auth, "get_current_datetime", lambda: later):
        boto_url = s3.generate_presigned_url("get_object", Params={"Bucket": PRIVATE, "Key": "expiry.txt"},
                                             ExpiresIn=300)
    # By hand, with the documented algorithm (API.md section 2).
    now = int(time.time())
    host = f"127.0.0.1:{gw.port}"

    def hand(start, end):
        q = cos_sign("get", "/expiry.txt", {}, {"host": host}, ROOT, start, end)
        return f"{gw.url}/expiry.txt?" + urlencode(dict(p.split("=", 1) for p in q.split("&")))

    assert curl(hand(now - 5, now + 300)) == (200, b"expiry body")   # the hand signer is right
    for name, url in (("cos-sdk", cos_url), ("boto3", boto_url), ("hand", hand(now + 600, now + 900))):
        status, body = curl(url)
        assert (status, xml_code(body.decode())) == DENIED, (name, status, body[:300])
    # Just inside the skew (start = now + 1 - with skew 1 - is accepted).
    assert curl(hand(now, now + 300))[0] == 200


# --------------------------------------------------------------------------
# 4. API 3.0 (TC3-HMAC-SHA256) through tencentcloud-sdk-python-vod
# --------------------------------------------------------------------------

def vod_client(gw, secret_id: str, secret_key: str, token: str | None = None):
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.vod.v20180717 import vod_client as vc

    profile = ClientProfile(httpProfile=HttpProfile(endpoint=f"127.0.0.1:{gw.port}", protocol="http",
                                                    reqTimeout=30))
    return vc.VodClient(credential.Credential(secret_id, secret_key, token), REGION, profile)


def vod_call(client, action: str = "DescribeSnapshotByTimeOffsetTemplates"):
    """(response, error code): the SDK's parsed response, or the API 3.0
    error code it raised."""
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
    from tencentcloud.vod.v20180717 import models

    request = getattr(models, action + "Request")()
    try:
        return getattr(client, action)(request), None
    except TencentCloudSDKException as e:
        return None, e.get_code()


@pytest.mark.parametrize("action,field", [
    ("DescribeSnapshotByTimeOffsetTemplates", "SnapshotByTimeOffsetTemplateSet"),
    ("DescribeSampleSnapshotTemplates", "SampleSnapshotTemplateSet"),
    ("DescribeImageSpriteTemplates", "ImageSpriteTemplateSet"),
])
def test_vod_sdk_lists_templates_with_a_valid_tc3_signature(gw, action, field):
    resp, err = vod_call(vod_client(gw, ROOT.id, ROOT.key), action)
    assert err is None, err
    # The read-only presets (Definition 10) at least.
    assert resp.TotalCount >= 1
    assert 10 in [t.Definition for t in getattr(resp, field)]
    assert resp.RequestId


def test_vod_sdk_wrong_secret_key_is_signature_failure(gw):
    assert vod_call(vod_client(gw, ROOT.id, ROOT.key + "x")) == (None, "AuthFailure.SignatureFailure")


def test_vod_sdk_unknown_secret_id_is_secret_id_not_found(gw):
    assert vod_call(vod_client(gw, UNKNOWN.id, UNKNOWN.key)) == (None, "AuthFailure.SecretIdNotFound")


@pytest.mark.parametrize("cred", [READONLY, UPLOADER, SNAPSHOTTER], ids=lambda c: c.name)
def test_vod_sdk_credential_without_vod_grant_is_unauthorized(gw, cred):
    assert vod_call(vod_client(gw, cred.id, cred.key)) == (None, "UnauthorizedOperation")


def test_vod_sdk_temporary_credential_needs_its_token(gw):
    assert vod_call(vod_client(gw, TEMP.id, TEMP.key, TOKEN))[1] is None
    assert vod_call(vod_client(gw, TEMP.id, TEMP.key)) == (None, "AuthFailure.TokenFailure")
    assert vod_call(vod_client(gw, TEMP.id, TEMP.key, TOKEN + "x")) == (None, "AuthFailure.TokenFailure")


def _tc3_capture(gw):
    """What the VOD SDK sends for DescribeSnapshotByTimeOffsetTemplates."""
    from tencentcloud.common.http import request as tc_request

    sent = {}
    real = tc_request.ApiRequest.send_request

    def spy(self, req_inter):
        sent["headers"] = dict(req_inter.header)
        sent["body"] = req_inter.data
        return real(self, req_inter)

    with mock.patch.object(tc_request.ApiRequest, "send_request", spy):
        resp, err = vod_call(vod_client(gw, ROOT.id, ROOT.key))
    assert err is None
    return sent


def test_tc3_flipped_body_header_or_signature_is_signature_failure(gw):
    """Replays the VOD SDK's request: unchanged it works; one byte changed in
    the body, the signed Content-Type, or the signature: SignatureFailure."""
    sent = _tc3_capture(gw)
    headers = {k: v for k, v in sent["headers"].items()}
    body = sent["body"].encode() if isinstance(sent["body"], str) else sent["body"]

    def call(h, b):
        r = requests.post(gw.url + "/", headers=h, data=b, timeout=30)
        assert r.status_code == 200
        resp = r.json()["Response"]
        return resp.get("Error", {}).get("Code")

    assert call(headers, body) is None
    assert call(headers, body.replace(b"{", b"{ ", 1) if body else b" ") == "AuthFailure.SignatureFailure"
    auth = headers["Authorization"]
    assert call(dict(headers, Authorization=_flip_signature(auth, "Signature=")), body) == \
        "AuthFailure.SignatureFailure"
    ct = next(k for k in headers if k.lower() == "content-type")
    assert call(dict(headers, **{ct: headers[ct] + "x"}), body) == "AuthFailure.SignatureFailure"


@pytest.mark.parametrize("offset", [-3600, 3600], ids=["an-hour-ago", "an-hour-ahead"])
def test_vod_sdk_request_with_stale_timestamp_is_signature_expire(gw, offset):
    """X-TC-Timestamp an hour off (the SDK signing with a skewed clock):
    AuthFailure.SignatureExpire."""
    from tencentcloud.common import abstract_client

    skewed = time.time() + offset
    with mock.patch.object(abstract_client, "time", SimpleNamespace(time=lambda: skewed)):
        assert vod_call(vod_client(gw, ROOT.id, ROOT.key)) == (None, "AuthFailure.SignatureExpire")


# --------------------------------------------------------------------------
# 5. SigV4 streaming uploads (aws-chunked)
# --------------------------------------------------------------------------
# botocore (1.44) never sends STREAMING-AWS4-HMAC-SHA256-PAYLOAD: over http it
# signs the whole payload's SHA-256, and its only streaming form is
# STREAMING-UNSIGNED-PAYLOAD-TRAILER. So the seed request is signed by
# botocore's S3SigV4Auth with the streaming marker as payload hash, and the
# chunk signatures are chained by hand per the AWS documentation.

CHUNKS = [bytes([65 + i]) * 65536 for i in range(3)] + [b"tail bytes \xf0\x9f\x8e\xac"]


def _streaming_put(gw, key: str, chunks: list[bytes], cred: Cred = ROOT, tamper=None,
                   decoded_len: int | None = None, query: str = ""):
    url = f"{gw.url}/{PRIVATE}/{quote(key)}{query}"
    total = sum(len(c) for c in chunks)
    headers = sigv4_sign("PUT", url, cred, payload_hash=STREAMING, headers={
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(total if decoded_len is None else decoded_len),
        "Content-Type": "application/x-streamed",
    })
    body = aws_chunked(chunks, headers, cred.key)
    if tamper:
        body = tamper(body)
    headers["Content-Length"] = str(len(body))
    return requests.put(url, data=body, headers=headers, timeout=60)


def test_sigv4_streaming_upload_stores_the_decoded_content(gw):
    key = f"other/streamed-{uid()}.bin"
    r = _streaming_put(gw, key, CHUNKS)
    assert r.status_code == 200, r.text
    assert root_get(gw, PRIVATE, key) == b"".join(CHUNKS)
    head = boto_for(gw.port, ROOT).head_object(Bucket=PRIVATE, Key=key)
    assert head["ContentLength"] == sum(map(len, CHUNKS))
    assert head["ContentType"] == "application/x-streamed"
    # aws-chunked is a transfer framing, not the object's encoding.
    assert "aws-chunked" not in (head.get("ContentEncoding") or "")


def test_sigv4_streaming_upload_part(gw):
    key = f"other/streamed-mp-{uid()}.bin"
    root = boto_for(gw.port, ROOT)
    up = root.create_multipart_upload(Bucket=PRIVATE, Key=key)["UploadId"]
    r = _streaming_put(gw, key, CHUNKS, query=f"?partNumber=1&uploadId={up}")
    assert r.status_code == 200, r.text
    root.complete_multipart_upload(Bucket=PRIVATE, Key=key, UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": r.headers["ETag"]}]})
    assert root_get(gw, PRIVATE, key) == b"".join(CHUNKS)


def _flip_chunk_data(body: bytes) -> bytes:
    at = body.index(b"B" * 100) + 50          # inside the second chunk's data
    return body[:at] + b"b" + body[at + 1:]


def _flip_chunk_signature(body: bytes) -> bytes:
    at = body.index(b"chunk-signature=", 100) + len(b"chunk-signature=") + 3
    c = body[at:at + 1]
    return body[:at] + (b"0" if c != b"0" else b"1") + body[at + 1:]


def _drop_final_chunk(body: bytes) -> bytes:
    return body[:body.rindex(b"0;chunk-signature=")]


def _swap_chunks(body: bytes) -> bytes:
    # Exchange the data of chunks 1 and 2 (same length), keeping signatures.
    a, b = body.index(b"A" * 65536), body.index(b"B" * 65536)
    return body[:a] + b"B" * 65536 + body[a + 65536:b] + b"A" * 65536 + body[b + 65536:]


@pytest.mark.parametrize("tamper", [_flip_chunk_data, _flip_chunk_signature, _drop_final_chunk, _swap_chunks],
                         ids=["flipped-data-byte", "flipped-chunk-signature", "missing-final-chunk",
                              "reordered-chunks"])
def test_tampered_sigv4_streaming_upload_is_refused_and_stores_nothing(gw, tamper):
    key = f"other/tampered-{uid()}.bin"
    r = _streaming_put(gw, key, CHUNKS, tamper=tamper)
    assert r.status_code in (400, 403), (r.status_code, r.text[:300])
    assert xml_code(r.text) in ("SignatureDoesNotMatch", "InvalidRequest", "IncompleteBody",
                                "InvalidArgument", "AccessDenied"), r.text[:300]
    assert root_head(gw, PRIVATE, key) == 404
    # Nor does it replace an existing object.
    root_put(gw, PRIVATE, key, b"original")
    r = _streaming_put(gw, key, CHUNKS, tamper=tamper)
    assert r.status_code in (400, 403)
    assert root_get(gw, PRIVATE, key) == b"original"


def test_sigv4_streaming_upload_with_wrong_decoded_length_is_refused(gw):
    key = f"other/badlen-{uid()}.bin"
    r = _streaming_put(gw, key, CHUNKS, decoded_len=sum(map(len, CHUNKS)) + 1)
    assert r.status_code == 400, r.text[:300]
    assert root_head(gw, PRIVATE, key) == 404


def test_sigv4_streaming_upload_signed_with_wrong_secret_is_refused(gw):
    key = f"other/badseed-{uid()}.bin"
    r = _streaming_put(gw, key, CHUNKS, cred=ROOT.with_key("not-the-key"))
    assert (r.status_code, xml_code(r.text)) == (403, "SignatureDoesNotMatch")
    assert root_head(gw, PRIVATE, key) == 404


def test_sigv4_streaming_upload_is_subject_to_policy(gw):
    r = _streaming_put(gw, f"other/ro-streamed-{uid()}.bin", CHUNKS, cred=READONLY)
    assert (r.status_code, xml_code(r.text)) == DENIED
    key = f"uploads/streamed-{uid()}.bin"
    r = _streaming_put(gw, key, CHUNKS, cred=UPLOADER)
    assert r.status_code == 200, r.text[:300]
    assert root_get(gw, PRIVATE, key) == b"".join(CHUNKS)


def _unsigned_trailer_put(gw, key: str, data: bytes, crc_of: bytes):
    import base64
    import zlib

    url = f"{gw.url}/{PRIVATE}/{quote(key)}"
    headers = sigv4_sign("PUT", url, ROOT, payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER", headers={
        "Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
        "x-amz-trailer": "x-amz-checksum-crc32"})
    crc = base64.b64encode(zlib.crc32(crc_of).to_bytes(4, "big")).decode()
    body = (f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n"
            + f"x-amz-checksum-crc32:{crc}\r\n\r\n".encode())
    headers["Content-Length"] = str(len(body))
    return requests.put(url, data=body, headers=headers, timeout=60)


def test_unsigned_trailer_streaming_upload_checks_the_trailer_checksum(gw):
    """STREAMING-UNSIGNED-PAYLOAD-TRAILER (what botocore sends over https):
    right CRC32 trailer stores the data, a wrong one stores nothing."""
    key = f"other/trailer-{uid()}.bin"
    data = b"trailer data " * 1000
    r = _unsigned_trailer_put(gw, key, data, data)
    assert r.status_code == 200, r.text[:300]
    assert root_get(gw, PRIVATE, key) == data
    bad = f"other/trailer-bad-{uid()}.bin"
    r = _unsigned_trailer_put(gw, bad, data, data + b"x")
    assert r.status_code == 400, r.text[:300]
    assert root_head(gw, PRIVATE, bad) == 404


# --------------------------------------------------------------------------
# 6. Denials leave nothing behind, and happen before any storage work
# --------------------------------------------------------------------------

def _denied_writers(gw):
    """(name, put(key, body) -> status) for every way a PUT can be refused."""
    s3v4 = dict(signature_version="s3v4")
    return [
        ("policy-cos", lambda k, b: outcome(cos_for(gw.port, READONLY).put_object, Bucket=PRIVATE, Key=k, Body=b)[0]),
        ("policy-boto", lambda k, b: outcome(boto_for(gw.port, READONLY).put_object, Bucket=PRIVATE, Key=k, Body=b)[0]),
        ("anonymous", lambda k, b: requests.put(f"{gw.url}/{PRIVATE}/{quote(k)}", data=b, timeout=30).status_code),
        ("unknown-key", lambda k, b: outcome(boto_for(gw.port, UNKNOWN).put_object, Bucket=PRIVATE, Key=k, Body=b)[0]),
        ("wrong-secret", lambda k, b: outcome(cos_for(gw.port, ROOT.with_key("nope")).put_object,
                                              Bucket=PRIVATE, Key=k, Body=b)[0]),
        ("missing-token", lambda k, b: outcome(boto_for(gw.port, Cred("t", TEMP.id, TEMP.key)).put_object,
                                               Bucket=PRIVATE, Key=k, Body=b)[0]),
        ("presigned-get-used-for-put", lambda k, b: curl(boto_for(gw.port, ROOT, **s3v4).generate_presigned_url(
            "get_object", Params={"Bucket": PRIVATE, "Key": k}, ExpiresIn=60), upload=b)[0]),
    ]


def test_denied_puts_create_nothing_and_overwrite_nothing(gw):
    for name, put in _denied_writers(gw):
        key = f"other/denied-{name}-{uid()}.txt"
        assert put(key, b"intruder") in (400, 403), name
        assert root_head(gw, PRIVATE, key) == 404, name
        root_put(gw, PRIVATE, key, b"original")
        assert put(key, b"intruder") in (400, 403), name
        assert root_get(gw, PRIVATE, key) == b"original", name


def test_denied_deletes_remove_nothing(gw):
    key = f"other/keep-{uid()}.txt"
    root_put(gw, PRIVATE, key, b"keep me")
    attempts = {
        "policy-cos": lambda: outcome(cos_for(gw.port, READONLY).delete_object, Bucket=PRIVATE, Key=key),
        "policy-boto": lambda: outcome(boto_for(gw.port, UPLOADER).delete_object, Bucket=PRIVATE, Key=key),
        "anonymous": lambda: (requests.delete(f"{gw.url}/{PRIVATE}/{key}", timeout=30).status_code, None),
        "wrong-secret": lambda: outcome(boto_for(gw.port, ROOT.with_key("nope")).delete_object,
                                        Bucket=PRIVATE, Key=key),
        "unknown-key": lambda: outcome(cos_for(gw.port, UNKNOWN).delete_object, Bucket=PRIVATE, Key=key),
        "snapshot-cred": lambda: outcome(cos_for(gw.port, SNAPSHOTTER).delete_object, Bucket=PRIVATE,
                                         Key="videos/clip.mp4"),
    }
    for name, attempt in attempts.items():
        assert attempt()[0] == 403, name
    assert root_get(gw, PRIVATE, key) == b"keep me"
    assert root_get(gw, PRIVATE, "videos/clip.mp4") == SEED_BODY[(PRIVATE, "videos/clip.mp4")]


def test_body_not_matching_signed_sha256_is_refused_and_stores_nothing(gw):
    key = f"other/sha-{uid()}.bin"
    url = f"{gw.url}/{PRIVATE}/{key}"
    import hashlib

    headers = sigv4_sign("PUT", url, ROOT, payload_hash=hashlib.sha256(b"signed body").hexdigest())
    r = requests.put(url, data=b"other body!", headers=headers, timeout=30)
    assert (r.status_code, xml_code(r.text)) == (400, "XAmzContentSHA256Mismatch"), r.text[:300]
    assert root_head(gw, PRIVATE, key) == 404
    headers = sigv4_sign("PUT", url, ROOT, payload_hash=hashlib.sha256(b"signed body").hexdigest())
    assert requests.put(url, data=b"signed body", headers=headers, timeout=30).status_code == 200
    assert root_get(gw, PRIVATE, key) == b"signed body"


@pytest.mark.parametrize("who", ["anonymous", "readonly", "unknown", "wrong-secret"])
def test_denied_put_with_expect_100_continue_is_answered_before_the_body(gw, who):
    """Auth happens before the body is read: a refused PUT announcing 1 GiB
    with Expect: 100-continue gets its final 403 without a 100 Continue and
    without sending a byte of the body."""
    import socket

    path = f"/{PRIVATE}/other/expect-{uid()}.bin"
    headers = {"Host": f"127.0.0.1:{gw.port}", "Content-Length": str(1 << 30), "Expect": "100-continue"}
    if who != "anonymous":
        cred = {"readonly": READONLY, "unknown": UNKNOWN, "wrong-secret": ROOT.with_key("x")}[who]
        headers.update(sigv4_sign("PUT", gw.url + path, cred, payload_hash="UNSIGNED-PAYLOAD",
                                  headers={"Content-Length": str(1 << 30), "Expect": "100-continue"}))
    head = f"PUT {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(head.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    status_line = data.split(b"\r\n", 1)[0].decode()
    assert status_line.startswith("HTTP/1.1 403"), status_line


@pytest.mark.parametrize("cred", [None, PUBLISHER, UPLOADER, SNAPSHOTTER], ids=lambda c: c.name if c else "anonymous")
def test_denied_requests_do_not_reveal_whether_a_key_exists(gw, cred):
    """A caller without read access gets the same 403 for an existing and a
    missing key (no existence oracle; COS/S3 answer 403 without
    s3:ListBucket)."""
    for sdk in ("cos", "boto"):
        actor = Actor(gw, sdk, cred)
        existing = actor.get(PRIVATE, "secret.txt")
        missing = actor.get(PRIVATE, f"no-such-{uid()}.txt")
        assert existing == missing == DENIED, (sdk, existing, missing)
        assert actor.head(PRIVATE, "secret.txt")[0] == actor.head(PRIVATE, f"nope-{uid()}")[0] == 403


# --------------------------------------------------------------------------
# Unsigned additions to signed requests
# --------------------------------------------------------------------------

def test_sigv4_presigned_put_refuses_unsigned_amz_headers(gw):
    """S3 refuses a pre-signed request carrying x-amz-* headers that are not
    in X-Amz-SignedHeaders (403 AccessDenied, "There were headers present in
    the request which were not signed"). Otherwise a pre-signed upload URL
    handed to a browser becomes, with x-amz-copy-source, a copy of any object
    the signer can read."""
    s3 = boto_for(gw.port, ROOT, signature_version="s3v4")
    key = f"uploads/avatar-{uid()}.jpg"
    url = s3.generate_presigned_url("put_object", Params={"Bucket": PRIVATE, "Key": key}, ExpiresIn=120)
    r = requests.put(url, data=b"", headers={"x-amz-copy-source": f"{PRIVATE}/secret.txt"}, timeout=30)
    copied = root_get(gw, PRIVATE, key) if root_head(gw, PRIVATE, key) == 200 else None
    assert (r.status_code, copied) == (403, None), (r.status_code, r.text[:200], copied)
    meta_key = f"uploads/meta-{uid()}.jpg"
    url = s3.generate_presigned_url("put_object", Params={"Bucket": PRIVATE, "Key": meta_key}, ExpiresIn=120)
    r = requests.put(url, data=b"x", headers={"x-amz-meta-injected": "1"}, timeout=30)
    assert r.status_code == 403, r.text[:200]
    assert root_head(gw, PRIVATE, meta_key) == 404


def test_cos_presigned_put_is_not_turned_into_a_copy_by_an_unsigned_copy_source(gw):
    """A COS pre-signed PUT URL signs method, key and host only. Honouring an
    unsigned x-cos-copy-source header turns "upload to uploads/x" into "copy
    any object the signer can read to uploads/x": the operation changes
    without the signer's consent. Expected: refused (403), nothing copied."""
    client = cos_for(gw.port, ROOT, style="domain")
    key = f"uploads/avatar-{uid()}.jpg"
    url = client.get_presigned_url(Bucket=PRIVATE, Key=key, Method="PUT", Expired=120)
    r = requests.put(url, data=b"", timeout=30, headers={
        "x-cos-copy-source": f"{PRIVATE}.cos.{REGION}.myqcloud.com/secret.txt"})
    copied = root_get(gw, PRIVATE, key) if root_head(gw, PRIVATE, key) == 200 else None
    assert (r.status_code, copied) == (403, None), (r.status_code, r.text[:200], copied)
    # Control: the URL is fine for what it was made for.
    assert requests.put(url, data=b"avatar", timeout=30).status_code == 200
    assert root_get(gw, PRIVATE, key) == b"avatar"


def test_sigv4_header_signed_request_refuses_unsigned_amz_headers(gw):
    """Header form: boto3's PUT replayed with one extra x-amz-meta-* header
    that is not in SignedHeaders: 403, nothing stored."""
    s3 = boto_for(gw.port, ROOT)
    sent = capture_boto(s3)
    key = f"other/unsigned-hdr-{uid()}.txt"
    s3.put_object(Bucket=PRIVATE, Key=key, Body=b"signed")
    s3.delete_object(Bucket=PRIVATE, Key=key)
    put = sent[0]
    r = put.replay(headers=dict(_no_expect(put.headers), **{"x-amz-meta-injected": "1"}))
    assert r.status_code == 403, r.text[:200]
    assert root_head(gw, PRIVATE, key) == 404


def test_refused_upload_response_announces_connection_close_when_the_body_is_left_unread(gw):
    """A PUT refused before its body is read (here: anonymous, 256 KiB): the
    gateway may close the connection rather than drain the body, but then
    the 403 must say `Connection: close`. Otherwise keep-alive clients
    (urllib3 under boto3, the COS SDK, requests) reuse the dead connection
    and the *next* request fails with RemoteDisconnected / BrokenPipe."""
    import socket

    body = b"x" * (256 * 1024)
    head = (f"PUT /{PRIVATE}/other/conn-{uid()}.bin HTTP/1.1\r\nHost: 127.0.0.1:{gw.port}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(head)
        try:
            s.sendall(body)
        except OSError:
            pass
        data = b""
        while b"</Error>" not in data:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        response_head = data.split(b"\r\n\r\n", 1)[0].decode().lower()
        assert response_head.startswith("http/1.1 403"), response_head
        announced_close = "\r\nconnection: close" in response_head
        # Is the connection still usable for a second request?
        try:
            time.sleep(0.2)
            s.sendall(f"GET /{PUBLIC}/hello.txt HTTP/1.1\r\nHost: 127.0.0.1:{gw.port}\r\n\r\n".encode())
            second = s.recv(65536)
        except OSError:
            second = b""
    usable = second.startswith(b"HTTP/1.1 200")
    assert usable or announced_close, (
        f"connection closed after the 403 without `Connection: close`:\n{response_head}")


def test_api3_accepts_only_tc3_signatures(gw):
    """API 3.0 is TC3-HMAC-SHA256 only (API.md 2.3). A COS q-sign or a SigV4
    signature covers neither X-TC-Action nor the JSON body (q-sign signs no
    body; UNSIGNED-PAYLOAD neither), so accepting them lets any COS signature
    over `post /` (e.g. a pre-signed POST URL) call every API 3.0 action with
    any parameters for its whole validity window."""
    now = int(time.time())
    url = gw.url + "/"
    tc = {"X-TC-Action": "DescribeSnapshotByTimeOffsetTemplates", "X-TC-Version": "2018-07-17",
          "Content-Type": "application/json"}
    cos_auth = cos_sign("post", "/", {}, {}, ROOT, now - 10, now + 3600)
    attempts = {
        "cos-header": dict(headers=dict(tc, Authorization=cos_auth)),
        "cos-presigned-url": dict(headers=tc, params=dict(p.split("=", 1) for p in cos_auth.split("&"))),
        "sigv4-unsigned-payload": dict(headers=dict(
            sigv4_sign("POST", url, ROOT, payload_hash="UNSIGNED-PAYLOAD"), **tc)),
    }
    outcomes = {}
    for name, kw in attempts.items():
        r = requests.post(url, data=b'{"Limit": 1}', timeout=30, **kw)
        outcomes[name] = r.json()["Response"].get("Error", {}).get("Code")
    assert all(code and code.startswith("AuthFailure") for code in outcomes.values()), outcomes


@pytest.mark.parametrize("client", ["cos", "boto"])
def test_media_info_needs_get_media_info_or_anonymous_media(gw, client):
    """ci-process=videoinfo: anonymous on the anonymous_media bucket and root
    get the media information; anonymous on a plain public-read bucket, and
    the snapshot-only credential, are denied."""
    def videoinfo(cred, bucket, key):
        url = f"{gw.url}/{bucket}/{quote(key)}?ci-process=videoinfo"
        if cred is None:
            r = requests.get(url, timeout=30)
        elif client == "boto":
            r = requests.get(url, headers=sigv4_sign("GET", url, cred), timeout=30)
        else:
            c = cos_for(gw.port, cred, style="domain") if bucket == PRIVATE else None
            signed = c.get_presigned_url(Bucket=bucket, Key=key, Method="GET", Params={"ci-process": "videoinfo"})
            r = requests.get(signed, timeout=30)
        return r.status_code, xml_code(r.text)

    assert videoinfo(None, MEDIA, "clip.mp4") == (200, None)
    assert videoinfo(None, PUBLIC, "clip.mp4") == DENIED
    assert videoinfo(SNAPSHOTTER, PRIVATE, "videos/clip.mp4") == DENIED
    assert videoinfo(ROOT, PRIVATE, "videos/clip.mp4") == (200, None)


@pytest.mark.parametrize("request_line", ["HEAD /", "GET /?location", "GET /?uploads", "GET /?list-type=2"])
def test_anonymous_bucket_level_requests_to_private_bucket_are_denied(gw, request_line):
    method, target = request_line.split(" ")
    r = requests.request(method, f"{gw.url}/{PRIVATE}{target}", timeout=30)
    assert r.status_code == 403
    if method != "HEAD":
        assert xml_code(r.text) == "AccessDenied"


@pytest.mark.parametrize("key", ["uploads/../secret.txt", "uploads/./../secret.txt", "uploads/%2e%2e/secret.txt",
                                 "uploads/..%2Fsecret.txt", "uploads//../secret.txt"])
def test_dot_segments_cannot_carry_a_prefix_grant_outside_its_prefix(gw, key):
    """The uploader (uploads/*) signs a PUT whose key starts with uploads/
    but walks out of it: refused, and secret.txt is untouched."""
    import http.client
    from urllib.parse import unquote

    now = int(time.time())
    auth = cos_sign("put", "/" + unquote(key), {}, {"host": "127.0.0.1"}, UPLOADER, now - 10, now + 100)
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    conn.request("PUT", "/" + key, body=b"evil", headers={"Authorization": auth})
    status = conn.getresponse().status
    conn.close()
    assert status in (400, 403)
    assert root_get(gw, PRIVATE, "secret.txt") == b"top secret"


@pytest.mark.parametrize("case,mutate,expected", [
    ("unsupported-algorithm", lambda a: a.replace("q-sign-algorithm=sha1", "q-sign-algorithm=sha256"),
     (400, "InvalidArgument")),
    ("unparsable-sign-time", lambda a: a.replace("q-sign-time=", "q-sign-time=x"), (403, "AccessDenied")),
    ("missing-signature", lambda a: a.split("&q-signature=")[0], (403, "AccessDenied")),
    ("short-signature", lambda a: a[:-4], (403, "AccessDenied")),
    ("empty-ak", lambda a: a.replace("q-ak=AKIDauthroot", "q-ak="), (403, "AccessDenied")),
    ("unknown-ak", lambda a: a.replace("q-ak=AKIDauthroot", "q-ak=AKIDnobody"), (403, "InvalidAccessKeyId")),
    ("end-before-start", lambda a: a.replace("q-sign-time=", "q-sign-time=9999999999;1&x="), (403, "AccessDenied")),
    ("unsigned-listed-header", lambda a: a.replace("q-header-list=host", "q-header-list=host;x-cos-meta-absent"),
     (403, "SignatureDoesNotMatch")),
])
def test_malformed_cos_authorization_gets_its_own_cos_error(gw, case, mutate, expected):
    now = int(time.time())
    auth = cos_sign("get", "/secret.txt", {}, {"host": "127.0.0.1"}, ROOT, now - 10, now + 100)
    r = requests.get(f"{gw.url}/secret.txt", headers={"Authorization": mutate(auth)}, timeout=30)
    assert (r.status_code, xml_code(r.text)) == expected, r.text[:300]
    # Control: the unmutated signature works.
    r = requests.get(f"{gw.url}/secret.txt", headers={"Authorization": auth}, timeout=30)
    assert (r.status_code, r.content) == (200, b"top secret")


def test_two_signatures_in_one_request_are_refused(gw):
    now = int(time.time())
    auth = cos_sign("get", "/secret.txt", {}, {"host": "127.0.0.1"}, ROOT, now - 10, now + 100)
    url = cos_for(gw.port, ROOT, style="domain").get_presigned_download_url(Bucket=PRIVATE, Key="secret.txt")
    r = requests.get(url, headers={"Authorization": auth}, timeout=30)
    assert (r.status_code, xml_code(r.text)) == (400, "InvalidArgument")


def test_header_signed_requests_outside_the_time_window_are_refused(gw):
    """Header form, not only pre-signed URLs: boto3 signing with a clock an
    hour behind gets 403 RequestTimeTooSkewed; a COS Authorization whose
    q-sign-time ended an hour ago gets 403 AccessDenied."""
    import datetime

    import botocore.auth

    past = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(hours=1)
    s3 = boto_for(gw.port, ROOT)
    with mock.patch.object(botocore.auth, "get_current_datetime", lambda: past):
        assert outcome(s3.get_object, Bucket=PRIVATE, Key="secret.txt") == (403, "RequestTimeTooSkewed")
    from qcloud_cos import cos_auth

    hour_ago = time.time() - 3600
    client = cos_for(gw.port, ROOT, style="domain")
    with mock.patch.object(cos_auth, "time", SimpleNamespace(time=lambda: hour_ago)):
        auth = client.get_auth(Method="GET", Bucket=PRIVATE, Key="secret.txt", Expired=600)
    r = requests.get(f"{gw.url}/secret.txt", headers={"Authorization": auth}, timeout=30)
    assert (r.status_code, xml_code(r.text)) == DENIED, r.text[:300]


def test_boto3_presigned_url_for_temporary_credential_carries_the_token(gw):
    s3 = boto_for(gw.port, TEMP, signature_version="s3v4")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": PRIVATE, "Key": "secret.txt"}, ExpiresIn=120)
    assert "X-Amz-Security-Token=" in url
    assert curl(url) == (200, b"top secret")
    parts = urlsplit(url)
    stripped = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "X-Amz-Security-Token"])
    # The token is a signed parameter: removing it breaks the signature, and
    # without it the temporary credential is refused either way.
    assert curl(urlunsplit(parts._replace(query=stripped)))[0] == 403


# --------------------------------------------------------------------------
# Logging of denials (issue 3: "logged with the request id and credential id,
# never the secret")
# --------------------------------------------------------------------------

def _wait_for_log(gw, needle: str, timeout: float = 5.0) -> list[str]:
    deadline = time.time() + timeout
    while True:
        lines = [l for l in gw.stderr_log.read_text(errors="replace").splitlines() if needle in l]
        if lines or time.time() > deadline:
            return lines
        time.sleep(0.05)


@pytest.mark.parametrize("sdk", ["cos", "boto"])
def test_denials_are_logged_with_request_id_and_credential_id(gw, sdk):
    key = f"other/logged-{uid()}.txt"
    url = f"{gw.url}/{PRIVATE}/{key}"
    if sdk == "boto":
        headers = sigv4_sign("PUT", url, READONLY, payload_hash="UNSIGNED-PAYLOAD")
    else:
        now = int(time.time())
        headers = {"Authorization": cos_sign("put", f"/{PRIVATE}/{key}", {}, {}, READONLY, now - 10, now + 100)}
    r = requests.put(url, data=b"x", headers=headers, timeout=30)
    assert (r.status_code, xml_code(r.text)) == DENIED
    request_id = r.headers["x-cos-request-id"]
    lines = _wait_for_log(gw, request_id)
    assert any(READONLY.id in l and "denied" in l.lower() for l in lines), lines


def test_logs_never_contain_secrets_or_tokens(gw):
    """Runs last in the module's use of gw: everything logged so far (all the
    signed, refused and wrong-key requests above) holds no secret key and no
    session token."""
    # A few more refusals that carry secrets' neighbours in them.
    Actor(gw, "boto", TEMP, token=TOKEN + "x").get(PRIVATE, "secret.txt")
    Actor(gw, "cos", ROOT.with_key(ROOT.key + "x")).get(PRIVATE, "secret.txt")
    time.sleep(0.2)
    text = gw.stderr_log.read_text(errors="replace")
    for cred in (ROOT, READONLY, UPLOADER, SNAPSHOTTER, TEMP, PUBLISHER, JANITOR):
        assert cred.key not in text, f"{cred.name}'s secret key is in the log"
    assert TOKEN not in text, "the session token is in the log"


def _crc32_b64(data: bytes) -> str:
    import base64
    import zlib

    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _signed_trailer_put(gw, key: str, chunks: list[bytes], crc: str, tamper=None):
    from auth_support import aws_chunked_signed_trailer

    url = f"{gw.url}/{PRIVATE}/{quote(key)}"
    headers = sigv4_sign("PUT", url, ROOT, payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", headers={
        "Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(sum(map(len, chunks))),
        "x-amz-trailer": "x-amz-checksum-crc32"})
    body = aws_chunked_signed_trailer(chunks, headers, ROOT.key, ("x-amz-checksum-crc32", crc))
    if tamper:
        body = tamper(body)
    headers["Content-Length"] = str(len(body))
    return requests.put(url, data=body, headers=headers, timeout=60)


def test_signed_trailer_streaming_upload_verifies_the_trailer_signature(gw):
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: the right trailer stores
    the data; a trailer value changed after signing is refused (403) and
    stores nothing."""
    data = b"".join(CHUNKS)
    key = f"other/signed-trailer-{uid()}.bin"
    r = _signed_trailer_put(gw, key, CHUNKS, _crc32_b64(data))
    assert r.status_code == 200, r.text[:300]
    assert root_get(gw, PRIVATE, key) == data

    def swap_crc(body: bytes) -> bytes:
        return body.replace(_crc32_b64(data).encode(), _crc32_b64(data + b"x").encode())
    tampered = f"other/signed-trailer-tampered-{uid()}.bin"
    r = _signed_trailer_put(gw, tampered, CHUNKS, _crc32_b64(data), tamper=swap_crc)
    assert r.status_code == 403, r.text[:300]
    assert root_head(gw, PRIVATE, tampered) == 404


def test_signed_trailer_with_a_wrong_checksum_is_bad_digest(gw):
    """A signed trailer whose CRC32 does not match the data: 400 BadDigest
    (S3: "The CRC32 you specified did not match the calculated checksum"),
    nothing stored."""
    data = b"".join(CHUNKS)
    wrong = f"other/signed-trailer-wrong-{uid()}.bin"
    r = _signed_trailer_put(gw, wrong, CHUNKS, _crc32_b64(data + b"x"))
    assert r.status_code == 400, r.text[:300]
    assert root_head(gw, PRIVATE, wrong) == 404


# --------------------------------------------------------------------------
# The root pair from the environment
# --------------------------------------------------------------------------

def test_root_credential_from_environment(workroot):
    """FRAMEGATE_SECRET_ID/KEY add an unrestricted root credential next to
    the configured ones; `framegate presign` signs with it by default."""
    env_root = Cred("envroot", "AKIDfromenvironment", "env-secret-key-0009")
    workdir = workroot / f"envroot-{uid()}"
    (workdir / "data").mkdir(parents=True)
    config = write_auth_config(workdir / "framegate.toml", workdir / "data", 60)
    env = {"FRAMEGATE_SECRET_ID": env_root.id, "FRAMEGATE_SECRET_KEY": env_root.key}
    g = Gateway(config, workdir, "envroot", extra_env=env).start()
    try:
        for bucket, k, body in SEED:
            boto_for(g.port, env_root).put_object(Bucket=bucket, Key=k, Body=body)
        key = f"other/env-{uid()}.txt"
        for sdk in ("cos", "boto"):
            actor = Actor(g, sdk, env_root)
            assert actor.put(PRIVATE, key) == OK
            assert actor.list(PRIVATE, "other/") == OK
            assert actor.delete(PRIVATE, key) == OK
        assert Actor(g, "boto", READONLY).get(PRIVATE, "other/nothing") == (404, "NoSuchKey")
        assert Actor(g, "boto", env_root.with_key("nope")).get(PRIVATE, "x") == (403, "SignatureDoesNotMatch")
        root_put(g, PRIVATE, "env.txt", b"env body")
        p = subprocess.run([str(gateway_binary()), "presign", "--config", str(config), "--endpoint", g.url,
                            "env.txt"], capture_output=True, timeout=60, env=dict(
                                {k: v for k, v in __import__("os").environ.items()
                                 if not k.startswith("FRAMEGATE_")}, **env))
        assert p.returncode == 0, p.stderr
        url = p.stdout.decode().strip()
        assert f"q-ak={env_root.id}" in url
        assert curl(url) == (200, b"env body")
        assert env_root.key not in g.stderr_log.read_text()
    finally:
        _stop(g)
