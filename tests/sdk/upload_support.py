"""Helpers for the VOD upload suites (test_vod_upload*.py): a gateway whose
jobs bucket is private, the temporary credential's COS client, FileIds,
and the check of the procedure's thumbnail."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta, timezone

import pytest
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosServiceError

import support
from jobs_support import FPS, call, ffmpeg_frame, image, jobs_toml, mad, results, wait

MEDIA_BUCKET = "media-1250000000"
VIDEO = "h264_bframes.mp4"  # 320x240, 25 fps, 10 s
PROCEDURE = "upload-thumbs"
UPLOAD_JOBS = {"bucket": MEDIA_BUCKET, "upload_sweep_secs": 1, "upload_grace_secs": 1}


def file_id(bucket: str, key: str) -> str:
    """jobs::file_id: 19 digits from SHA-256 of `bucket/key`."""
    n = int.from_bytes(hashlib.sha256(f"{bucket}/{key}".encode()).digest()[:8], "big")
    return str(10**18 + n % (9 * 10**18))


def start_gateway(factory, name: str, store: str, data_dir=None, media_store: str = "file://"):
    """A gateway with the private MEDIA_BUCKET (on `media_store`) as its jobs
    bucket, sweeping upload sessions every second with a one-second grace."""
    return factory.start("file", name, data_dir=data_dir,
                         extra_buckets=[(MEDIA_BUCKET, media_store, "private")],
                         extra=jobs_toml(store, **UPLOAD_JOBS))


def create_procedure(client) -> None:
    """PROCEDURE: the preset snapshot at 1 s."""
    call(client, "CreateProcedureTemplate", {"Name": PROCEDURE, "MediaProcessTask": {
        "SnapshotByTimeOffsetTaskSet": [{"Definition": 10, "ExtTimeOffsetSet": ["1s"]}]}})


def temp_cos(gw, answer, **override) -> CosS3Client:
    """cos-python-sdk-v5 with the session's temporary credential, connecting
    to the gateway with the virtual-host name of the answer's bucket."""
    cert = answer.TempCertificate
    conf = CosConfig(Region=answer.StorageRegion, SecretId=override.get("SecretId", cert.SecretId),
                     SecretKey=override.get("SecretKey", cert.SecretKey),
                     Token=override.get("Token", cert.Token),
                     IP="127.0.0.1", Port=gw.port, Scheme="http", Timeout=60)
    return CosS3Client(conf, retry=0)


def root_cos(gw) -> CosS3Client:
    conf = CosConfig(Region=support.REGION, SecretId=support.SECRET_ID,
                     SecretKey=support.SECRET_KEY, IP="127.0.0.1", Port=gw.port,
                     Scheme="http", Timeout=60)
    return CosS3Client(conf, retry=0)


def refused(call_it) -> tuple[int, str]:
    with pytest.raises(CosServiceError) as err:
        call_it()
    return err.value.get_status_code(), err.value.get_error_code()


def exists(gw, key: str) -> bool:
    try:
        root_cos(gw).head_object(Bucket=MEDIA_BUCKET, Key=key)
        return True
    except CosServiceError as err:
        assert err.get_status_code() == 404, err
        return False


def iso_in(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def wait_until(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"still not {what} after {timeout}s"
        time.sleep(0.2)


def tasks_of(client, fid: str) -> list:
    return call(client, "DescribeTasks", {"FileId": fid, "Limit": 100}).TaskSet


def check_thumbnail(client, task_id: str, context: str = "") -> None:
    d = wait(client, task_id)
    assert d.Status == "FINISH"
    assert d.ProcedureTask.SessionContext == context
    [(kind, r)] = results(d)
    assert (kind, r.Status) == ("SnapshotByTimeOffset", "SUCCESS"), r.Message
    [pic] = r.Output.PicInfoSet
    got = image(pic.Url)
    assert got.size == (320, 240)
    here = mad(got, ffmpeg_frame(VIDEO, 1.0, size=got.size))
    assert here < 12, f"the snapshot differs from ffmpeg's frame at 1s by {here:.1f}"
    assert mad(got, ffmpeg_frame(VIDEO, 1.0 + 1 / FPS, size=got.size)) > here + 1
