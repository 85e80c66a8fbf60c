"""Helpers for the job suites: a VOD client on a gateway, queue backends,
ProcessMedia and waiting for results, and pictures to compare."""

from __future__ import annotations

import io
import json
import subprocess
import time
import urllib.request
from pathlib import Path

from PIL import Image, ImageStat
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.vod.v20180717 import models, vod_client

import support

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
FPS = 25


def jobs_toml(store: str, workers: int = 1, **extra) -> str:
    """A [jobs] table: `store` is "sqlite" or a postgres:// URL."""
    lines = ["[jobs]", f"store = {support.toml_str(store)}", f"workers = {workers}",
             "lease_secs = 3", "poll_interval_ms = 200"]
    for key, value in extra.items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def vod(gw) -> vod_client.VodClient:
    """The official VOD client pointed at the gateway."""
    profile = ClientProfile(httpProfile=HttpProfile(endpoint=f"127.0.0.1:{gw.port}",
                                                    protocol="http"))
    cred = credential.Credential(support.SECRET_ID, support.SECRET_KEY)
    return vod_client.VodClient(cred, "ap-guangzhou", profile)


def call(client, action: str, params: dict):
    """Calls `action` through the SDK's typed request and response models."""
    request = getattr(models, f"{action}Request")()
    request.from_json_string(json.dumps(params))
    return getattr(client, action)(request)


def error_of(client, action: str, params: dict) -> TencentCloudSDKException:
    try:
        call(client, action, params)
    except TencentCloudSDKException as err:
        return err
    raise AssertionError(f"{action}({params}) succeeded; an error was expected")


def process(client, path: str, task: dict, **kw) -> str:
    return call(client, "ProcessMedia",
                {"MediaStoragePath": path, "MediaProcessTask": task, **kw}).TaskId


def detail(client, task_id: str):
    return call(client, "DescribeTaskDetail", {"TaskId": task_id})


def wait(client, task_id: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        d = detail(client, task_id)
        if d.Status in ("FINISH", "ABORTED"):
            return d
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_id} still {d.Status} after {timeout}s")
        time.sleep(0.1)


def results(d) -> list:
    """(Type, result object) of each subtask."""
    out = []
    for r in d.ProcedureTask.MediaProcessResultSet:
        field = {"SnapshotByTimeOffset": "SnapshotByTimeOffsetTask",
                 "SampleSnapshot": "SampleSnapshotTask",
                 "ImageSprites": "ImageSpriteTask",
                 "CoverBySnapshot": "CoverBySnapshotTask",
                 "AnimatedGraphics": "AnimatedGraphicTask"}[r.Type]
        out.append((r.Type, getattr(r, field)))
    return out


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def image(url: str) -> Image.Image:
    return Image.open(io.BytesIO(fetch(url))).convert("RGB")


def ffmpeg_frame(name: str, seconds: float, size=None) -> Image.Image:
    """The frame on screen at `seconds` (the last one that starts at or
    before it) of a constant-rate fixture starting at 0, as ffmpeg decodes
    it. (`ffmpeg -ss T` would give the first frame at or after T.)"""
    index = int(seconds * FPS + 1e-6)
    vf = f"select=eq(n\\,{index})"
    if size:
        vf += f",scale={size[0]}:{size[1]}"
    args = ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(FIXTURES / name),
            "-vf", vf, "-frames:v", "1", "-f", "image2pipe", "-vcodec", "png", "-"]
    out = subprocess.run(args, check=True, capture_output=True).stdout
    return Image.open(io.BytesIO(out)).convert("RGB")


def mad(a: Image.Image, b: Image.Image) -> float:
    if a.size != b.size:
        b = b.resize(a.size)
    pa, pb = a.tobytes(), b.tobytes()
    return sum(abs(x - y) for x, y in zip(pa, pb)) / len(pa)


def mean(img: Image.Image, box=None) -> float:
    region = img.crop(box) if box else img
    return ImageStat.Stat(region.convert("L")).mean[0]


def stddev(img: Image.Image, box=None) -> float:
    region = img.crop(box) if box else img
    return ImageStat.Stat(region.convert("L")).stddev[0]


def upload(gw, key: str, name: str) -> None:
    support.cos_client(gw, "domain").put_object(Bucket=support.BUCKET, Key=key,
                                      Body=(FIXTURES / name).read_bytes())
