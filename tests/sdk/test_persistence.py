"""Objects and their metadata survive a restart of the gateway (file: same
data dir; s3: same S3 bucket). The memory backend forgets by design."""

import io

import pytest
from boto3.s3.transfer import TransferConfig

from support import BUCKET, boto3_client, cos_client, MiB, crc64_ecma, hget, multipart_etag, payload, quoted_md5


def _write_objects(gw, prefix):
    cos = cos_client(gw, "domain")
    s3 = boto3_client(gw)
    simple = payload(3000, seed=60)
    cos.put_object(Bucket=BUCKET, Key=prefix + "simple.mp4", Body=simple, ContentType="video/mp4",
                   Metadata={"x-cos-meta-camera": "north gate"})
    big = payload(11 * MiB, seed=61)
    s3.upload_fileobj(io.BytesIO(big), BUCKET, prefix + "multi.bin",
                      ExtraArgs={"ContentType": "application/x-test", "Metadata": {"kind": "multi"}},
                      Config=TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB))
    return simple, big


def _check_objects(gw, prefix, simple, big):
    cos = cos_client(gw, "domain")
    s3 = boto3_client(gw)
    head = cos.head_object(Bucket=BUCKET, Key=prefix + "simple.mp4")
    assert hget(head, "Content-Type") == "video/mp4"
    assert hget(head, "x-cos-meta-camera") == "north gate"
    assert hget(head, "ETag") == quoted_md5(simple)
    assert hget(head, "x-cos-hash-crc64ecma") == str(crc64_ecma(simple))
    assert int(hget(head, "Content-Length")) == len(simple)

    got = s3.get_object(Bucket=BUCKET, Key=prefix + "multi.bin")
    assert got["ContentType"] == "application/x-test"
    assert got["Metadata"] == {"kind": "multi"}
    parts = [big[i:i + 5 * MiB] for i in range(0, len(big), 5 * MiB)]
    assert got["ETag"] == multipart_etag(parts)
    assert got["Body"].read() == big
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    assert [c["Key"] for c in listed["Contents"]] == [prefix + "multi.bin", prefix + "simple.mp4"]
    assert [c["ETag"] for c in listed["Contents"]] == [multipart_etag(parts), quoted_md5(simple)]


@pytest.mark.backends("file", "s3")
def test_objects_and_metadata_survive_restart(backend, gateway_factory, key_prefix, tmp_path):
    data_dir = tmp_path / "data"
    gw = gateway_factory.start(backend, "before", data_dir=data_dir)
    simple, big = _write_objects(gw, key_prefix)
    assert gw.stop() == 0, gw.stderr_tail()

    gw2 = gateway_factory.start(backend, "after", data_dir=data_dir)
    _check_objects(gw2, key_prefix, simple, big)


@pytest.mark.backends("s3")
def test_s3_backend_keeps_metadata_in_the_bucket(backend, gateway_factory, key_prefix, tmp_path):
    """A second gateway on a fresh data dir, over the same S3 bucket, sees the
    same metadata: nothing object-related lives only on the first machine."""
    gw = gateway_factory.start(backend, "first", data_dir=tmp_path / "data-1")
    simple, big = _write_objects(gw, key_prefix)
    gw2 = gateway_factory.start(backend, "second", data_dir=tmp_path / "data-2")
    _check_objects(gw2, key_prefix, simple, big)


@pytest.mark.backends("memory")
def test_memory_backend_starts_empty_after_restart(backend, gateway_factory, key_prefix, tmp_path):
    data_dir = tmp_path / "data"
    gw = gateway_factory.start(backend, "before", data_dir=data_dir)
    boto3_client(gw).put_object(Bucket=BUCKET, Key=key_prefix + "gone", Body=b"x")
    assert gw.stop() == 0
    gw2 = gateway_factory.start(backend, "after", data_dir=data_dir)
    listed = boto3_client(gw2).list_objects_v2(Bucket=BUCKET, Prefix=key_prefix)
    assert listed.get("Contents", []) == []
