"""Multipart upload: the SDKs' high-level uploaders, and the explicit
initiate / upload part / list parts / complete / abort calls."""

import hashlib

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from qcloud_cos.cos_exception import CosServiceError

from support import (
    BUCKET, MiB, boto_error, cos_body, cos_error, crc64_ecma, hget, multipart_etag, payload,
    quoted_md5,
)


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def test_cos_upload_file_in_several_parts(cos, key_prefix, tmp_path):
    """upload_file with PartSize=1 (MiB), as the SDK does by default: 4 parts,
    the last one short. (It first asks GET /?uploads for a resumable upload.)"""
    data = payload(3 * MiB + 512 * 1024, seed=11)
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    key = key_prefix + "video.mp4"
    r = cos.upload_file(Bucket=BUCKET, Key=key, LocalFilePath=str(path), PartSize=1, MAXThread=2)
    expected_etag = multipart_etag(split(data, MiB))
    assert r["ETag"] == expected_etag

    got = cos.get_object(Bucket=BUCKET, Key=key)
    assert cos_body(got) == data
    head = cos.head_object(Bucket=BUCKET, Key=key)
    assert hget(head, "ETag") == expected_etag
    assert int(hget(head, "Content-Length")) == len(data)


def test_cos_multipart_object_has_whole_object_crc64(cos, key_prefix, tmp_path):
    data = payload(2 * MiB + 100, seed=12)
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    key = key_prefix + "crc.bin"
    cos.upload_file(Bucket=BUCKET, Key=key, LocalFilePath=str(path), PartSize=1, MAXThread=1)
    head = cos.head_object(Bucket=BUCKET, Key=key)
    assert hget(head, "x-cos-hash-crc64ecma") == str(crc64_ecma(data))


def test_cos_explicit_multipart_with_list_parts(cos, key_prefix):
    key = key_prefix + "explicit.bin"
    parts = [payload(MiB, seed=20), payload(MiB, seed=21), payload(1000, seed=22)]
    init = cos.create_multipart_upload(
        Bucket=BUCKET, Key=key, ContentType="video/mp4",
        Metadata={"x-cos-meta-origin": "multipart"},
    )
    upload_id = init["UploadId"]
    assert upload_id
    assert init.get("Key") == key

    etags = []
    for n, body in enumerate(parts, start=1):
        r = cos.upload_part(Bucket=BUCKET, Key=key, Body=body, PartNumber=n, UploadId=upload_id)
        assert hget(r, "ETag") == quoted_md5(body)
        etags.append(hget(r, "ETag"))

    listed = cos.list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id)
    got_parts = listed["Part"] if isinstance(listed["Part"], list) else [listed["Part"]]
    assert [int(p["PartNumber"]) for p in got_parts] == [1, 2, 3]
    assert [p["ETag"] for p in got_parts] == etags
    assert [int(p["Size"]) for p in got_parts] == [len(p) for p in parts]
    assert listed.get("UploadId") == upload_id

    done = cos.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload_id,
        MultipartUpload={"Part": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
    )
    assert done["ETag"] == multipart_etag(parts)
    assert done.get("Key") == key

    got = cos.get_object(Bucket=BUCKET, Key=key)
    assert cos_body(got) == b"".join(parts)
    assert hget(got, "Content-Type") == "video/mp4"
    assert hget(got, "x-cos-meta-origin") == "multipart"
    assert hget(got, "ETag") == multipart_etag(parts)


def test_cos_multipart_complete_with_a_subset_of_parts(cos, key_prefix):
    """Parts that are uploaded but not named in Complete are dropped."""
    key = key_prefix + "subset.bin"
    upload_id = cos.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    bodies = {1: payload(MiB, seed=30), 2: payload(MiB, seed=31), 3: payload(10, seed=32)}
    etags = {n: hget(cos.upload_part(Bucket=BUCKET, Key=key, Body=b, PartNumber=n, UploadId=upload_id), "ETag")
             for n, b in bodies.items()}
    cos.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload_id,
        MultipartUpload={"Part": [{"PartNumber": 1, "ETag": etags[1]}, {"PartNumber": 3, "ETag": etags[3]}]},
    )
    assert cos_body(cos.get_object(Bucket=BUCKET, Key=key)) == bodies[1] + bodies[3]


