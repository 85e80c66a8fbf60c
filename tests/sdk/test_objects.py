"""PUT / GET / HEAD / DELETE through both SDKs, and the headers every
response carries."""

import os

import pytest
from botocore.exceptions import ClientError
from qcloud_cos.cos_exception import CosServiceError

from support import BUCKET, boto_error, cos_body, cos_error, hget, payload, quoted_md5


def test_cos_put_get_head_delete_roundtrip(cos, key_prefix):
    key = key_prefix + "object.bin"
    data = payload(10_000, seed=1)

    put = cos.put_object(Bucket=BUCKET, Key=key, Body=data)
    assert hget(put, "ETag") == quoted_md5(data)

    got = cos.get_object(Bucket=BUCKET, Key=key)
    assert cos_body(got) == data
    assert int(hget(got, "Content-Length")) == len(data)
    assert hget(got, "ETag") == quoted_md5(data)

    head = cos.head_object(Bucket=BUCKET, Key=key)
    assert int(hget(head, "Content-Length")) == len(data)
    assert hget(head, "ETag") == quoted_md5(data)
    assert hget(head, "Last-Modified")
    assert hget(head, "Accept-Ranges") == "bytes"

    cos.delete_object(Bucket=BUCKET, Key=key)
    with pytest.raises(CosServiceError) as err:
        cos.head_object(Bucket=BUCKET, Key=key)
    assert cos_error(err)[0] == 404


def test_cos_delete_is_idempotent(cos, key_prefix):
    key = key_prefix + "never-existed"
    cos.delete_object(Bucket=BUCKET, Key=key)
    cos.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    cos.delete_object(Bucket=BUCKET, Key=key)
    cos.delete_object(Bucket=BUCKET, Key=key)


def test_boto3_put_get_head_delete_roundtrip(s3, key_prefix):
    key = key_prefix + "object.bin"
    data = payload(10_000, seed=2)

    put = s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    assert put["ETag"] == quoted_md5(data)

    got = s3.get_object(Bucket=BUCKET, Key=key)
    assert got["Body"].read() == data
    assert got["ContentLength"] == len(data)
    assert got["ETag"] == quoted_md5(data)

    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentLength"] == len(data)
    assert head["ETag"] == quoted_md5(data)
    assert head["LastModified"] is not None

    deleted = s3.delete_object(Bucket=BUCKET, Key=key)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=BUCKET, Key=key)
    assert boto_error(err)[0] == 404


def test_boto3_delete_of_missing_key_returns_204(s3, key_prefix):
    r = s3.delete_object(Bucket=BUCKET, Key=key_prefix + "never-existed")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_put_overwrites_content_and_etag(s3, key_prefix):
    key = key_prefix + "overwritten"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"first version")
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"second, longer version")
    got = s3.get_object(Bucket=BUCKET, Key=key)
    assert got["Body"].read() == b"second, longer version"
    assert got["ETag"] == quoted_md5(b"second, longer version")


def test_empty_object_roundtrip(cos, s3, key_prefix):
    key = key_prefix + "empty"
    put = cos.put_object(Bucket=BUCKET, Key=key, Body=b"")
    assert hget(put, "ETag") == quoted_md5(b"")
    got = s3.get_object(Bucket=BUCKET, Key=key)
    assert got["ContentLength"] == 0
    assert got["Body"].read() == b""


def test_objects_written_by_one_sdk_read_by_the_other(cos, s3, key_prefix):
    s3.put_object(Bucket=BUCKET, Key=key_prefix + "from-boto3", Body=b"hello from boto3")
    assert cos_body(cos.get_object(Bucket=BUCKET, Key=key_prefix + "from-boto3")) == b"hello from boto3"
    cos.put_object(Bucket=BUCKET, Key=key_prefix + "from-cos", Body=b"hello from cos")
    assert s3.get_object(Bucket=BUCKET, Key=key_prefix + "from-cos")["Body"].read() == b"hello from cos"


def test_default_bucket_path_and_path_style_address_the_same_object(http, key_prefix):
    key = key_prefix + "addressing.txt"
    assert http.put(key, data=b"one object").status_code == 200
    # /<key> on a bare host = the default bucket
    r = http.get(key, bucket=None)
    assert r.status_code == 200 and r.content == b"one object"
    # Host: <bucket>.cos.<region>.<domain> = virtual-host style
    r = http.get(key, bucket=None, headers={"Host": f"{BUCKET}.cos.ap-guangzhou.myqcloud.com"})
    assert r.status_code == 200 and r.content == b"one object"


def test_every_response_has_request_id_server_and_date(http, key_prefix):
    key = key_prefix + "ids"
    ids = set()
    for r in (http.put(key, data=b"abc"), http.get(key), http.head(key), http.get(key + "-missing")):
        assert r.headers.get("x-cos-request-id"), r.headers
        assert r.headers.get("Server"), r.headers
        assert r.headers.get("Date"), r.headers
        ids.add(r.headers["x-cos-request-id"])
    assert len(ids) == 4, "request ids must be unique"


def test_cos_sdk_sees_headers_spelled_as_cos_spells_them(cos, key_prefix):
    """The COS SDK returns `dict(response.headers)`: callers (and the SDK's own
    upload_file_from_buffer) index it as response['ETag'], so header names must
    arrive spelled as COS spells them, not lower-cased."""
    put = cos.put_object(Bucket=BUCKET, Key=key_prefix + "case", Body=b"abc")
    assert "ETag" in put, sorted(put)
    head = cos.head_object(Bucket=BUCKET, Key=key_prefix + "case")
    assert "Content-Length" in head and "ETag" in head, sorted(head)


def test_cos_upload_file_from_buffer(cos, key_prefix, tmp_path):
    """upload_file_from_buffer reads part ETags as rt['ETag']."""
    import io

    data = payload(3 * 1024 * 1024 + 7, seed=9)
    cos.upload_file_from_buffer(
        Bucket=BUCKET, Key=key_prefix + "from-buffer", Body=io.BytesIO(data),
        MaxBufferSize=1, PartSize=1, MAXThread=2,
    )
    assert cos_body(cos.get_object(Bucket=BUCKET, Key=key_prefix + "from-buffer")) == data


def test_repeated_gets_never_serve_an_old_version(s3, key_prefix):
    # Small objects are answered from memory after the first GET; a new
    # version (same length, so only the content tells) must be read anew,
    # whole and by range.
    key = key_prefix + "versions"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"version one!")
    for _ in range(2):
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"version one!"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"version two!")
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"version two!"
    ranged = s3.get_object(Bucket=BUCKET, Key=key, Range="bytes=8-10")
    assert ranged["Body"].read() == b"two"
    assert ranged["ContentRange"] == "bytes 8-10/12"


@pytest.mark.backends("file")
def test_a_file_replaced_behind_the_gateway_is_read_anew(s3, gateway, key_prefix):
    key = key_prefix + "replaced"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"written through the gateway")
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"written through the gateway"
    path = gateway.config.parent / "data" / "buckets" / BUCKET / key
    assert path.read_bytes() == b"written through the gateway"
    replacement = path.with_name(path.name + ".tmp")
    replacement.write_bytes(b"replaced on disk, same len!")
    os.replace(replacement, path)
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"replaced on disk, same len!"
