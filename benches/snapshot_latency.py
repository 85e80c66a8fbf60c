#!/usr/bin/env python3
"""Snapshot latency through the gateway next to the ffmpeg command line, on
the same file, machine and run; and the bytes a snapshot reads from the
store. Prints a table of medians and ratios (ffmpeg / framegate).

Usage (from the repository root, after `cargo build --release` and
`fixtures/make.sh large DIR`):

    .venv/bin/python benches/snapshot_latency.py DIR/sample_1080p.mp4 [--runs 15]
        [--large DIR/large_1gib.mp4] [--s3]

The gateway (target/release/framegate) is started on a local-filesystem bucket
(or, with --s3, on a moto S3 server), with its snapshot cache off so every
request decodes, and driven over one keep-alive connection with signed
requests. The ffmpeg commands are the fastest correct
ones for the same picture:
  exact:    ffmpeg -ss T -i FILE -frames:v 1 out.jpg
  keyframe: ffmpeg -noaccurate_seek -ss T -i FILE -fps_mode passthrough -frames:v 1 out.jpg
"""

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "sdk"))
import support  # noqa: E402


def start_gateway(workdir: Path, store: str, endpoint=None) -> support.Gateway:
    """The gateway with its snapshot cache off, so every request decodes."""
    config = support.write_config(workdir / "framegate.toml", workdir / "data", store, endpoint)
    config.write_text(config.read_text() + "\n[media]\ncache_bytes = 0\n")
    return support.Gateway(config, workdir, "bench").start()


def upload(gw: support.Gateway, key: str, path: Path) -> None:
    client = support.boto3_client(gw)
    client.upload_file(str(path), support.BUCKET, key)


def time_requests(session, url, params, runs):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = session.get(url, params=params, timeout=120)
        r.raise_for_status()
        times.append(time.perf_counter() - t0)
    return times


def time_ffmpeg(args, runs):
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args,
                            f"{tmp}/out.jpg"], check=True)
            times.append(time.perf_counter() - t0)
    return times


def store_bytes(gw: support.Gateway) -> list[tuple[int, int]]:
    """(store_bytes, store_requests) of every snapshot the gateway logged."""
    text = gw.stderr_log.read_text()
    return [(int(b), int(r)) for b, r in
            re.findall(r"store_bytes=(\d+) store_requests=(\d+)", text)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--large", type=Path, help="a >= 1 GiB MP4 for the byte counts")
    parser.add_argument("--s3", action="store_true", help="run the gateway on a moto S3 server")
    args = parser.parse_args()

    import os
    os.environ["FRAMEGATE_BIN"] = str(ROOT / "target/release/framegate")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        s3 = None
        if args.s3:
            (tmp / "s3").mkdir()
            s3 = support.S3Server(tmp / "s3").start()
            s3.client().create_bucket(Bucket=support.S3_BACKING_BUCKET)
        store = f"s3://{support.S3_BACKING_BUCKET}" if s3 else "file://"
        gw = start_gateway(tmp, store, s3.endpoint if s3 else None)
        try:
            upload(gw, "bench.mp4", args.video)
            session = requests.Session()
            session.auth = support.CosSigned()
            url = f"{gw.url}/{support.BUCKET}/bench.mp4"
            rows = []
            cases = [
                ("keyframe t=1, full size", {"time": "1", "mode": "keyframe"},
                 ["-noaccurate_seek", "-ss", "1", "-i", str(args.video), "-fps_mode", "passthrough", "-frames:v", "1"]),
                ("keyframe t=1, width=320", {"time": "1", "mode": "keyframe", "width": "320"},
                 ["-noaccurate_seek", "-ss", "1", "-i", str(args.video), "-fps_mode", "passthrough", "-frames:v", "1", "-vf", "scale=320:-2"]),
                ("exact t=9.5", {"time": "9.5", "mode": "exactframe"},
                 ["-ss", "9.5", "-i", str(args.video), "-frames:v", "1"]),
            ]
            for name, params, ff in cases:
                params = {"ci-process": "snapshot", **params}
                time_requests(session, url, {**params, "width": params.get("width", "0")}, 2)
                ours = time_requests(session, url, params, args.runs)
                theirs = time_ffmpeg(ff, max(5, args.runs // 3))
                rows.append((name, statistics.median(ours), statistics.median(theirs)))
            print(f"\n{args.video.name}, {args.runs} requests per case (median):")
            print(f"{'case':28} {'framegate':>12} {'ffmpeg CLI':>12} {'ffmpeg/framegate':>17}")
            for name, ours, theirs in rows:
                print(f"{name:28} {ours*1e3:10.1f}ms {theirs*1e3:10.1f}ms {theirs/ours:16.1f}x")
            if args.large:
                upload(gw, "large.mp4", args.large)
                before = len(store_bytes(gw))
                big = f"{gw.url}/{support.BUCKET}/large.mp4"
                for params in ({"time": "1", "mode": "keyframe"}, {"time": "1"},
                               {"time": "2", "mode": "keyframe"}):
                    r = session.get(big, params={"ci-process": "snapshot", **params}, timeout=300)
                    r.raise_for_status()
                counts = store_bytes(gw)[before:]
                size = args.large.stat().st_size
                backend = "S3 (moto)" if s3 else "local filesystem"
                print(f"\nbytes read from the store, {args.large.name} ({size/2**20:.0f} MiB), {backend}:")
                for label, (b, n) in zip(["keyframe t=1 (first)", "exact t=1", "keyframe t=2 (repeat)"], counts):
                    print(f"  {label:24} {b/2**20:8.2f} MiB in {n} requests")
        finally:
            gw.stop()
            if s3:
                s3.stop()


if __name__ == "__main__":
    main()
