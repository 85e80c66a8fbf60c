"""Helpers for the CI media API suites (test_ci_*.py, docs/ci-media-api.md):
clients for the three kinds of host, CI errors read from their XML, job
requests and waiting, queue state, bucket snapshots, and pictures compared
with the frames ffmpeg decodes.

How cos-python-sdk-v5 (1.9.44) parses CI answers matters to every test here:
`xml_to_dict` drops the root element and turns repeated elements into lists,
a single element into a dict/str, an empty element into None; the `ci_*`
methods then force only their top-level repeated field into a list
(`JobsDetail`, `QueueList`, `Queue`, `TemplateList`, `MediaBucketList`).
Everything nested (`ObjectName`, `NonExistJobIds`, ...) is a str for one
value and a list for several: read them through `as_list`.
"""

from __future__ import annotations

import functools
import io
import re
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import requests
from PIL import Image, ImageChops, ImageStat
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosServiceError

import support
from support import BUCKET, DOMAIN, REGION, SECRET_ID, SECRET_KEY

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
FPS = 25

# A second bucket for outputs written elsewhere.
OTHER = "other-1250000000"

JOB_ID = re.compile(r"j[0-9a-f]{32}")
QUEUE_ID = re.compile(r"p[0-9a-f]{32}")
TEMPLATE_ID = re.compile(r"t[0-9a-f]{32}")
# ISO 8601 with a zone: 2024-05-01T10:20:30Z, ...+08:00, ...+0800, fractions allowed.
ISO_8601 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)")

ENDED = ("Success", "Failed", "Cancel")
# Statuses a CI error may have (docs/ci-media-api.md, "Errors").
CI_ERROR_STATUSES = (400, 403, 404, 405, 409, 501)

# A credential that may do anything on BUCKET and nothing on OTHER.
MAIN_ONLY_ID = "AKIDcimainonly"
MAIN_ONLY_KEY = "ci-main-only-secret"


def main_only_credential_toml() -> str:
    return "\n".join([
        "[[credentials]]",
        f"secret_id = {support.toml_str(MAIN_ONLY_ID)}",
        f"secret_key = {support.toml_str(MAIN_ONLY_KEY)}",
        "[[credentials.allow]]",
        'actions = ["cos:*", "ci:*"]',
        f"resources = [{support.toml_str(BUCKET + '/*')}]",
        "",
    ])


def new_id(prefix: str) -> str:
    """A well-formed id that nothing has: `j`/`t`/`p`/`w` + 32 hex."""
    return prefix + uuid.uuid4().hex


def as_list(value) -> list:
    """A repeated XML field as the SDK hands it over: None, one value, or a list."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


# --------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------

def client(gw, style: str = "vhost", secret_id: str = SECRET_ID, secret_key: str = SECRET_KEY):
    """cos-python-sdk-v5 on the gateway, without retries.

    domain: `CosConfig(Domain=127.0.0.1:PORT)`, Host 127.0.0.1:PORT (the default
            bucket, whatever `Bucket=` says);
    vhost:  `CosConfig(Region, IP, Port)`, Host <Bucket>.cos.<region>.myqcloud.com
            (the SDK sends CI calls to the object host in this configuration);
    ci:     the same with `Endpoint=ci.<region>.myqcloud.com`, Host
            <Bucket>.ci.<region>.myqcloud.com: the CI host real DNS gives.
    Calls that pass no bucket to the SDK's send_request (ci_get_media_bucket,
    ci_open_pic_bucket, ci_get_hls_play_key, ...) go out with Host
    127.0.0.1:PORT in the IP styles."""
    kw = dict(Region=REGION, SecretId=secret_id, SecretKey=secret_key, Scheme="http", Timeout=120)
    if style == "domain":
        kw["Domain"] = f"127.0.0.1:{gw.port}"
    elif style == "vhost":
        kw.update(IP="127.0.0.1", Port=gw.port)
    elif style == "ci":
        kw.update(IP="127.0.0.1", Port=gw.port, Endpoint=f"ci.{REGION}.{DOMAIN}")
    else:
        raise ValueError(style)
    return CosS3Client(CosConfig(**kw), retry=0)


def ci_host(bucket: str = BUCKET) -> str:
    return f"{bucket}.ci.{REGION}.{DOMAIN}"


def raw(gw, method: str, path: str, params: dict | None = None, data: bytes | None = None,
        headers: dict | None = None, host: str | None = None) -> requests.Response:
    """A request signed like a COS client's (q-sign over the path, every query
    parameter and the Host), to 127.0.0.1:PORT`path` (the bare host: the
    default bucket, as `CosConfig(Domain=...)` sends) or with `Host: host`."""
    headers = dict(headers or {})
    if host:
        headers["Host"] = host
    return requests.request(method, f"{gw.url}{path}", params=params, data=data,
                            headers=headers, auth=support.CosSigned(), timeout=60)


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

class CiError:
    def __init__(self, status: int, code: str, message: str, request_id: str, raw: str):
        self.status, self.code, self.message, self.request_id, self.raw = \
            status, code, message, request_id, raw

    def __repr__(self):
        return f"CiError({self.status} {self.code}: {self.message!r})"


def parse_error(status: int, body) -> CiError:
    """A CI error document `<Error><Code/><Message/><RequestId/></Error>`; fails
    the test when the body is not one."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as err:
        raise AssertionError(f"{status} error body is not XML ({err}): {body[:300]!r}")
    assert root.tag == "Error", f"{status} error document's root is <{root.tag}>: {body[:300]!r}"
    code = (root.findtext("Code") or "").strip()
    assert code, f"{status} error without a <Code>: {body[:300]!r}"
    return CiError(status, code, root.findtext("Message") or "", root.findtext("RequestId") or "",
                   body)


