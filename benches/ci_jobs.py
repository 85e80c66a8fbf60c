#!/usr/bin/env python3
"""CI snapshot jobs (cos-python-sdk-v5's ci_create_media_jobs) vs the ffmpeg
command line doing the same, on the same video, in one run.

    .venv/bin/python benches/ci_jobs.py VIDEO [--binary target/release/framegate]

Two jobs, each timed from submission to State=Success with the gateway's CPU
(user + system from /proc) over the job, one job worker at SCHED_IDLE and
nothing else running:

- pictures: Mode=Interval, 100 pictures one every duration/100 s, 320 wide;
  ffmpeg: `-vf fps=1/N,scale=320:-2 -frames:v 100 out%03d.jpg`;
- sprite: Mode=Interval, 100 cells of 142x80 in one 10x10 sheet
  (OnlySprite); ffmpeg: `-vf fps=1/N,scale=142:80,tile=10x10 -frames:v 1`.

benches/compare.py imports run() for its `ci` section.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "sdk"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sprite_job import BUCKET, SECRET_ID, SECRET_KEY, cpu_seconds, duration_of, start_gateway  # noqa: E402


def ffmpeg_run(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one ffmpeg run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
                   check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def job_run(cos, pid: int, snapshot: dict, output: dict) -> tuple[float, float, dict]:
    """Wall and CPU seconds of one CI job, and its JobsDetail."""
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    created = cos.ci_create_media_jobs(Bucket=BUCKET, Jobs={
        "Tag": "Snapshot", "Input": {"Object": "video.mp4"},
        "Operation": {"Snapshot": snapshot, "Output": {"Region": "ap-guangzhou",
                                                       "Bucket": BUCKET, **output}}}, Lst={})
    job_id = created["JobsDetail"][0]["JobId"]
    while True:
        detail = cos.ci_get_media_jobs(Bucket=BUCKET, JobIDs=job_id)["JobsDetail"][0]
        if detail["State"] in ("Success", "Failed", "Cancel"):
            break
        time.sleep(0.05)
    wall, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    if detail["State"] != "Success":
        raise RuntimeError(f"job {job_id} ended {detail['State']}: {detail.get('Message')}")
    return wall, cpu, detail


def run(video: Path, binary: Path = ROOT / "target" / "release" / "framegate") -> dict:
    """Both jobs and both ffmpeg commands on `video`; the figures."""
    from qcloud_cos import CosConfig, CosS3Client

    duration = duration_of(video)
    interval = duration / 100
    workdir = Path(tempfile.mkdtemp(prefix="framegate-ci-"))
    proc, port = start_gateway(binary, workdir, idle=True)
    try:
        cos = CosS3Client(CosConfig(Region="ap-guangzhou", SecretId=SECRET_ID, SecretKey=SECRET_KEY,
                                    Domain=f"127.0.0.1:{port}", Scheme="http", Timeout=600),
                          retry=0)
        cos.put_object_from_local_file(Bucket=BUCKET, LocalFilePath=str(video), Key="video.mp4")
        base = {"Mode": "Interval", "Start": "0", "TimeInterval": f"{interval:.6f}", "Count": "100"}
        pictures = job_run(cos, proc.pid, {**base, "Width": "320"},
                           {"Object": "pictures/${Number}.jpg"})
        sprite = job_run(cos, proc.pid, {
            **base, "SnapshotOutMode": "OnlySprite",
            "SpriteSnapshotConfig": {"CellWidth": "142", "CellHeight": "80", "Color": "black",
                                     "Columns": "10", "Lines": "10"}},
            {"SpriteObject": "sprite/${Number}.jpg"})
        out = workdir / "ffmpeg"
        out.mkdir()
        ff_pictures = ffmpeg_run(["-i", str(video), "-vf", f"fps=1/{interval:.6f},scale=320:-2",
                                  "-frames:v", "100", str(out / "p%03d.jpg")])
        ff_sprite = ffmpeg_run(["-i", str(video), "-vf",
                                f"fps=1/{interval:.6f},scale=142:80,tile=10x10",
                                "-frames:v", "1", str(out / "sprite.jpg")])
        pictures_made = len(pictures[2]["Operation"]["MediaResult"]["OutputFile"]["ObjectName"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "duration_s": duration,
        "interval_s": interval,
        "pictures_made": pictures_made,
        "pictures_wall_s": pictures[0], "pictures_cpu_s": pictures[1],
        "sprite_wall_s": sprite[0], "sprite_cpu_s": sprite[1],
        "ffmpeg_pictures_wall_s": ff_pictures[0], "ffmpeg_pictures_cpu_s": ff_pictures[1],
        "ffmpeg_sprite_wall_s": ff_sprite[0], "ffmpeg_sprite_cpu_s": ff_sprite[1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "framegate")
    args = parser.parse_args()
    print(json.dumps(run(args.video, args.binary), indent=2))


if __name__ == "__main__":
    main()
