"""Keys that need encoding or that look like paths."""

import http.client
import os

import pytest
from botocore.exceptions import ClientError

from support import BUCKET, cos_body, hget, quoted_md5

ODD_NAMES = [
    "with space.txt",
    "plus+sign.txt",
    "tilde~name.txt",
    "视频/封面 图.jpg",
    "a/b/c/deep.txt",
    "percent%20literal.txt",
    "semi;colon=eq&amp.txt",
    "quote'apos(paren).txt",
    "accent-é-ü.txt",
    "emoji-🎬.mp4",
]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_cos_odd_key_roundtrip_and_listing(cos, key_prefix, name):
    key = key_prefix + name
    body = ("body of " + name).encode()
    cos.put_object(Bucket=BUCKET, Key=key, Body=body)
    assert cos_body(cos.get_object(Bucket=BUCKET, Key=key)) == body
    assert hget(cos.head_object(Bucket=BUCKET, Key=key), "ETag") == quoted_md5(body)
    listed = cos.list_objects(Bucket=BUCKET, Prefix=key_prefix)
    assert [c["Key"] for c in listed["Contents"]] == [key]
    cos.delete_object(Bucket=BUCKET, Key=key)
    assert cos.list_objects(Bucket=BUCKET, Prefix=key_prefix).get("Contents", []) == []


@pytest.mark.parametrize("name", ODD_NAMES)
def test_boto3_odd_key_roundtrip_and_listing(s3, key_prefix, name):
    key = key_prefix + name
    body = ("body of " + name).encode()
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=key_prefix)
    assert [c["Key"] for c in listed["Contents"]] == [key]
    s3.delete_object(Bucket=BUCKET, Key=key)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=BUCKET, Key=key)


def test_same_key_through_cos_and_boto3_encodings(cos, s3, key_prefix):
    key = key_prefix + "视频 shared+key~.mp4"
    cos.put_object(Bucket=BUCKET, Key=key, Body=b"shared")
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"shared"


def _raw(gw, method, path, body=b""):
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={"Content-Length": str(len(body))})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


@pytest.mark.backends("file")
@pytest.mark.parametrize("path", [
    "/{bucket}/{prefix}../../../escape-{tag}.txt",
    "/{bucket}/{prefix}%2e%2e/%2e%2e/%2e%2e/escape-{tag}.txt",
    "/{prefix}..%2f..%2f..%2fescape-{tag}.txt",
], ids=["dotdot", "encoded-dotdot", "encoded-slash"])
def test_dot_segments_never_escape_the_bucket(gateway, key_prefix, path):
    """`..` in a key: rejected with InvalidArgument or stored inside the
    bucket, never written outside the data directory."""
    tag = os.urandom(4).hex()
    status, body = _raw(gateway, "PUT", path.format(bucket=BUCKET, prefix=key_prefix, tag=tag), b"x")
    assert status in (200, 400), (status, body)
    if status == 400:
        assert b"InvalidArgument" in body or b"InvalidURI" in body, body
    data_dir = gateway.config.parent / "data"
    root = gateway.config.parent.parent
    escaped = [p for p in root.rglob(f"escape-{tag}.txt") if data_dir not in p.parents]
    assert escaped == [], f"written outside the data dir: {escaped}"