def error_of(exc: CosServiceError) -> CiError:
    return parse_error(exc.get_status_code(), exc.get_origin_msg())


def expect_error(fn, *args, **kwargs) -> CiError:
    """Calls an SDK method that must fail with a CI error document."""
    try:
        result = fn(*args, **kwargs)
    except CosServiceError as exc:
        return error_of(exc)
    raise AssertionError(f"{getattr(fn, '__name__', fn)} succeeded; an error was expected: "
                         f"{str(result)[:300]}")


def check_error(err: CiError, status: int, code: str, field: str | None = None):
    assert (err.status, err.code) == (status, code), err
    if field:
        assert field in err.message, f"the message does not name {field}: {err.message!r}"


# --------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------

def snapshot_request(input_key: str, output_object: str | None = None, *,
                     output_bucket: str = BUCKET, sprite_object: str | None = None,
                     sprite: dict | None = None, queue_id: str | None = None,
                     template_id: str | None = None, user_data: str | None = None,
                     job_level: int | None = None, callback: str | None = None,
                     callback_format: str | None = None, **snapshot) -> dict:
    """A `Request` for POST /jobs (the `Jobs=` argument of ci_create_media_jobs).
    Snapshot fields are given as keyword arguments (Mode=..., Count=...)."""
    operation: dict = {}
    if template_id:
        operation["TemplateId"] = template_id
    if snapshot or sprite:
        node = {k: v for k, v in snapshot.items()}
        if sprite is not None:
            node["SpriteSnapshotConfig"] = sprite
        operation["Snapshot"] = node
    output = {"Region": REGION, "Bucket": output_bucket}
    if output_object is not None:
        output["Object"] = output_object
    if sprite_object is not None:
        output["SpriteObject"] = sprite_object
    operation["Output"] = output
    if user_data is not None:
        operation["UserData"] = user_data
    if job_level is not None:
        operation["JobLevel"] = str(job_level)
    request = {"Tag": "Snapshot", "Input": {"Object": input_key}, "Operation": operation}
    if queue_id:
        request["QueueId"] = queue_id
    if callback:
        request["CallBack"] = callback
    if callback_format:
        request["CallBackFormat"] = callback_format
    return request


def submit(cos, request: dict, bucket: str = BUCKET) -> dict:
    """ci_create_media_jobs: the new job's JobsDetail."""
    response = cos.ci_create_media_jobs(Bucket=bucket, Jobs=request, Lst={})
    details = response.get("JobsDetail")
    assert isinstance(details, list) and len(details) == 1, response
    detail = details[0]
    assert JOB_ID.fullmatch(detail.get("JobId") or ""), detail
    return detail


def get_jobs(cos, ids: list[str], bucket: str = BUCKET) -> tuple[list[dict], list[str]]:
    """ci_get_media_jobs of a comma list: (JobsDetail list, NonExistJobIds)."""
    response = cos.ci_get_media_jobs(Bucket=bucket, JobIDs=",".join(ids))
    return as_list(response.get("JobsDetail")), as_list(response.get("NonExistJobIds"))


def job(cos, job_id: str, bucket: str = BUCKET) -> dict:
    details, missing = get_jobs(cos, [job_id], bucket)
    assert len(details) == 1 and not missing, (details, missing)
    assert details[0]["JobId"] == job_id
    return details[0]


