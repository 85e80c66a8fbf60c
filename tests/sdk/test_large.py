"""Large objects are streamed: 50 MiB on every backend, and 1 GiB through a
gateway whose peak RSS must stay under 100 MiB."""

import hashlib
import time

import pytest
import requests

import support

from support import (
    REPORT_LINES, BUCKET, GiB, MiB, StreamingBody, cos_client, crc64_ecma, have_fast_crc64, hget,
    payload,
)

RSS_LIMIT_MIB = 100


def _stream_get(url: str):
    """GET url, hashing the body while it streams; (md5 hex, crc64, size, response)."""
    md5 = hashlib.md5()
    crc = 0
    size = 0
    with requests.get(url, stream=True, timeout=300, auth=support.CosSigned()) as r:
        assert r.status_code == 200, r.text[:500]
        for chunk in r.iter_content(chunk_size=1 * MiB):
            md5.update(chunk)
            if have_fast_crc64():
                crc = crc64_ecma(chunk, crc)
            size += len(chunk)
    return md5.hexdigest(), crc, size, r


def test_put_of_50_mib_streamed_object(http, gateway, key_prefix):
    key = key_prefix + "fifty.bin"
    body = StreamingBody(50 * MiB, seed=5)
    r = http.put(key, data=body, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text[:500]
    assert r.headers["ETag"] == f'"{body.md5.hexdigest()}"'
    md5, crc, size, got = _stream_get(http.url(key))
    http.request("DELETE", key)
    assert size == 50 * MiB
    assert md5 == body.md5.hexdigest()
    if have_fast_crc64():
        assert got.headers.get("x-cos-hash-crc64ecma") == str(crc)


def test_cos_sdk_put_of_50_mib_file(gateway, key_prefix, tmp_path):
    cos = cos_client(gateway, "domain")
    path = tmp_path / "fifty.bin"
    with open(path, "wb") as f:
        for i in range(50):
            f.write(payload(MiB, seed=100 + i))
    with open(path, "rb") as f:
        put = cos.put_object(Bucket=BUCKET, Key=key_prefix + "fifty.bin", Body=f)
    want = hashlib.md5(path.read_bytes()).hexdigest()
    assert hget(put, "ETag") == f'"{want}"'
    got = cos.get_object(Bucket=BUCKET, Key=key_prefix + "fifty.bin")
    md5 = hashlib.md5()
    for chunk in got["Body"].get_stream(chunk_size=MiB):
        md5.update(chunk)
    assert md5.hexdigest() == want
    cos.delete_object(Bucket=BUCKET, Key=key_prefix + "fifty.bin")
    path.unlink()


@pytest.mark.slow
@pytest.mark.backends("file")
def test_one_gib_put_and_get_keep_gateway_rss_under_100_mib(backend, gateway_factory, key_prefix):
    gw = gateway_factory.start(backend, "one-gib")
    url = f"{gw.url}/{BUCKET}/{key_prefix}one-gib.bin"
    baseline = gw.status_kib("VmHWM")

    body = StreamingBody(1 * GiB, seed=6)
    t0 = time.monotonic()
    r = requests.put(url, data=body, timeout=600, auth=support.CosSigned())
    put_s = time.monotonic() - t0
    assert r.status_code == 200, r.text[:500]
    assert body.sent == 1 * GiB
    assert r.headers["ETag"] == f'"{body.md5.hexdigest()}"'
    after_put = gw.status_kib("VmHWM")

    t0 = time.monotonic()
    md5, crc, size, got = _stream_get(url)
    get_s = time.monotonic() - t0
    assert size == 1 * GiB
    assert md5 == body.md5.hexdigest()
    if have_fast_crc64():
        assert got.headers.get("x-cos-hash-crc64ecma") == str(crc)

    peak = gw.status_kib("VmHWM")
    assert requests.delete(url, timeout=60).status_code == 204  # don't leave 1 GiB in /tmp
    REPORT_LINES.append(
        f"1 GiB PUT+GET (file backend): gateway pid {gw.pid}: VmHWM at start {baseline / 1024:.1f} MiB, "
        f"after PUT {after_put / 1024:.1f} MiB, after GET {peak / 1024:.1f} MiB "
        f"(limit {RSS_LIMIT_MIB} MiB); PUT {put_s:.1f}s ({1024 / put_s:.0f} MiB/s), "
        f"GET {get_s:.1f}s ({1024 / get_s:.0f} MiB/s)"
    )
    assert peak < RSS_LIMIT_MIB * 1024, f"peak RSS {peak / 1024:.1f} MiB"
