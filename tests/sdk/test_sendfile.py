"""GET bodies sent with sendfile(2) (`limits.sendfile = "always"`): cached
objects of local buckets of 1 MiB or more go from the file they were read
from straight to the socket. Whatever the path, a client must get exactly
the bytes of the version the ETag names: whole, in ranges, many at once,
over the COS and S3 SDKs, and the new bytes once the object is replaced."""

import concurrent.futures
import hashlib

import pytest
import requests

from support import BUCKET, boto3_client, cos_body, cos_client, payload

MiB = 1024 * 1024


def start(factory, name, mode):
    return factory.start("file", name, extra=f'\n[limits]\nsendfile = "{mode}"\n')


@pytest.fixture
def always(gateway_factory):
    return start(gateway_factory, "sendfile-always", "always")


def file_reads(gw) -> int:
    """Bytes the gateway process read through read-like calls (sendfile
    counts: the kernel reads the file for it; /proc/PID/io `rchar`)."""
    text = open(f"/proc/{gw.proc.pid}/io").read()
    return int(next(line.split()[1] for line in text.splitlines() if line.startswith("rchar:")))


@pytest.mark.parametrize("mode, sent_from_file", [("always", True), ("off", False)])
def test_cached_bodies_come_from_the_file_only_with_sendfile(gateway_factory, mode, sent_from_file):
    gw = start(gateway_factory, f"mode-{mode}", mode)
    s3 = boto3_client(gw)
    body = payload(3 * MiB, seed=7)
    s3.put_object(Bucket=BUCKET, Key="m", Body=body)
    assert s3.get_object(Bucket=BUCKET, Key="m")["Body"].read() == body  # fills the cache
    before = file_reads(gw)
    for _ in range(4):
        assert s3.get_object(Bucket=BUCKET, Key="m")["Body"].read() == body
    read = file_reads(gw) - before
    if sent_from_file:
        assert read >= 4 * len(body), read
    else:
        assert read < len(body), read  # metadata sidecars only: bodies came from memory


def test_an_unknown_mode_is_refused_at_start(gateway_factory):
    with pytest.raises(Exception):
        start(gateway_factory, "mode-bad", "sometimes")


def test_whole_and_ranged_gets_through_both_sdks(always):
    s3 = boto3_client(always)
    cos = cos_client(always, "domain")
    body = payload(3 * MiB + 12345, seed=1)
    s3.put_object(Bucket=BUCKET, Key="big.bin", Body=body)
    for _ in range(3):
        assert s3.get_object(Bucket=BUCKET, Key="big.bin")["Body"].read() == body
    got = cos_body(cos.get_object(Bucket=BUCKET, Key="big.bin"))
    assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()
    for first, last in [(0, 0), (1, MiB), (MiB - 7, 2 * MiB + 7), (len(body) - 10, len(body) - 1)]:
        part = s3.get_object(Bucket=BUCKET, Key="big.bin", Range=f"bytes={first}-{last}")
        assert part["Body"].read() == body[first:last + 1], (first, last)
    part = cos_body(cos.get_object(Bucket=BUCKET, Key="big.bin", Range=f"bytes={MiB}-"))
    assert part == body[MiB:]


def test_concurrent_gets_of_several_objects(always):
    s3 = boto3_client(always)
    bodies = {f"c{i}.bin": payload(MiB + i * 333_333, seed=10 + i) for i in range(4)}
    for key, body in bodies.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    urls = {key: s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key})
            for key in bodies}

    def fetch(key):
        with requests.Session() as session:
            return [hashlib.sha256(session.get(urls[key], timeout=60).content).digest()
                    for _ in range(5)]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(fetch, [k for k in bodies for _ in range(4)]))
    keys = [k for k in bodies for _ in range(4)]
    for key, digests in zip(keys, results):
        assert digests == [hashlib.sha256(bodies[key]).digest()] * 5, key


def test_a_replaced_object_is_sent_anew(always):
    s3 = boto3_client(always)
    first = payload(2 * MiB, seed=21)
    second = payload(2 * MiB, seed=22)
    s3.put_object(Bucket=BUCKET, Key="replaced.bin", Body=first)
    assert s3.get_object(Bucket=BUCKET, Key="replaced.bin")["Body"].read() == first
    assert s3.get_object(Bucket=BUCKET, Key="replaced.bin")["Body"].read() == first
    s3.put_object(Bucket=BUCKET, Key="replaced.bin", Body=second)
    got = s3.get_object(Bucket=BUCKET, Key="replaced.bin")
    assert got["Body"].read() == second
    assert got["ETag"].strip('"') == hashlib.md5(second).hexdigest()
    # Replaced behind the gateway's back, by rename, as any writer would.
    path = always.config.parent / "data" / "buckets" / BUCKET / "replaced.bin"
    tmp = path.with_name("replaced.tmp")
    tmp.write_bytes(first)
    tmp.replace(path)
    assert s3.get_object(Bucket=BUCKET, Key="replaced.bin")["Body"].read() == first