def test_cos_abort_multipart_discards_the_upload(cos, key_prefix):
    key = key_prefix + "aborted.bin"
    upload_id = cos.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    cos.upload_part(Bucket=BUCKET, Key=key, Body=payload(1000), PartNumber=1, UploadId=upload_id)
    cos.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id)
    with pytest.raises(CosServiceError) as err:
        cos.list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id)
    assert cos_error(err) == (404, "NoSuchUpload")
    with pytest.raises(CosServiceError) as err:
        cos.head_object(Bucket=BUCKET, Key=key)
    assert cos_error(err)[0] == 404


def test_cos_complete_with_wrong_part_etag_is_invalid_part(cos, key_prefix):
    key = key_prefix + "bad-etag.bin"
    upload_id = cos.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    cos.upload_part(Bucket=BUCKET, Key=key, Body=b"part one", PartNumber=1, UploadId=upload_id)
    with pytest.raises(CosServiceError) as err:
        cos.complete_multipart_upload(
            Bucket=BUCKET, Key=key, UploadId=upload_id,
            MultipartUpload={"Part": [{"PartNumber": 1, "ETag": '"' + "0" * 32 + '"'}]},
        )
    assert cos_error(err) == (400, "InvalidPart")
    cos.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id)


def test_boto3_upload_fileobj_multipart(s3, key_prefix):
    """boto3's managed transfer: 5 MiB parts (S3's minimum), 3 parts."""
    import io

    data = payload(12 * MiB + 3, seed=40)
    key = key_prefix + "managed.bin"
    cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=2)
    s3.upload_fileobj(io.BytesIO(data), BUCKET, key, Config=cfg)
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ETag"] == multipart_etag(split(data, 5 * MiB))
    assert head["ContentLength"] == len(data)
    out = io.BytesIO()
    s3.download_fileobj(BUCKET, key, out, Config=cfg)
    assert hashlib.md5(out.getvalue()).hexdigest() == hashlib.md5(data).hexdigest()


def test_boto3_explicit_multipart_with_list_parts(s3, key_prefix):
    key = key_prefix + "explicit.bin"
    parts = [payload(5 * MiB, seed=50), payload(123, seed=51)]
    init = s3.create_multipart_upload(
        Bucket=BUCKET, Key=key, ContentType="image/jpeg", Metadata={"origin": "boto3"}
    )
    upload_id = init["UploadId"]
    etags = []
    for n, body in enumerate(parts, start=1):
        r = s3.upload_part(Bucket=BUCKET, Key=key, PartNumber=n, UploadId=upload_id, Body=body)
        assert r["ETag"] == quoted_md5(body)
        etags.append(r["ETag"])

    listed = s3.list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2]
    assert [p["ETag"] for p in listed["Parts"]] == etags
    assert [p["Size"] for p in listed["Parts"]] == [len(p) for p in parts]

    done = s3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
    )
    assert done["ETag"] == multipart_etag(parts)
    got = s3.get_object(Bucket=BUCKET, Key=key)
    assert got["Body"].read() == b"".join(parts)
    assert got["ContentType"] == "image/jpeg"
    assert got["Metadata"] == {"origin": "boto3"}


def test_boto3_abort_multipart(s3, key_prefix):
    key = key_prefix + "aborted.bin"
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    s3.upload_part(Bucket=BUCKET, Key=key, PartNumber=1, UploadId=upload_id, Body=b"x" * 100)
    r = s3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as err:
        s3.list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id)
    assert boto_error(err) == (404, "NoSuchUpload")
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(
            Bucket=BUCKET, Key=key, UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": quoted_md5(b"x" * 100)}]},
        )
    assert boto_error(err) == (404, "NoSuchUpload")


def test_boto3_upload_part_to_unknown_upload_id_is_no_such_upload(s3, key_prefix):
    with pytest.raises(ClientError) as err:
        s3.upload_part(Bucket=BUCKET, Key=key_prefix + "x", PartNumber=1,
                       UploadId="does-not-exist", Body=b"abc")
    assert boto_error(err) == (404, "NoSuchUpload")


def test_boto3_list_multipart_uploads_shows_pending_upload(s3, key_prefix):
    key = key_prefix + "pending.bin"
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    try:
        r = s3.list_multipart_uploads(Bucket=BUCKET, Prefix=key_prefix)
        assert [(u["Key"], u["UploadId"]) for u in r.get("Uploads", [])] == [(key, upload_id)]
    finally:
        s3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id)
