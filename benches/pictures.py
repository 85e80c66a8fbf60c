#!/usr/bin/env python3
"""Picture formats and animations: what WebP and AVIF cost next to JPEG on
the same snapshot, and an animated preview made by a VOD job next to the
ffmpeg command line making the same, in one run.

    .venv/bin/python benches/pictures.py VIDEO [--binary target/release/framegate]

- formats: `framegate snapshot --repeat N` (the video opened once, then N
  timed seek + decode + scale + encode runs of the keyframe at 5 s) at the
  full 1080p and at 320 wide, as JPEG, WebP and AVIF: median time and size;
- animation: a 3-second, 10 fps, 320-wide preview (GIF and animated WebP)
  of a 12-second cut of VIDEO, by a VOD AnimatedGraphics task (timed from
  ProcessMedia to FINISH, one job worker, not at idle priority) and by
  `ffmpeg -ss 1 -t 3 -vf fps=10,scale=320:-2,split,palettegen,paletteuse`
  (GIF) and `-c:v libwebp_anim` (WebP).

benches/compare.py imports run() for its `pictures` section.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "sdk"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sprite_job import BUCKET, SECRET_ID, SECRET_KEY, start_gateway  # noqa: E402

RUNS = 30


def snapshot_timing(binary: Path, video: Path, fmt: str, width: int, out: Path) -> dict:
    """One `framegate snapshot --repeat` run: its timings and the file size."""
    target = out / f"shot-{width}.{fmt}"
    result = subprocess.run(
        [str(binary), "snapshot", "--time", "5", "--mode", "keyframe", "--width", str(width),
         "--format", fmt, "--repeat", str(RUNS), str(video), "-o", str(target)],
        check=True, capture_output=True, text=True)
    timing = json.loads(result.stdout.strip().splitlines()[-1])
    timing["bytes"] = target.stat().st_size
    return timing


def ffmpeg_wall(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
                   check=True)
    return time.perf_counter() - t0


def vod_client(port: int):
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.vod.v20180717 import vod_client as vc
    profile = ClientProfile(httpProfile=HttpProfile(endpoint=f"127.0.0.1:{port}", protocol="http"))
    return vc.VodClient(credential.Credential(SECRET_ID, SECRET_KEY), "ap-guangzhou", profile)


def call(client, action: str, params: dict):
    from tencentcloud.vod.v20180717 import models
    request = getattr(models, f"{action}Request")()
    request.from_json_string(json.dumps(params))
    return getattr(client, action)(request)


def animation_job(client, fmt: str) -> tuple[float, int]:
    """Seconds from ProcessMedia to FINISH of a 3 s, 10 fps, 320-wide preview,
    and the file's size."""
    definition = call(client, "CreateAnimatedGraphicsTemplate", {
        "Fps": 10, "Width": 320, "Height": 0, "Format": fmt, "Quality": 75}).Definition
    t0 = time.perf_counter()
    task_id = call(client, "ProcessMedia", {
        "MediaStoragePath": "/clip.mp4", "MediaProcessTask": {"AnimatedGraphicTaskSet": [
            {"Definition": definition, "StartTimeOffset": 1, "EndTimeOffset": 4}]}}).TaskId
    while True:
        detail = call(client, "DescribeTaskDetail", {"TaskId": task_id})
        if detail.Status == "FINISH":
            break
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    result = detail.ProcedureTask.MediaProcessResultSet[0].AnimatedGraphicTask
    if result.Status != "SUCCESS":
        raise RuntimeError(result.Message)
    return wall, result.Output.Size


def run(video: Path, binary: Path = ROOT / "target" / "release" / "framegate") -> dict:
    results: dict = {"formats": {}, "animation": {}}
    with tempfile.TemporaryDirectory(prefix="framegate-pictures-") as tmp:
        tmp = Path(tmp)
        for width in (0, 320):
            for fmt in ("jpg", "webp", "avif"):
                results["formats"][(fmt, width)] = snapshot_timing(binary, video, fmt, width, tmp)
        clip = tmp / "clip.mp4"
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(video),
                        "-t", "12", "-c", "copy", "-movflags", "+faststart", str(clip)], check=True)
        (tmp / "gw").mkdir()
        proc, port = start_gateway(binary, tmp / "gw", idle=False)
        try:
            import boto3
            s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}",
                              aws_access_key_id=SECRET_ID, aws_secret_access_key=SECRET_KEY,
                              region_name="ap-guangzhou")
            s3.upload_file(str(clip), BUCKET, "clip.mp4")
            client = vod_client(port)
            animation_job(client, "gif")  # warm-up: first task, page cache
            for fmt in ("gif", "webp"):
                results["animation"][fmt] = animation_job(client, fmt)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        palette = "fps=10,scale=320:-2,split[a][b];[a]palettegen[p];[b][p]paletteuse"
        results["ffmpeg_gif_s"] = min(
            ffmpeg_wall(["-ss", "1", "-t", "3", "-i", str(clip), "-vf", palette,
                         str(tmp / "ff.gif")]) for _ in range(3))
        results["ffmpeg_webp_s"] = min(
            ffmpeg_wall(["-ss", "1", "-t", "3", "-i", str(clip), "-vf", "fps=10,scale=320:-2",
                         "-c:v", "libwebp_anim", "-quality", "75", "-loop", "0",
                         str(tmp / "ff.webp")]) for _ in range(3))
        results["ffmpeg_gif_bytes"] = (tmp / "ff.gif").stat().st_size
        results["ffmpeg_webp_bytes"] = (tmp / "ff.webp").stat().st_size
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "framegate")
    args = parser.parse_args()
    r = run(args.video, args.binary)
    for (fmt, width), t in r["formats"].items():
        print(f"{fmt:4} {width or 'full':>4}: median {t['median_ms']:.1f} ms, "
              f"p95 {t['p95_ms']:.1f} ms, {t['bytes']} bytes")
    for fmt, (wall, size) in r["animation"].items():
        ff = r[f"ffmpeg_{fmt}_s"]
        print(f"animated {fmt}: job {wall:.2f} s ({size} bytes), ffmpeg {ff:.2f} s "
              f"({r[f'ffmpeg_{fmt}_bytes']} bytes)")


if __name__ == "__main__":
    main()
