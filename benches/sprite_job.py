#!/usr/bin/env python3
"""A 100-cell image-sprite job through the gateway vs the equivalent ffmpeg
filter command line, on the same video, in one run.

    .venv/bin/python benches/sprite_job.py VIDEO [--cells 100] [--binary target/release/framegate]

The gateway runs on a fresh data directory with one job worker; the video is
uploaded with the COS SDK, a sprite template (142x80 cells, 10x10, one cell
every duration/cells seconds) is created and ProcessMedia is timed from
submission to FINISH through tencentcloud-sdk-python-vod. CPU is the
gateway's user+system time over the job. ffmpeg gets
`-vf fps=1/N,scale=142:80,tile=10x10 -frames:v 1` and is timed the same way
(wall and its CPU). Both also run while a snapshot client measures latency,
to show that jobs yield the CPU to interactive requests.

benches/compare.py imports run() for its sprite section (without the
snapshot client, so nothing else competes for the CPU).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "sdk"))

SECRET_ID, SECRET_KEY = "AKIDbenchmark", "benchmarksecret"
BUCKET = "bench-1250000000"


def start_gateway(binary: Path, workdir: Path, idle: bool) -> tuple[subprocess.Popen, int]:
    config = workdir / "framegate.toml"
    config.write_text(f"""listen = "127.0.0.1:0"
data_dir = "{workdir / 'data'}"
default_bucket = "{BUCKET}"
[media]
cache_bytes = 0
[jobs]
workers = 1
idle_priority = {"true" if idle else "false"}
[[buckets]]
name = "{BUCKET}"
[[credentials]]
secret_id = "{SECRET_ID}"
secret_key = "{SECRET_KEY}"
""")
    proc = subprocess.Popen([str(binary), "serve", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=open(workdir / "gateway.log", "wb"),
                            text=True)
    for line in proc.stdout:
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if m:
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, int(m.group(1))
    raise SystemExit("the gateway did not start; see gateway.log")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def duration_of(video: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                          "-of", "csv=p=0", str(video)], capture_output=True, text=True)
    return float(out.stdout)


class SnapshotProbe:
    """Requests a keyframe snapshot in a loop and records latencies."""

    def __init__(self, url: str):
        self.url = url
        self.latencies: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            t = time.perf_counter()
            urllib.request.urlopen(self.url).read()
            self.latencies.append(time.perf_counter() - t)
            time.sleep(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def median_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else float("nan")


def run(video: Path, cells: int = 100, binary: Path = ROOT / "target" / "release" / "framegate",
        idle_priority: bool = True, probes: bool = True) -> dict:
    """Runs the sprite job and the ffmpeg command on `video`; returns the
    figures (see main). With `probes=False` nothing else runs meanwhile (no
    snapshot client), so wall and CPU are the job's and ffmpeg's alone; the
    `snapshot_median_ms_*` entries are then None."""
    from qcloud_cos import CosConfig, CosS3Client
    from jobs_support import call
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.vod.v20180717 import vod_client

    def probe(url):
        return SnapshotProbe(url) if probes else contextlib.nullcontext()

    duration = duration_of(video)
    interval = max(1, round(duration / cells))
    side = int(cells ** 0.5)
    workdir = Path(tempfile.mkdtemp(prefix="framegate-sprite-"))
    proc, port = start_gateway(binary, workdir, idle_priority)
    try:
        cos = CosS3Client(CosConfig(Region="ap-guangzhou", SecretId=SECRET_ID, SecretKey=SECRET_KEY,
                                    Domain=f"127.0.0.1:{port}", Scheme="http", Timeout=600))
        cos.put_object_from_local_file(Bucket=BUCKET, LocalFilePath=str(video), Key="video.mp4")
        snapshot_url = cos.get_presigned_url(Bucket=BUCKET, Key="video.mp4", Method="GET",
                                             Params={"ci-process": "snapshot", "time": "1",
                                                     "mode": "keyframe", "width": "320"},
                                             Expired=3600)
        vod = vod_client.VodClient(credential.Credential(SECRET_ID, SECRET_KEY), "ap-guangzhou",
                                   ClientProfile(httpProfile=HttpProfile(endpoint=f"127.0.0.1:{port}",
                                                                          protocol="http")))
        definition = call(vod, "CreateImageSpriteTemplate", {
            "SampleType": "Time", "SampleInterval": interval, "RowCount": side,
            "ColumnCount": side, "Width": 142, "Height": 0}).Definition
        with probe(snapshot_url) as idle_probe:
            if probes:
                time.sleep(3)
        cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
        with probe(snapshot_url) as busy_probe:
            task = call(vod, "ProcessMedia", {"MediaStoragePath": "/video.mp4", "MediaProcessTask": {
                "ImageSpriteTaskSet": [{"Definition": definition}]}}).TaskId
            while True:
                d = call(vod, "DescribeTaskDetail", {"TaskId": task})
                if d.Status == "FINISH":
                    break
                time.sleep(0.05)
        wall, cpu = time.perf_counter() - t0, cpu_seconds(proc.pid) - cpu0
        result = d.ProcedureTask.MediaProcessResultSet[0].ImageSpriteTask
        assert result.Status == "SUCCESS", result.Message
        cells_made = len(urllib.request.urlopen(result.Output.WebVttUrl).read().decode().split("-->")) - 1
        out = workdir / "ffmpeg_sprite.jpg"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        with probe(snapshot_url) as ffmpeg_probe:
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(video),
                            "-vf", f"fps=1/{interval},scale=142:80,tile={side}x{side}",
                            "-frames:v", "1", str(out)], check=True)
        ffmpeg_wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        ffmpeg_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

        def median(p):
            return round(p.median_ms(), 1) if probes else None

        return {
            "video": video.name, "job_idle_priority": idle_priority, "duration_s": round(duration, 1),
            "cells": cells_made, "interval_s": interval,
            "framegate_wall_s": round(wall, 2), "framegate_cpu_s": round(cpu, 2),
            "ffmpeg_wall_s": round(ffmpeg_wall, 2), "ffmpeg_cpu_s": round(ffmpeg_cpu, 2),
            "speedup_wall": round(ffmpeg_wall / wall, 2),
            "snapshot_median_ms_idle": median(idle_probe),
            "snapshot_median_ms_during_job": median(busy_probe),
            "snapshot_median_ms_during_ffmpeg": median(ffmpeg_probe),
        }
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("--cells", type=int, default=100)
    parser.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "framegate")
    parser.add_argument("--normal-priority", action="store_true",
                        help="run job threads at normal priority (jobs.idle_priority = false)")
    args = parser.parse_args()
    report = run(args.video, args.cells, args.binary, idle_priority=not args.normal_priority)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
