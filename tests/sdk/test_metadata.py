"""What an object keeps besides its bytes: user metadata, Content-Type and
other standard headers, ETag, CRC-64; and the response-* overrides."""

import pytest
from botocore.exceptions import ClientError
from qcloud_cos.cos_exception import CosServiceError

from support import (
    BUCKET, boto_error, content_md5_b64, cos_body, cos_error, crc64_ecma, crc64_ecma_pure, hget,
    payload, quoted_md5,
)


def test_crc64_helper_matches_the_published_check_value():
    assert crc64_ecma_pure(b"123456789") == 0x995DC9BBDF1939FA
    assert crc64_ecma(b"") == 0
    data = payload(10_000)
    assert crc64_ecma_pure(data[5000:], crc64_ecma_pure(data[:5000])) == crc64_ecma_pure(data)
    assert crc64_ecma(data) == crc64_ecma_pure(data)


def test_cos_user_metadata_roundtrip(cos, key_prefix):
    key = key_prefix + "meta.bin"
    cos.put_object(
        Bucket=BUCKET, Key=key, Body=b"with metadata",
        Metadata={"x-cos-meta-color": "blue", "x-cos-meta-Camel-Case": "Value With Spaces"},
    )
    for r in (cos.head_object(Bucket=BUCKET, Key=key), cos.get_object(Bucket=BUCKET, Key=key)):
        assert hget(r, "x-cos-meta-color") == "blue"
        assert hget(r, "x-cos-meta-camel-case") == "Value With Spaces"


def test_boto3_user_metadata_roundtrip(s3, key_prefix):
    key = key_prefix + "meta.bin"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"with metadata",
                  Metadata={"color": "red", "camera": "front-left"})
    assert s3.head_object(Bucket=BUCKET, Key=key)["Metadata"] == {"color": "red", "camera": "front-left"}
    assert s3.get_object(Bucket=BUCKET, Key=key)["Metadata"] == {"color": "red", "camera": "front-left"}


def test_content_type_is_kept(cos, s3, key_prefix):
    cos.put_object(Bucket=BUCKET, Key=key_prefix + "a.mp4", Body=b"v", ContentType="video/mp4")
    assert hget(cos.head_object(Bucket=BUCKET, Key=key_prefix + "a.mp4"), "Content-Type") == "video/mp4"
    s3.put_object(Bucket=BUCKET, Key=key_prefix + "b.png", Body=b"p", ContentType="image/png")
    assert s3.get_object(Bucket=BUCKET, Key=key_prefix + "b.png")["ContentType"] == "image/png"


def test_standard_headers_cache_control_and_disposition_are_kept(s3, key_prefix):
    key = key_prefix + "download.bin"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"d", CacheControl="max-age=60",
                  ContentDisposition='attachment; filename="d.bin"')
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head.get("CacheControl") == "max-age=60"
    assert head.get("ContentDisposition") == 'attachment; filename="d.bin"'


def test_response_content_type_overrides_the_stored_type(cos, s3, http, key_prefix):
    key = key_prefix + "clip.mp4"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"clip", ContentType="video/mp4")
    r = cos.get_object(Bucket=BUCKET, Key=key, ResponseContentType="application/octet-stream")
    assert hget(r, "Content-Type") == "application/octet-stream"
    r = s3.get_object(Bucket=BUCKET, Key=key, ResponseContentType="text/plain",
                      ResponseContentDisposition="attachment", ResponseCacheControl="no-cache")
    assert r["ContentType"] == "text/plain"
    assert r["ContentDisposition"] == "attachment"
    assert r["CacheControl"] == "no-cache"
    # The override is per response: the stored type is unchanged.
    assert http.head(key).headers["Content-Type"] == "video/mp4"


def test_etag_of_simple_put_is_the_quoted_md5(cos, s3, key_prefix):
    data = payload(4097, seed=3)
    r = cos.put_object(Bucket=BUCKET, Key=key_prefix + "c", Body=data)
    assert hget(r, "ETag") == quoted_md5(data)
    r = s3.put_object(Bucket=BUCKET, Key=key_prefix + "b", Body=data)
    assert r["ETag"] == quoted_md5(data)


def test_crc64ecma_header_on_put_get_and_head(cos, key_prefix):
    data = payload(5000, seed=4)
    key = key_prefix + "crc.bin"
    want = str(crc64_ecma(data))
    put = cos.put_object(Bucket=BUCKET, Key=key, Body=data)
    assert hget(put, "x-cos-hash-crc64ecma") == want
    assert hget(cos.get_object(Bucket=BUCKET, Key=key), "x-cos-hash-crc64ecma") == want
    assert hget(cos.head_object(Bucket=BUCKET, Key=key), "x-cos-hash-crc64ecma") == want


def test_crc64ecma_of_empty_object_is_zero(http, key_prefix):
    r = http.put(key_prefix + "empty", data=b"")
    assert r.headers.get("x-cos-hash-crc64ecma") == "0"


def test_correct_content_md5_is_accepted(cos, s3, key_prefix):
    data = b"checked body"
    cos.put_object(Bucket=BUCKET, Key=key_prefix + "c", Body=data, ContentMD5=content_md5_b64(data))
    s3.put_object(Bucket=BUCKET, Key=key_prefix + "b", Body=data, ContentMD5=content_md5_b64(data))
    cos.put_object(Bucket=BUCKET, Key=key_prefix + "e", Body=data, EnableMD5=True)


def test_wrong_content_md5_is_bad_digest_and_stores_nothing(cos, s3, key_prefix):
    key = key_prefix + "digest.bin"
    with pytest.raises(CosServiceError) as err:
        cos.put_object(Bucket=BUCKET, Key=key, Body=b"the real body",
                       ContentMD5=content_md5_b64(b"another body"))
    assert cos_error(err) == (400, "BadDigest")
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"the real body",
                      ContentMD5=content_md5_b64(b"another body"))
    assert boto_error(err) == (400, "BadDigest")
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=BUCKET, Key=key)
    assert boto_error(err)[0] == 404


def test_bad_digest_keeps_the_previous_version(s3, key_prefix):
    key = key_prefix + "keep.bin"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"version one")
    with pytest.raises(ClientError):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"version two",
                      ContentMD5=content_md5_b64(b"nope"))
    got = s3.get_object(Bucket=BUCKET, Key=key)
    assert got["Body"].read() == b"version one"
    assert got["ETag"] == quoted_md5(b"version one")


def test_overwrite_replaces_metadata(s3, key_prefix):
    key = key_prefix + "replace.bin"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"1", Metadata={"old": "yes"}, ContentType="text/plain")
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"2", Metadata={"new": "yes"}, ContentType="image/png")
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["Metadata"] == {"new": "yes"}
    assert head["ContentType"] == "image/png"


def test_cos_get_returns_stored_body_for_binary_content(cos, key_prefix):
    data = bytes(range(256)) * 64
    cos.put_object(Bucket=BUCKET, Key=key_prefix + "bytes", Body=data)
    assert cos_body(cos.get_object(Bucket=BUCKET, Key=key_prefix + "bytes")) == data