def wait_job(cos, job_id: str, timeout: float = 60.0, bucket: str = BUCKET) -> dict:
    """Polls until the job has ended."""
    deadline = time.monotonic() + timeout
    while True:
        d = job(cos, job_id, bucket)
        if d.get("State") in ENDED:
            return d
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {d.get('State')} after {timeout}s")
        time.sleep(0.05)


def wait_until(cos, job_id: str, predicate, what: str, timeout: float = 60.0,
               bucket: str = BUCKET) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        d = job(cos, job_id, bucket)
        if predicate(d):
            return d
        assert d.get("State") not in ENDED, f"job {job_id} ended ({d.get('State')}) before {what}"
        assert time.monotonic() < deadline, f"job {job_id}: no {what} after {timeout}s ({d})"
        time.sleep(0.02)


def run(cos, request: dict, bucket: str = BUCKET, timeout: float = 60.0) -> dict:
    """Submits and waits; the job must succeed."""
    d = wait_job(cos, submit(cos, request, bucket)["JobId"], timeout, bucket)
    assert d["State"] == "Success", d
    return d


def result_file(detail: dict) -> dict:
    result = (detail.get("Operation") or {}).get("MediaResult") or {}
    return result.get("OutputFile") or {}


def output_names(detail: dict) -> list[str]:
    """MediaResult.OutputFile.ObjectName, in order."""
    return as_list(result_file(detail).get("ObjectName"))


def sprite_names(detail: dict) -> list[str]:
    """MediaResult.OutputFile.SpriteOutputFile.ObjectName, in order."""
    return as_list((result_file(detail).get("SpriteOutputFile") or {}).get("ObjectName"))


def list_jobs(cos, bucket: str = BUCKET, tag: str = "Snapshot", **kw) -> tuple[list[dict], str]:
    response = cos.ci_list_media_jobs(Bucket=bucket, Tag=tag, **kw)
    return as_list(response.get("JobsDetail")), response.get("NextToken") or ""


def all_job_ids(cos, bucket: str = BUCKET, size: int = 100, **kw) -> list[str]:
    """Every job of every state, oldest first, through nextToken paging."""
    ids, token = [], ""
    for _ in range(1000):
        page, token = list_jobs(cos, bucket, OrderByTime="Asc", States="All", Size=size,
                                NextToken=token, **kw)
        ids += [d["JobId"] for d in page]
        if not token:
            return ids
    raise AssertionError("nextToken never ran out")


def parse_time(text: str) -> datetime:
    assert text and ISO_8601.fullmatch(text), f"not ISO 8601 with a zone: {text!r}"
    text = text.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    return datetime.fromisoformat(text)


# --------------------------------------------------------------------------
# The queue
# --------------------------------------------------------------------------

def queue(cos, bucket: str = BUCKET) -> dict:
    """The bucket's one media queue (ci_get_media_queue)."""
    response = cos.ci_get_media_queue(Bucket=bucket)
    queues = response.get("QueueList")
    assert isinstance(queues, list) and len(queues) == 1, response
    return queues[0]


def set_queue(cos, state: str, notify: dict | None = None, bucket: str = BUCKET) -> dict:
    """ci_update_media_queue: State Active/Paused, optional NotifyConfig."""
    q = queue(cos, bucket)
    request = {"Name": q.get("Name") or "queue-1", "QueueID": q["QueueId"], "State": state}
    if notify is not None:
        request["NotifyConfig"] = notify
    return cos.ci_update_media_queue(Bucket=bucket, QueueId=q["QueueId"], Request=request)


# --------------------------------------------------------------------------
# Objects
# --------------------------------------------------------------------------

def upload(gw, key: str, name: str, bucket: str = BUCKET) -> None:
    support.boto3_client(gw).put_object(Bucket=bucket, Key=key,
                                        Body=(FIXTURES / name).read_bytes())


def keys(s3, bucket: str = BUCKET, prefix: str = "") -> list[str]:
    out, token = [], None
    while True:
        kw = {"Bucket": bucket, "Prefix": prefix}
        if token:
            kw["ContinuationToken"] = token
        page = s3.list_objects_v2(**kw)
        out += [o["Key"] for o in page.get("Contents", [])]
        token = page.get("NextContinuationToken")
        if not token:
            return out


def listing(s3, bucket: str = BUCKET, prefix: str = "") -> dict:
    """{key: (size, ETag, LastModified)} of everything under prefix."""
    out, token = {}, None
    while True:
        kw = {"Bucket": bucket, "Prefix": prefix}
        if token:
            kw["ContinuationToken"] = token
        page = s3.list_objects_v2(**kw)
        for o in page.get("Contents", []):
            out[o["Key"]] = (o["Size"], o["ETag"], o["LastModified"])
        token = page.get("NextContinuationToken")
        if not token:
            return out


