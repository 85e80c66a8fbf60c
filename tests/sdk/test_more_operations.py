"""Operations SDK users reach for beyond the basics: server-side copy,
pre-signed URLs, bucket HEAD/location, batch delete, the SDKs' ranged
downloaders, and boto3's own checksums."""

import hashlib
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from botocore.exceptions import ClientError
from qcloud_cos.cos_exception import CosServiceError

from support import (
    BUCKET, MiB, REGION, boto_error, cos_body, cos_error, crc64_ecma, hget, payload, quoted_md5,
)

FIXTURE_CLIP = Path(__file__).resolve().parents[2] / "fixtures" / "h264_bframes.mp4"

# ---------------------------------------------------------------- copy


def test_boto3_copy_object_keeps_metadata_by_default(s3, key_prefix):
    src, dst = key_prefix + "src.mp4", key_prefix + "copy of src.mp4"
    data = payload(3000, seed=70)
    s3.put_object(Bucket=BUCKET, Key=src, Body=data, ContentType="video/mp4", Metadata={"a": "1"})
    r = s3.copy_object(Bucket=BUCKET, Key=dst, CopySource={"Bucket": BUCKET, "Key": src})
    assert r["CopyObjectResult"]["ETag"] == quoted_md5(data)
    got = s3.get_object(Bucket=BUCKET, Key=dst)
    assert got["Body"].read() == data
    assert got["ContentType"] == "video/mp4"
    assert got["Metadata"] == {"a": "1"}


def test_boto3_copy_object_with_replaced_metadata(s3, key_prefix):
    src, dst = key_prefix + "src", key_prefix + "dst"
    s3.put_object(Bucket=BUCKET, Key=src, Body=b"body", ContentType="text/plain", Metadata={"a": "1"})
    s3.copy_object(Bucket=BUCKET, Key=dst, CopySource={"Bucket": BUCKET, "Key": src},
                   MetadataDirective="REPLACE", ContentType="image/png", Metadata={"b": "2"})
    head = s3.head_object(Bucket=BUCKET, Key=dst)
    assert head["ContentType"] == "image/png"
    assert head["Metadata"] == {"b": "2"}
    assert s3.head_object(Bucket=BUCKET, Key=src)["Metadata"] == {"a": "1"}


def test_boto3_copy_of_missing_source_is_no_such_key(s3, key_prefix):
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=BUCKET, Key=key_prefix + "dst",
                       CopySource={"Bucket": BUCKET, "Key": key_prefix + "missing"})
    assert boto_error(err) == (404, "NoSuchKey")


def test_cos_copy_object(cos, key_prefix):
    src, dst = key_prefix + "源 视频.mp4", key_prefix + "copy.mp4"
    data = payload(2000, seed=71)
    cos.put_object(Bucket=BUCKET, Key=src, Body=data, Metadata={"x-cos-meta-k": "v"})
    r = cos.copy_object(Bucket=BUCKET, Key=dst,
                        CopySource={"Bucket": BUCKET, "Key": src, "Region": REGION})
    assert r["ETag"] == quoted_md5(data)
    got = cos.get_object(Bucket=BUCKET, Key=dst)
    assert cos_body(got) == data
    assert hget(got, "x-cos-meta-k") == "v"
    assert hget(got, "x-cos-hash-crc64ecma") == str(crc64_ecma(data))


def test_cos_copy_object_replaced_metadata(cos, key_prefix):
    src, dst = key_prefix + "src", key_prefix + "dst"
    cos.put_object(Bucket=BUCKET, Key=src, Body=b"x", Metadata={"x-cos-meta-k": "old"})
    cos.copy_object(Bucket=BUCKET, Key=dst, CopySource={"Bucket": BUCKET, "Key": src, "Region": REGION},
                    CopyStatus="Replaced", Metadata={"x-cos-meta-k": "new"}, ContentType="text/csv")
    head = cos.head_object(Bucket=BUCKET, Key=dst)
    assert hget(head, "x-cos-meta-k") == "new"
    assert hget(head, "Content-Type") == "text/csv"


# ---------------------------------------------------------------- pre-signed URLs


def _fetch_cos_presigned(gateway, url, method="GET", data=None):
    """COS URLs name the virtual host when the client was made with IP/Port:
    connect to the gateway and send that host, as a hosts entry would."""
    parts = urlsplit(url)
    headers = {}
    if not parts.netloc.startswith("127.0.0.1"):
        headers["Host"] = parts.netloc
        url = urlunsplit(parts._replace(netloc=f"127.0.0.1:{gateway.port}"))
    return requests.request(method, url, data=data, headers=headers, timeout=30)


def test_cos_presigned_get_and_put(cos, gateway, key_prefix):
    key = key_prefix + "presigned clip.mp4"
    put_url = cos.get_presigned_url(Bucket=BUCKET, Key=key, Method="PUT", Expired=300)
    r = _fetch_cos_presigned(gateway, put_url, "PUT", data=b"uploaded by url")
    assert r.status_code == 200, r.text
    get_url = cos.get_presigned_url(Bucket=BUCKET, Key=key, Method="GET", Expired=300)
    r = _fetch_cos_presigned(gateway, get_url)
    assert r.status_code == 200, r.text
    assert r.content == b"uploaded by url"
    assert "q-signature=" in get_url


def _boto3_presigned_roundtrip(client, key):
    put_url = client.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=300)
    r = requests.put(put_url, data=b"uploaded by url", timeout=30)
    assert r.status_code == 200, r.text
    get_url = client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=300)
    r = requests.get(get_url, timeout=30)
    assert r.status_code == 200, r.text
    assert r.content == b"uploaded by url"
    return get_url