def read(s3, key: str, bucket: str = BUCKET) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def picture(s3, key: str, bucket: str = BUCKET) -> Image.Image:
    return Image.open(io.BytesIO(read(s3, key, bucket))).convert("RGB")


def is_png(data: bytes) -> bool:
    return data[:8] == b"\x89PNG\r\n\x1a\n"


def is_jpeg(data: bytes) -> bool:
    return data[:3] == b"\xff\xd8\xff"


# --------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------

def ffprobe(name: str, *args) -> str:
    return subprocess.run(["ffprobe", "-v", "error", *args, str(FIXTURES / name)],
                          check=True, capture_output=True, text=True).stdout


def duration(name: str) -> float:
    return float(ffprobe(name, "-show_entries", "format=duration", "-of", "csv=p=0"))


def keyframe_times(name: str) -> list[float]:
    out = ffprobe(name, "-select_streams", "v", "-skip_frame", "nokey",
                  "-show_entries", "frame=pts_time", "-of", "csv=p=0")
    return [round(float(line.strip().strip(",")), 6) for line in out.splitlines() if line.strip(", ")]


@functools.lru_cache(maxsize=8)
def frames(name: str) -> tuple:
    """Every frame of a constant-rate fixture as ffmpeg decodes and displays
    it (rotation applied), decoded once."""
    first = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(FIXTURES / name),
                            "-frames:v", "1", "-f", "image2pipe", "-vcodec", "png", "-"],
                           check=True, capture_output=True).stdout
    size = Image.open(io.BytesIO(first)).size
    data = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(FIXTURES / name),
                           "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                          check=True, capture_output=True).stdout
    step = size[0] * size[1] * 3
    return tuple(Image.frombytes("RGB", size, data[i:i + step])
                 for i in range(0, len(data) - step + 1, step))


def frame_index(seconds: float) -> int:
    """The frame on screen at `seconds` (the last that starts at or before it)."""
    return int(seconds * FPS + 1e-6)


def frame_at(name: str, seconds: float, size=None) -> Image.Image:
    all_frames = frames(name)
    img = all_frames[min(frame_index(seconds), len(all_frames) - 1)]
    if size and img.size != tuple(size):
        img = img.resize(tuple(size), Image.BILINEAR)
    return img


def mad(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel value (0-255)."""
    if a.size != b.size:
        b = b.resize(a.size, Image.BILINEAR)
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


def mean_luma(img: Image.Image, box=None) -> float:
    region = img.crop(box) if box else img
    return ImageStat.Stat(region.convert("L")).mean[0]


def colour_of(img: Image.Image, box) -> tuple:
    """(mean R, G, B) and the largest per-channel spread of a region."""
    stat = ImageStat.Stat(img.crop(box).convert("RGB"))
    return tuple(round(v) for v in stat.mean), max(stat.stddev)


def assert_colour(img: Image.Image, box, rgb, what: str, tolerance: float = 3.0):
    mean, spread = colour_of(img, box)
    assert all(abs(m - c) <= tolerance for m, c in zip(mean, rgb)) and spread <= tolerance, \
        f"{what} {box}: mean {mean}, spread {spread:.1f}; want {rgb}"


def same_picture(got: Image.Image, name: str, seconds: float, limit: float = 12.0,
                 what: str = "picture"):
    """`got` is the frame on screen at `seconds`: close to it and clearly
    farther from the frames just before and after (when those differ)."""
    want = frame_at(name, seconds, got.size)
    d = mad(got, want)
    assert d < limit, f"{what}: differs from {name}'s frame at {seconds}s by {d:.1f}"
    count = len(frames(name))
    index = frame_index(seconds)
    for other_index in (index - 1, index + 1):
        if not 0 <= other_index < count:
            continue
        other = frames(name)[other_index].resize(got.size, Image.BILINEAR)
        if mad(want, other) < 1.0:   # identical frames (the black lead): no telling apart
            continue
        o = mad(got, other)
        assert o > d + 0.5, (f"{what}: frame {other_index} of {name} is as close as frame {index} "
                             f"({o:.1f} vs {d:.1f})")


def picture_time(got: Image.Image, name: str, candidates) -> float:
    """The candidate time whose frame is closest to `got`."""
    scores = {t: mad(got, frame_at(name, t, got.size)) for t in candidates}
    return min(scores, key=scores.get)