def test_boto3_presigned_sigv4_get_and_put(gateway, key_prefix):
    from support import boto3_client

    client = boto3_client(gateway, signature_version="s3v4")
    url = _boto3_presigned_roundtrip(client, key_prefix + "presigned clip.mp4")
    assert "X-Amz-Signature=" in url


# ---------------------------------------------------------------- bucket


def test_head_bucket_and_location(s3, cos):
    assert s3.head_bucket(Bucket=BUCKET)["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError) as err:
        s3.head_bucket(Bucket="nosuchbucket-1250000000")
    assert boto_error(err)[0] == 404
    cos.head_bucket(Bucket=BUCKET)
    loc = cos.get_bucket_location(Bucket=BUCKET)
    assert loc.get("LocationConstraint") == REGION


def test_boto3_delete_objects_batch(s3, key_prefix):
    keys = [key_prefix + f"batch-{i}" for i in range(5)]
    for k in keys:
        s3.put_object(Bucket=BUCKET, Key=k, Body=b"x")
    r = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys[:3]]
                                                 + [{"Key": key_prefix + "never-existed"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == sorted(keys[:3] + [key_prefix + "never-existed"])
    assert r.get("Errors", []) == []
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=key_prefix)
    assert [c["Key"] for c in listed["Contents"]] == keys[3:]


def test_cos_delete_objects_batch(cos, key_prefix):
    keys = [key_prefix + f"batch-{i}" for i in range(3)]
    for k in keys:
        cos.put_object(Bucket=BUCKET, Key=k, Body=b"x")
    r = cos.delete_objects(Bucket=BUCKET, Delete={"Object": [{"Key": k} for k in keys], "Quiet": "false"})
    assert sorted(d["Key"] for d in r["Deleted"]) == sorted(keys)
    assert cos.list_objects(Bucket=BUCKET, Prefix=key_prefix).get("Contents", []) == []


# ---------------------------------------------------------------- downloaders and checksums


def test_cos_download_file_in_ranged_parts(cos, key_prefix, tmp_path):
    """download_file HEADs the object, then GETs ranges in threads, and checks
    the whole object's CRC-64 against x-cos-hash-crc64ecma."""
    data = payload(3 * MiB + 17, seed=72)
    key = key_prefix + "download.bin"
    cos.put_object(Bucket=BUCKET, Key=key, Body=data)
    dest = tmp_path / "downloaded.bin"
    cos.download_file(Bucket=BUCKET, Key=key, DestFilePath=str(dest), PartSize=1, MAXThread=3,
                      EnableCRC=True)
    assert hashlib.md5(dest.read_bytes()).hexdigest() == hashlib.md5(data).hexdigest()


def test_boto3_wrong_crc32_checksum_is_rejected(s3, key_prefix):
    key = key_prefix + "crc32"
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"payload", ChecksumCRC32="AAAAAA==")
    status, code = boto_error(err)
    assert status == 400 and code in ("BadDigest", "InvalidRequest"), (status, code)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=BUCKET, Key=key)


def test_boto3_get_with_checksum_mode(s3, key_prefix):
    """GETs sign x-amz-checksum-mode: ENABLED; the body must still arrive intact."""
    key = key_prefix + "checksum-mode"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"verified")
    got = s3.get_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    assert got["Body"].read() == b"verified"


# ---------------------------------------------------------------- versionId

def test_a_version_id_is_refused_never_answered_with_the_current_object(cos, s3, key_prefix):
    """Objects have no versions here: GET, HEAD and DELETE naming a versionId
    (COS SDK, boto3) are 400 InvalidArgument naming it, and the DELETE
    deletes nothing; versionId=null (S3's name of the only version) is the
    object itself."""
    key = f"{key_prefix}versioned.txt"
    cos.put_object(Bucket=BUCKET, Key=key, Body=b"current")
    for call in (lambda: cos.get_object(Bucket=BUCKET, Key=key, VersionId="v1"),
                 lambda: cos.delete_object(Bucket=BUCKET, Key=key, VersionId="v1")):
        with pytest.raises(CosServiceError) as raised:
            call()
        assert raised.value.get_status_code() == 400
        assert raised.value.get_error_code() == "InvalidArgument"
        assert "versionId" in raised.value.get_error_msg()
    with pytest.raises(CosServiceError) as raised:
        cos.head_object(Bucket=BUCKET, Key=key, VersionId="v1")
    assert raised.value.get_status_code() == 400
    for call in (lambda: s3.get_object(Bucket=BUCKET, Key=key, VersionId="v1"),
                 lambda: s3.delete_object(Bucket=BUCKET, Key=key, VersionId="v1")):
        with pytest.raises(ClientError) as raised:
            call()
        assert raised.value.response["Error"]["Code"] == "InvalidArgument"
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"current"
    assert s3.get_object(Bucket=BUCKET, Key=key, VersionId="null")["Body"].read() == b"current"


def test_a_snapshot_naming_a_version_is_refused(http, key_prefix, cos):
    """?ci-process=snapshot&versionId=... is refused the same way."""
    key = f"{key_prefix}clip.mp4"
    cos.put_object(Bucket=BUCKET, Key=key, Body=FIXTURE_CLIP.read_bytes())
    r = http.get(key, params={"ci-process": "snapshot", "time": "1", "versionId": "v1"})
    assert r.status_code == 400 and b"versionId" in r.content, r.text
    r = http.get(key, params={"ci-process": "snapshot", "time": "1"},
                 headers={"x-cos-version-id": "v1"})
    assert r.status_code == 400 and b"versionId" in r.content, r.text
    assert http.get(key, params={"ci-process": "snapshot", "time": "1"}).status_code == 200
