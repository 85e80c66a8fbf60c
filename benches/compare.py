#!/usr/bin/env python3
"""framegate side by side with the tools it replaces, in one run on the same
inputs and machine: prints a Markdown table per section (absolute figures,
ratios, targets with ✓/✗) and, with --write, puts them into BENCHMARKS.md
between the `<!-- compare:begin -->` and `<!-- compare:end -->` markers.

Usage (from the repository root):

    cargo build --release
    fixtures/make.sh large DIR
    .venv/bin/python benches/compare.py DIR [--write]
        [--only latency,encodes,scrub,bytes,remote,load,rss,sprite,ci,pictures,metrics] [--skip SECTIONS]
        [--runs 15] [--ffmpeg-runs 5] [--duration 10] [--binary target/release/framegate]
        [--encodes DIR2]

    # a smoke run (4-5 minutes): every section, few runs, short load
    .venv/bin/python benches/compare.py DIR --runs 3 --ffmpeg-runs 1 --duration 2

DIR holds what `fixtures/make.sh large DIR` makes: sample_{720,1080,2160}p.mp4
(H.264), sample_1080p_hevc.mp4, sample_1080p_vp9.webm (all 10 s, one 10 s
GOP), large_1gib.mp4 and ten_minutes_1080p.mp4. A full run takes about
9-10 minutes on 2 cores; a busy machine distorts every figure.

Sections:

latency  Snapshot latency through the gateway over HTTP (one keep-alive
         client, pre-signed URLs, warm server, snapshot cache off: every
         request decodes, an exact one from its keyframe, see `encodes`;
         median and p95 of --runs, at most 5 where a
         request takes over a second) next to the ffmpeg command line for
         the same picture (median of --ffmpeg-runs, process start included,
         as a per-request ffmpeg pays it):
           exact:    ffmpeg -ss T -i FILE -frames:v 1 out.jpg
           keyframe: ffmpeg -noaccurate_seek -ss T -i FILE -fps_mode passthrough -frames:v 1 out.jpg
         and the in-process lower bound: `framegate snapshot FILE --time T
         --mode M [--width W] --repeat N` (file opened once, one untimed
         warm-up, then N timed seek+decode+render+encode runs, no HTTP).
         "n/a" where that binary does not accept --repeat yet.
encodes  Exact frames (t=1, t=9.5) and a keyframe on ordinary encodes
         (`fixtures/make.sh encodes DIR`, made when missing: 1080p from x264's
         default preset and `superfast`, x265's default preset, libvpx-vp9
         and SVT-AV1, one 10 s GOP each, and phone-like H.264 with 1 s and
         2 s GOPs) through the
         gateway, interleaved one by one with the ffmpeg command line. Before
         each exact request an untimed keyframe request takes the decoder the
         last one parked, so each decodes from its keyframe.
scrub    20 exact snapshots at increasing times inside the 10 s GOP of the
         one-GOP encodes, each its own HTTP request (a scrub bar), next to
         the deepest one alone and to the ffmpeg command line; how many
         requests continued a parked decoder (from the gateway's log).
bytes    Bytes a snapshot takes from the store on large_1gib.mp4, on the
         local-filesystem backend (the gateway's file reads, /proc/PID/io)
         and on an S3-compatible one (moto, behind a counting proxy: bytes
         and GETs): keyframe t=1 (first request), exact t=1, keyframe t=2 (a
         repeated request of the same object), next to the gateway's own
         `store_bytes=… store_requests=… reopened=…` log line.
remote   Snapshot latency, store requests and sequential round trips on the
         S3 backend (moto) behind a proxy that delays every request 20 ms:
         keyframe and exact, first and repeated request of an object
         version, next to `ffmpeg -i URL` (pre-signed) through the proxy.
load     wrk against the gateway at 1, 8 and 64 connections (--duration
         seconds each): keyframe snapshots of sample_720p.mp4 (cache off;
         the Lua script rotates over 3800 pre-signed URLs with distinct
         times, each wrk thread over its own share, so that no two requests
         in flight are identical and none is coalesced; decodes are counted
         from the gateway's log to show it), and plain pre-signed GETs of the
         same file next to nginx serving it from a temp dir (sendfile on,
         keep-alive, 2 workers, no access log; started on another loopback
         port, stopped at the end).
rss      64 snapshot requests of sample_2160p.mp4 fired at once (cache off,
         distinct times: every 4th in exact mode 8.75-9.5 s into the GOP,
         the rest keyframe): statuses (200 vs 503 SlowDown), how fast the
         503s come back, and the server's peak RSS (VmHWM) after the burst.
pictures A keyframe snapshot of ten_minutes_1080p.mp4 at full size and 320
         wide as JPEG, WebP and AVIF (`framegate snapshot --repeat`), and a
         3 s, 10 fps, 320-wide animated GIF and WebP made by a VOD
         AnimatedGraphics task vs ffmpeg's palettegen/paletteuse and
         libwebp_anim command lines (benches/pictures.py's run()).
ci       A 100-picture Interval CI job (320 wide) and a 10x10 OnlySprite CI
         job of ten_minutes_1080p.mp4 through cos-python-sdk-v5 vs the ffmpeg
         fps+scale(+tile) command lines (benches/ci_jobs.py's run()).
sprite   A 100-cell sprite job (142x80 cells, 10x10, every 6 s) of
         ten_minutes_1080p.mp4 through the VOD API vs
         `ffmpeg -i VIDEO -vf fps=1/6,scale=142:80,tile=10x10 -frames:v 1`
         (benches/sprite_job.py's run(), without its snapshot client): wall
         and CPU (the gateway's utime+stime from /proc; ffmpeg's from
         getrusage(RUSAGE_CHILDREN)).

metrics  The cost of metrics: two gateways side by side, one without the
         admin listener (recording off) and one with it, scraped every
         second as Prometheus would. Keyframe snapshot latency (t=1 of
         sample_720p.mp4, cache off; requests alternate between the two
         gateways, --runs * 10 each; median, p95) and plain GET throughput
         of a 64 KiB object (wrk, 8 connections, --duration s, the two
         gateways alternately twice; the sum per gateway).

URLs are pre-signed with cos-python-sdk-v5 (COS q-sign, valid an hour), as
a web backend would. wrk and nginx come from Debian packages;
benches/setup.sh installs them when missing (as root; otherwise it says what
to install). Every process the script starts (gateways, moto, nginx, wrk,
ffmpeg) is stopped on exit, also on Ctrl-C, SIGTERM or an error.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "sdk"))
sys.path.insert(0, str(ROOT / "benches"))
import snapshot_latency  # noqa: E402  (start_gateway, upload, store_bytes)
import support  # noqa: E402

SECTIONS = ("latency", "encodes", "scrub", "bytes", "remote", "load", "rss", "sprite", "ci",
            "pictures", "metrics")
MiB = 1024 * 1024
GiB = 1024 * MiB
BEGIN, END = "<!-- compare:begin -->", "<!-- compare:end -->"

# (label, file name) of the latency inputs, all 10 s with one 10 s GOP.
INPUTS = [
    ("720p H.264", "sample_720p.mp4"),
    ("1080p H.264", "sample_1080p.mp4"),
    ("2160p H.264", "sample_2160p.mp4"),
    ("1080p HEVC", "sample_1080p_hevc.mp4"),
    ("1080p VP9", "sample_1080p_vp9.webm"),
]
# (mode, time, width) per input; the width=320 case only for 1080p H.264.
CASES = [("keyframe", 1.0, 0), ("keyframe", 9.5, 0), ("exactframe", 1.0, 0), ("exactframe", 9.5, 0)]
EXTRA_CASES = {"sample_1080p.mp4": [("keyframe", 1.0, 320)]}
# (label, file name, one 10 s GOP) of the ordinary encodes (`fixtures/make.sh encodes DIR`).
ENCODES = [
    ("1080p x264 default (medium)", "x264_medium_1080p.mp4", True),
    ("1080p x264 superfast", "x264_superfast_1080p.mp4", True),
    ("1080p x265 default (medium)", "x265_medium_1080p.mp4", True),
    ("1080p VP9 (libvpx good)", "vp9_good_1080p.webm", True),
    ("1080p AV1 (SVT-AV1 preset 8)", "svtav1_1080p.mp4", True),
    ("1080p phone-like, 1 s GOP", "phone_gop1s_1080p.mp4", False),
    ("1080p phone-like, 2 s GOP", "phone_gop2s_1080p.mp4", False),
]
# The scrub: this many increasing exact times inside the GOP, the last one SCRUB_DEEPEST.
SCRUB_STEPS, SCRUB_DEEPEST = 20, 9.5
# Cases whose requests take longer than this many seconds get at most SLOW_CASE_RUNS runs.
SLOW_CASE_S, SLOW_CASE_RUNS = 1.0, 5


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------

@dataclass
class Target:
    """One target of the performance issue and whether this run meets it
    (None: could not be measured)."""
    what: str
    measured: str
    ok: bool | None

    def mark(self) -> str:
        return {True: "✓", False: "✗", None: "n/a"}[self.ok]


@dataclass
class Section:
    title: str
    body: list[str] = field(default_factory=list)  # Markdown paragraphs and tables
    targets: list[Target] = field(default_factory=list)
    seconds: float = 0.0

    def markdown(self) -> str:
        out = [f"### {self.title}", "", *self.body]
        if self.targets:
            out += ["Targets:", ""]
            out += [f"- {t.mark()} {t.what}: {t.measured}" for t in self.targets]
            out.append("")
        return "\n".join(out)


def table(headers: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> str:
    """A Markdown table; columns whose index is in `right` align right."""
    align = ["---:" if i in right else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    value = seconds * 1e3
    if value >= 1000:
        return f"{seconds:.2f} s"
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def ratio(a: float | None, b: float | None, digits: int = 1) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.{digits}f}×"


def mib(n: float) -> str:
    return f"{n / MiB:.2f} MiB"


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------

def clean_env() -> dict:
    """This environment without FRAMEGATE_* (they would override configs)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FRAMEGATE_")}


def start_gateway(stack: contextlib.ExitStack, workdir: Path, store: str = "file://",
                  endpoint: str | None = None) -> support.Gateway:
    """A gateway with its snapshot cache off, stopped when `stack` closes."""
    workdir.mkdir(parents=True, exist_ok=True)
    gw = snapshot_latency.start_gateway(workdir, store, endpoint)
    stack.callback(gw.stop)
    return gw


def start_s3(stack: contextlib.ExitStack, workdir: Path) -> support.S3Server:
    workdir.mkdir(parents=True, exist_ok=True)
    s3 = support.S3Server(workdir).start()
    stack.callback(s3.stop)
    s3.client().create_bucket(Bucket=support.S3_BACKING_BUCKET)
    return s3


_SIGNERS: dict[str, object] = {}


def presign(gw: support.Gateway, key: str, params: dict | None = None) -> str:
    """A COS q-sign pre-signed GET URL for `key` on the gateway's default
    bucket (bare host), valid for an hour, the query parameters signed too:
    made by cos-python-sdk-v5 with the credential of support.write_config,
    as a web backend would (in-process, so hundreds of URLs take no time)."""
    client = _SIGNERS.get(gw.url)
    if client is None:
        client = _SIGNERS[gw.url] = support.cos_client(gw, "domain")
    return client.get_presigned_url(Bucket=support.BUCKET, Key=key, Method="GET",
                                    Params=params or {}, Expired=3600)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL (children first, by pid) after `timeout`."""
    if proc.poll() is not None:
        return
    children = []
    with contextlib.suppress(OSError):
        children = [int(p) for p in
                    Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait()


def ensure_tools(tools: list[str]) -> None:
    """Runs benches/setup.sh when one of `tools` is missing."""
    if all(which(t) for t in tools):
        return
    log(f"installing {', '.join(t for t in tools if not which(t))} (benches/setup.sh)")
    subprocess.run(["bash", str(ROOT / "benches" / "setup.sh")], check=True)


def which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")


# --------------------------------------------------------------------------
# latency: gateway over HTTP vs in-process bound vs ffmpeg CLI
# --------------------------------------------------------------------------

class KeepAlive:
    """One keep-alive HTTP/1.1 connection per server, read with http.client:
    `requests` spends ~3 ms of Python per 300 KB body (it reads in 10 KB
    chunks and joins them), which would be counted as the gateway's."""

    def __init__(self):
        self.conns: dict[tuple[str, int], http.client.HTTPConnection] = {}

    def get(self, url: str) -> tuple[int, bytes]:
        u = urllib.parse.urlsplit(url)
        key = (u.hostname, u.port)
        for attempt in (0, 1):
            conn = self.conns.get(key)
            if conn is None:
                conn = self.conns[key] = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
            try:
                conn.request("GET", u.path + (f"?{u.query}" if u.query else ""))
                resp = conn.getresponse()
                return resp.status, resp.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                del self.conns[key]
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        for conn in self.conns.values():
            conn.close()


def http_times(client: KeepAlive, url: str, runs: int, warmup: int = 2,
               reset_url: str | None = None) -> list[float]:
    """Seconds per GET of `url` (checked: 200, a JPEG), after `warmup` untimed
    ones; `reset_url`, when given, is fetched untimed before each."""
    times = []
    for i in range(warmup + runs):
        if reset_url:
            client.get(reset_url)
        t0 = time.perf_counter()
        status, body = client.get(url)
        elapsed = time.perf_counter() - t0
        if status != 200 or body[:2] != b"\xff\xd8":
            raise RuntimeError(f"GET {url}: {status} {body[:300]!r}")
        if i >= warmup:
            times.append(elapsed)
    return times


def ffmpeg_args(video: Path, mode: str, t: float, width: int) -> list[str]:
    """The fastest correct ffmpeg command line for the same picture."""
    if mode == "keyframe":
        args = ["-noaccurate_seek", "-ss", f"{t:g}", "-i", str(video),
                "-fps_mode", "passthrough", "-frames:v", "1"]
    else:
        args = ["-ss", f"{t:g}", "-i", str(video), "-frames:v", "1"]
    if width:
        args += ["-vf", f"scale={width}:-2"]
    return args


def ffmpeg_times(args: list[str], runs: int, tmp: Path) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args,
                        str(tmp / "ffmpeg.jpg")], check=True)
        times.append(time.perf_counter() - t0)
    return times


class Bound:
    """The in-process lower bound: `framegate snapshot ... --repeat N`."""

    def __init__(self, binary: Path, tmp: Path):
        self.binary = binary
        self.tmp = tmp
        self.supported = True
        self.supported = self.median_p95(ROOT / "fixtures" / "h264_bframes.mp4",
                                         "keyframe", 1.0, 0, 1)[0] is not None
        if not self.supported:
            log("bound: `framegate snapshot --repeat` is not available; the bound column is n/a")

    def _run(self, video: Path, mode: str, t: float, width: int, runs: int) -> dict | None:
        cmd = [str(self.binary), "snapshot", str(video), "--time", f"{t:g}", "--mode", mode,
               "--repeat", str(runs), "-o", str(self.tmp / "bound.jpg")]
        if width:
            cmd += ["--width", str(width)]
        out = subprocess.run(cmd, capture_output=True, text=True, env=clean_env())
        if out.returncode == 2:  # clap: unknown argument
            return None
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: exit {out.returncode}: {out.stderr.strip()[-500:]}")
        lines = [x for x in out.stdout.splitlines() if x.startswith("{")]
        if not lines:
            raise RuntimeError(f"{' '.join(cmd)} printed no JSON line: {out.stdout[-300:]!r}")
        return json.loads(lines[-1])

    def median_p95(self, video: Path, mode: str, t: float, width: int, runs: int):
        """(median, p95) in seconds, or (None, None) when unsupported."""
        if not self.supported:
            return None, None
        try:
            result = self._run(video, mode, t, width, runs)
        except (RuntimeError, ValueError, IndexError, KeyError) as e:
            log(f"bound: {e}")
            return None, None
        if result is None:
            return None, None
        return result["median_ms"] / 1e3, result["p95_ms"] / 1e3


def reset_url(gw: support.Gateway, key: str) -> str:
    """A keyframe snapshot at t=0: untimed before an exact request, it takes
    the decoder parked by the last exact request (keeping its opened
    container), so the exact request decodes from its keyframe with a fresh
    decoder, as a request for a new time would."""
    return presign(gw, key, {"ci-process": "snapshot", "time": "0", "mode": "keyframe"})


def exact_url(gw: support.Gateway, key: str, t: float) -> str:
    return presign(gw, key, {"ci-process": "snapshot", "time": f"{t:g}", "mode": "exactframe"})


def encodes_dir(args, names: list[str] | None = None) -> Path:
    """Where the ordinary encodes are, made by `fixtures/make.sh encodes DIR`
    when one of `names` (default: all) is missing."""
    out = args.encodes or args.dir
    names = names or [name for _, name, _ in ENCODES]
    if not all((out / name).exists() for name in names):
        log(f"encodes: making the ordinary encodes in {out} (fixtures/make.sh encodes, a few minutes)")
        subprocess.run(["bash", str(ROOT / "fixtures" / "make.sh"), "encodes", str(out)], check=True)
    return out


def encodes_section(args, sec: Section) -> None:
    folder = encodes_dir(args)
    tmp = Path(tempfile.mkdtemp(prefix="framegate-encodes-"))
    rows, figures = [], {}
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        gw = start_gateway(stack, tmp / "gw")
        session = KeepAlive()
        for label, name, _ in ENCODES:
            video = folder / name
            if not video.exists():
                rows.append([label, "(missing input)", *["n/a"] * 4])
                continue
            snapshot_latency.upload(gw, name, video)
            for mode, t in [("keyframe", 9.5), ("exactframe", 1.0), ("exactframe", 9.5)]:
                case = f"{'keyframe' if mode == 'keyframe' else 'exact'} t={t:g}"
                log(f"encodes: {label}, {case}")
                url = presign(gw, name, {"ci-process": "snapshot", "time": f"{t:g}", "mode": mode})
                reset = reset_url(gw, name) if mode == "exactframe" else None
                http_times(session, url, 1, warmup=1, reset_url=reset)
                # Interleaved: one gateway request, then one ffmpeg run, n times,
                # so that a change in the machine's load hits both alike.
                ours, theirs = [], []
                for _ in range(args.ffmpeg_runs):
                    ours += http_times(session, url, 1, warmup=0, reset_url=reset)
                    theirs += ffmpeg_times(ffmpeg_args(video, mode, t, 0), 1, tmp)
                med, ff = statistics.median(ours), statistics.median(theirs)
                figures[(name, mode, t)] = (med, ff)
                rows.append([label, case, str(len(ours)), ms(med), ms(ff), ratio(ff, med)])
        session.close()
    sec.body.append(
        "Ordinary encodes of 10 s of 1080p (`fixtures/make.sh encodes DIR`: the test pattern with "
        "light grain, CRF capped at 10 Mbit/s; x264 and x265 default preset, x264 `superfast`, libvpx-vp9 "
        "(`good`, cpu-used 4) and SVT-AV1 (preset 8) as one 10 s GOP; "
        "phone-like H.264 at 30 fps, High profile, no B-frames, 1 s and 2 s GOPs). Gateway over "
        "HTTP (local filesystem, cache off; before each exact request an untimed keyframe request "
        "takes the parked decoder away, so every exact request decodes from its keyframe) and the "
        "ffmpeg command line (process start included), interleaved one by one; medians of n.\n")
    sec.body.append(table(["input", "case", "n", "framegate", "ffmpeg CLI", "ffmpeg ÷ framegate"],
                          rows, right={2, 3, 4, 5}))
    for name, what in [("x264_medium_1080p.mp4", "H.264 from x264's default preset"),
                       ("x264_superfast_1080p.mp4", "H.264 from x264 superfast"),
                       ("x265_medium_1080p.mp4", "HEVC from x265's default preset")]:
        fig = figures.get((name, "exactframe", 9.5))
        if fig:
            med, ff = fig
            sec.targets.append(Target(f"exact frame 9.5 s into the 10 s 1080p GOP, {what}: ≥ 3× "
                                      "faster than ffmpeg", ratio(ff, med), ff / med >= 3))


def scrub_section(args, sec: Section) -> None:
    folder = encodes_dir(args)
    tmp = Path(tempfile.mkdtemp(prefix="framegate-scrub-"))
    times = [round(SCRUB_DEEPEST * (i + 1) / SCRUB_STEPS, 3) for i in range(SCRUB_STEPS)]
    rows, targets = [], []
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        gw = start_gateway(stack, tmp / "gw")
        session = KeepAlive()
        for label, name, one_gop in ENCODES:
            video = folder / name
            if not one_gop or not video.exists():
                continue
            snapshot_latency.upload(gw, name, video)
            reset = reset_url(gw, name)
            urls = [exact_url(gw, name, t) for t in times]
            session.get(reset)
            session.get(urls[-1])  # warm: the container opened, the decoder code paged in
            alone, scrubs, ffmpeg_alone = [], [], []
            continued = 0
            # Interleaved: the deepest exact frame alone, the whole scrub, ffmpeg alone.
            for _ in range(max(1, min(args.ffmpeg_runs, 3))):
                log(f"scrub: {label}")
                alone += http_times(session, urls[-1], 1, warmup=0, reset_url=reset)
                session.get(reset)
                before = len(re.findall(r"reuse=continued", gw.stderr_log.read_text()))
                t0 = time.perf_counter()
                for url in urls:
                    status, body = session.get(url)
                    if status != 200:
                        raise RuntimeError(f"GET {url}: {status} {body[:300]!r}")
                scrubs.append(time.perf_counter() - t0)
                continued = len(re.findall(r"reuse=continued", gw.stderr_log.read_text())) - before
                ffmpeg_alone += ffmpeg_times(ffmpeg_args(video, "exactframe", SCRUB_DEEPEST, 0), 1, tmp)
            log(f"scrub: {label}, ffmpeg for each of the {SCRUB_STEPS} times")
            t0 = time.perf_counter()
            for t in times:
                ffmpeg_times(ffmpeg_args(video, "exactframe", t, 0), 1, tmp)
            ffmpeg_scrub = time.perf_counter() - t0
            a, sc, ff = statistics.median(alone), statistics.median(scrubs), statistics.median(ffmpeg_alone)
            rows.append([label, str(len(scrubs)), ms(sc), f"{continued} of {SCRUB_STEPS}", ms(a),
                         ratio(sc, a), ms(ff), ms(ffmpeg_scrub), ratio(ffmpeg_scrub, sc)])
            targets.append(Target(f"scrub of {SCRUB_STEPS} increasing exact frames in the 10 s 1080p "
                                  f"GOP, {label}: ≤ 2× the deepest single exact frame",
                                  ratio(sc, a), sc / a <= 2))
        session.close()
    sec.body.append(
        f"{SCRUB_STEPS} exact snapshots at increasing times inside one 10 s GOP "
        f"({times[0]:g}, {times[1]:g} … {times[-1]:g} s), each its own HTTP request, one after "
        "another over one keep-alive connection (what a hover preview or a scrub bar sends; "
        "cache off), next to the deepest one alone (t=9.5, decoded from the keyframe: an untimed "
        "keyframe request first takes the parked decoder away); medians of n interleaved rounds. "
        "\"Continued\": requests the gateway logged as `reuse=continued` (a parked decoder "
        "carried on from where the last request stopped). ffmpeg: the command line for t=9.5, "
        f"and for each of the {SCRUB_STEPS} times in turn (one round).\n")
    sec.body.append(table(["input", "n", "scrub total", "continued", "deepest alone",
                           "scrub ÷ deepest", "ffmpeg deepest", f"ffmpeg {SCRUB_STEPS} times",
                           "ffmpeg ÷ framegate scrub"], rows, right=set(range(1, 9))))
    sec.targets += targets


def latency_section(args, sec: Section) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="framegate-latency-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        gw = start_gateway(stack, tmp / "gw")
        bound = Bound(args.binary, tmp)
        session = KeepAlive()
        rows, figures = [], {}
        for label, name in INPUTS:
            video = args.dir / name
            if not video.exists():
                log(f"latency: {video} missing, skipped (fixtures/make.sh large {args.dir})")
                rows.append([label, "(missing input)", *["n/a"] * 8])
                continue
            snapshot_latency.upload(gw, name, video)
            for mode, t, width in CASES + EXTRA_CASES.get(name, []):
                case = f"{'keyframe' if mode == 'keyframe' else 'exact'} t={t:g}" + \
                       (f", width={width}" if width else "")
                log(f"latency: {label}, {case}")
                url = presign(gw, name, {"ci-process": "snapshot", "time": f"{t:g}",
                                         "mode": mode, "width": str(width)})
                # An exact request for the same time again would continue the
                # decoder the last one parked there: each starts from its keyframe.
                reset = reset_url(gw, name) if mode == "exactframe" else None
                # Slow cases (exact frames deep in a 2160p/HEVC/VP9 GOP) get fewer
                # runs, to keep a full run within ~10 minutes.
                warm = http_times(session, url, 2, warmup=0, reset_url=reset)
                runs = args.runs if min(warm) < SLOW_CASE_S else min(args.runs, SLOW_CASE_RUNS)
                ours = http_times(session, url, runs, warmup=0, reset_url=reset)
                b_med, b_p95 = bound.median_p95(video, mode, t, width, runs)
                theirs = ffmpeg_times(ffmpeg_args(video, mode, t, width), args.ffmpeg_runs, tmp)
                med, ff = statistics.median(ours), statistics.median(theirs)
                figures[(name, mode, t, width)] = (med, b_med, ff)
                rows.append([label, case, str(runs), ms(med), ms(p95(ours)), ms(b_med), ms(b_p95),
                             ms(ff), ratio(ff, med), ratio(med, b_med, 2)])
        session.close()
    fewer = (f", or {SLOW_CASE_RUNS} where a request takes over {SLOW_CASE_S:g} s"
             if args.runs > SLOW_CASE_RUNS else "")
    sec.body.append(
        f"Gateway: median and p95 of n pre-signed GETs over one keep-alive connection (http.client; local "
        f"filesystem, cache off, warm: 2 untimed requests first); n = {args.runs}{fewer}. Bound: "
        "`framegate snapshot FILE --repeat n` (file open, no HTTP). ffmpeg: median of "
        f"{args.ffmpeg_runs} runs of the command line, process start included. All inputs are "
        "10 s with one 10 s GOP, so t=9.5 in exact mode reads ~238 frames (what it decodes: see "
        "\"Reading the figures\").\n")
    sec.body.append(table(
        ["input", "case", "n", "framegate median", "p95", "bound median", "bound p95",
         "ffmpeg CLI", "ffmpeg ÷ framegate", "framegate ÷ bound"], rows, right=set(range(2, 10))))

    def fig(mode, t, width):
        return figures.get(("sample_1080p.mp4", mode, t, width))

    key = fig("keyframe", 1.0, 0)
    small = fig("keyframe", 1.0, 320)
    exact = fig("exactframe", 9.5, 0)
    if key:
        med, b, ff = key
        sec.targets.append(Target("keyframe 1080p t=1, full size: within 1.2× of the in-process bound",
                                  ratio(med, b, 2), None if b is None else med / b <= 1.2))
        sec.targets.append(Target("keyframe 1080p t=1, full size: ≥ 6× faster than ffmpeg",
                                  ratio(ff, med), ff / med >= 6))
    if small:
        med, _, ff = small
        sec.targets.append(Target("keyframe 1080p t=1, width=320: ≥ 8× faster than ffmpeg",
                                  ratio(ff, med), ff / med >= 8))
    if exact:
        med, _, ff = exact
        sec.targets.append(Target("exact frame 9.5 s into the 10 s GOP, 1080p: ≥ 2× faster than "
                                  "ffmpeg with accurate seek", ratio(ff, med), ff / med >= 2))


# --------------------------------------------------------------------------
# bytes: what a snapshot reads from the store
# --------------------------------------------------------------------------

def mp4_box_size(path: Path, box: bytes) -> int | None:
    """The size of the first top-level `box` (e.g. b"moov") of an MP4."""
    with open(path, "rb") as f:
        end = path.stat().st_size
        pos = 0
        while pos + 8 <= end:
            f.seek(pos)
            head = f.read(16)
            size, kind = int.from_bytes(head[:4], "big"), head[4:8]
            if size == 1:
                size = int.from_bytes(head[8:16], "big")
            elif size == 0:
                size = end - pos
            if kind == box:
                return size
            if size < 8:
                return None
            pos += size
    return None


def gop_bytes(video: Path, t: float) -> int:
    """Bytes of the video packets of the GOP that holds time `t` (from its
    keyframe up to the next keyframe, in decode order)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", f"%+{t + 12:g}",
         "-show_entries", "packet=pts_time,size,flags", "-of", "csv=p=0", str(video)],
        capture_output=True, text=True, check=True).stdout
    gops: list[list[tuple[float, int]]] = []
    for line in out.splitlines():
        fields = line.split(",")
        if len(fields) < 3 or fields[0] == "N/A":
            continue
        pts, size, flags = float(fields[0]), int(fields[1]), fields[2]
        if "K" in flags or not gops:
            gops.append([])
        gops[-1].append((pts, size))
    for gop in reversed(gops):
        if gop[0][0] <= t:
            return sum(size for _, size in gop)
    return sum(size for _, size in gops[0])


class CountingProxy:
    """A TCP proxy on a free loopback port in front of `upstream` (host,
    port) that counts the bytes the upstream sends back and the GET requests
    sent to it: what the gateway takes from the S3 server, open included."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.bytes = 0
        self.gets = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, downstream: bool) -> None:
        try:
            while data := src.recv(1 << 16):
                with self._lock:
                    if downstream:
                        self.bytes += len(data)
                    else:  # requests without bodies: each one starts a chunk
                        self.gets += data.count(b"GET /")
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def counts(self) -> tuple[int, int]:
        with self._lock:
            return self.bytes, self.gets

    def close(self) -> None:
        self._listener.close()


class DelayProxy(CountingProxy):
    """A CountingProxy that holds every request `delay` seconds before
    passing it on (a store in another zone: each request costs a round trip)
    and records when each request arrived and when its answer began, to
    count the requests that had to wait for one another."""

    METHODS = (b"GET ", b"HEAD ", b"PUT ", b"POST ", b"DELETE ")

    def __init__(self, upstream: tuple[str, int], delay: float):
        self.delay = delay
        self.requests: list[tuple[float, float]] = []  # (arrived, answer began)
        self._waiting: dict[int, list[float]] = {}
        super().__init__(upstream)

    def _pump(self, src: socket.socket, dst: socket.socket, downstream: bool) -> None:
        conn = id(dst) if downstream else id(src)  # the client socket names the connection
        try:
            while data := src.recv(1 << 16):
                now = time.perf_counter()
                with self._lock:
                    if downstream:
                        self.bytes += len(data)
                        waiting = self._waiting.get(conn)
                        if waiting and data.startswith(b"HTTP/"):
                            self.requests.append((waiting.pop(0), now))
                    elif data.startswith(self.METHODS):
                        self.gets += data.count(b"GET /")
                        self._waiting.setdefault(conn, []).append(now)
                if not downstream and data.startswith(self.METHODS):
                    time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def mark(self) -> int:
        with self._lock:
            return len(self.requests)

    def since(self, mark: int) -> tuple[int, int]:
        """(requests, sequential round trips) since `mark`: the longest chain
        of requests each sent after the answer to the one before began."""
        with self._lock:
            spans = sorted(self.requests[mark:], key=lambda r: r[1])
        chain, end = 0, float("-inf")
        for start, first_byte in spans:
            if start >= end:
                chain += 1
                end = first_byte
        return len(spans), chain


def remote_section(args, sec: Section) -> None:
    name = "x264_superfast_1080p.mp4"
    folder = encodes_dir(args, [name])
    video = folder / name
    delay = 0.020
    tmp = Path(tempfile.mkdtemp(prefix="framegate-remote-"))
    rows = []
    figures = {}
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        s3 = start_s3(stack, tmp / "s3")
        u = urllib.parse.urlsplit(s3.endpoint)
        proxy = DelayProxy((u.hostname, u.port), delay)
        stack.callback(proxy.close)
        gw = start_gateway(stack, tmp / "gw", f"s3://{support.S3_BACKING_BUCKET}",
                           f"http://127.0.0.1:{proxy.port}")
        keys = {"keyframe": "remote-key.mp4", "exactframe": "remote-exact.mp4"}
        for key in keys.values():
            snapshot_latency.upload(gw, key, video)
        session = KeepAlive()
        cases = [("keyframe t=1, first request", "keyframe", 1.0),
                 ("keyframe t=2, repeated request", "keyframe", 2.0),
                 ("exact t=5, first request", "exactframe", 5.0),
                 ("exact t=5.5, repeated request", "exactframe", 5.5)]
        for label, mode, t in cases:
            log(f"remote: {label}")
            url = presign(gw, keys[mode], {"ci-process": "snapshot", "time": f"{t:g}", "mode": mode})
            mark = proxy.mark()
            before = proxy.counts()
            t0 = time.perf_counter()
            status, body = session.get(url)
            elapsed = time.perf_counter() - t0
            if status != 200:
                raise RuntimeError(f"GET {url}: {status} {body[:300]!r}")
            time.sleep(0.1)
            requests_, chain = proxy.since(mark)
            got = proxy.counts()[0] - before[0]
            figures[label] = (elapsed, requests_, chain)
            rows.append([f"framegate: {label}", ms(elapsed), str(requests_), str(chain), mib(got)])
        session.close()
        # ffmpeg reads a pre-signed URL of the same object through the same proxy.
        import boto3
        from botocore.config import Config
        client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{proxy.port}",
                              region_name=support.S3_REGION,
                              aws_access_key_id=support.S3_ACCESS_KEY,
                              aws_secret_access_key=support.S3_SECRET_KEY,
                              config=Config(s3={"addressing_style": "path"}))
        s3_keys = [o["Key"] for o in client.list_objects_v2(Bucket=support.S3_BACKING_BUCKET)
                   .get("Contents", [])]
        object_key = next((k for k in s3_keys if k.endswith(keys["keyframe"])
                           and not k.startswith(".framegate/")), None)
        if object_key:
            src = client.generate_presigned_url(
                "get_object", Params={"Bucket": support.S3_BACKING_BUCKET, "Key": object_key},
                ExpiresIn=3600)
            for label, mode, t in [("keyframe t=1", "keyframe", 1.0), ("exact t=5", "exactframe", 5.0)]:
                log(f"remote: ffmpeg {label}")
                mark = proxy.mark()
                before = proxy.counts()
                args_ = [a if a != str(video) else src for a in ffmpeg_args(video, mode, t, 0)]
                elapsed = ffmpeg_times(args_, 1, tmp)[0]
                time.sleep(0.1)
                requests_, chain = proxy.since(mark)
                got = proxy.counts()[0] - before[0]
                rows.append([f"ffmpeg -i URL: {label}", ms(elapsed), str(requests_), str(chain), mib(got)])
    sec.body.append(
        f"`{name}` (10 s 1080p, faststart, {video.stat().st_size / MiB:.1f} MiB) on the S3 backend "
        f"(moto) behind a proxy that holds every request {delay * 1e3:.0f} ms before passing it on "
        "(a bucket in another zone). Each row is one request on a warm gateway; \"first\" is the "
        "first snapshot of that object version (the container is opened), \"repeated\" the next "
        "one. Requests: what the store got (HEAD and GET); sequential: the longest chain of them "
        "where each was sent after the answer to the one before began (each costs at least the "
        "delay). ffmpeg reads a pre-signed URL of the same object through the same proxy.\n")
    sec.body.append(table(["request", "latency", "store requests", "sequential", "bytes"], rows,
                          right={1, 2, 3, 4}))
    first = figures.get("keyframe t=1, first request")
    repeat = figures.get("keyframe t=2, repeated request")
    if first:
        sec.targets.append(Target("first keyframe snapshot of a faststart MP4 on S3 behind a 20 ms "
                                  "proxy: ≤ 3 sequential round trips", str(first[2]), first[2] <= 3))
    if repeat:
        sec.targets.append(Target("repeated request on the same object version: ≤ 1 sequential "
                                  "round trip", str(repeat[2]), repeat[2] <= 1))


def proc_io(pid: int) -> tuple[int, int]:
    """(rchar, syscr) of a process: bytes and read calls on files (socket
    receives are not counted)."""
    fields = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return int(fields["rchar"]), int(fields["syscr"])


SNAPSHOT_LOG = re.compile(r"snapshot store_bytes=(\d+) store_requests=(\d+)(?: reopened=(\w+))?")


def bytes_section(args, sec: Section) -> None:
    large = args.dir / "large_1gib.mp4"
    if not large.exists():
        raise RuntimeError(f"{large} missing (fixtures/make.sh large {args.dir})")
    size = large.stat().st_size
    moov = mp4_box_size(large, b"moov") or 0
    gop = gop_bytes(large, 1.0)
    limit = 2 * MiB + gop
    cases = [("keyframe t=1, first request", {"time": "1", "mode": "keyframe"}),
             ("exact t=1", {"time": "1", "mode": "exactframe"}),
             ("keyframe t=2, repeated request", {"time": "2", "mode": "keyframe"})]
    # backend -> per case: (bytes, reads or GETs, (log bytes, log requests, reopened))
    results: dict[str, list[tuple[int, int, tuple]]] = {}
    tmp = Path(tempfile.mkdtemp(prefix="framegate-bytes-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        for backend in ("local filesystem", "S3 (moto)"):
            with contextlib.ExitStack() as inner:
                proxy = None
                if backend.startswith("S3"):
                    s3 = start_s3(inner, tmp / "s3")
                    u = urllib.parse.urlsplit(s3.endpoint)
                    proxy = CountingProxy((u.hostname, u.port))
                    inner.callback(proxy.close)
                    gw = start_gateway(inner, tmp / "gw-s3", f"s3://{support.S3_BACKING_BUCKET}",
                                       f"http://127.0.0.1:{proxy.port}")
                else:
                    gw = start_gateway(inner, tmp / "gw-file")
                log(f"bytes: uploading {large.name} ({size / MiB:.0f} MiB) to the {backend} backend")
                snapshot_latency.upload(gw, "large.mp4", large)
                session = requests.Session()
                counts = []
                for _, params in cases:
                    url = presign(gw, "large.mp4", {"ci-process": "snapshot", **params})
                    logged_before = len(SNAPSHOT_LOG.findall(gw.stderr_log.read_text()))
                    before = proxy.counts() if proxy else proc_io(gw.pid)
                    r = session.get(url, timeout=300)
                    after = proxy.counts() if proxy else proc_io(gw.pid)
                    if r.status_code != 200:
                        raise RuntimeError(f"snapshot of large.mp4 {params}: {r.status_code} {r.text[:300]}")
                    time.sleep(0.2)  # let the log line reach the file
                    logged = SNAPSHOT_LOG.findall(gw.stderr_log.read_text())[logged_before:]
                    if len(logged) != 1:
                        raise RuntimeError(f"expected one `store_bytes=` log line, got {len(logged)}")
                    b, n, reopened = logged[0]
                    counts.append((after[0] - before[0], after[1] - before[1],
                                   (int(b), int(n), reopened or "?")))
                session.close()
                results[backend] = counts
    rows = []
    for i, (label, _) in enumerate(cases):
        logs = {f"{mib(c[i][2][0])} in {c[i][2][1]}, reopened={c[i][2][2]}" for c in results.values()}
        rows.append([label] + [f"{mib(c[i][0])} in {c[i][1]} " + ("GETs" if b.startswith("S3")
                                                                     else "read calls")
                               for b, c in results.items()]
                    + [" / ".join(sorted(logs))])
    sec.body.append(
        f"`{large.name}`: {size / MiB:.0f} MiB, moov {moov / 1024:.0f} KiB, the GOP at t=1 "
        f"{mib(gop)}; the three requests in this order, on one gateway per backend. Measured "
        "outside the gateway: local filesystem, the bytes and `read` calls of the gateway "
        "process's file reads (`rchar`, `syscr` of /proc/PID/io; the store reads a range in "
        "several calls, and each request also reads ~0.2 KiB of object metadata); S3, what the "
        "S3 server sent back (HTTP headers included) and the GETs it got, through a counting "
        "proxy. The last column is the gateway's own log line (`store_bytes=… store_requests=… "
        "reopened=…`; the request that opens the container counts what the open read).\n")
    sec.body.append(table(["request", *results, "gateway log"], rows, right={1, 2}))
    for backend, counts in results.items():
        (first, *_), (exact, *_), (repeat, _, (_, _, reopened)) = counts
        sec.targets.append(Target(
            f"{backend}: keyframe t=1 first request ≤ 2 MiB + one GOP ({mib(limit)})",
            mib(first), first <= limit))
        sec.targets.append(Target(
            f"{backend}: exact t=1 ≤ 2 MiB + one GOP ({mib(limit)})", mib(exact), exact <= limit))
        # The log says whether the container was opened (moov parsed) again;
        # older builds do not log it: then judge by the bytes.
        if reopened == "?":
            reread = repeat >= first / 2
            why = "moov probably read again" if reread else "moov probably not read again"
        else:
            reread = reopened == "true"
            why = "moov read again" if reread else "moov not read again (opened container reused)"
        sec.targets.append(Target(
            f"{backend}: repeated request (t=2) far below the first (≤ ½), moov not read again",
            f"{mib(repeat)} vs {mib(first)} first; {why}",
            not reread and repeat <= first / 2))


# --------------------------------------------------------------------------
# load: wrk, snapshots and plain GETs, nginx next to the gateway
# --------------------------------------------------------------------------

WRK_SCRIPT = r"""-- Generated by benches/compare.py. Thread k of n sends paths k, k+n, k+2n
-- ... in turn, so with more paths than connections no two requests in flight
-- are the same; prints a JSON summary at the end.
paths = { %(paths)s }
nthreads = %(threads)d
local started = 0
function setup(thread)
  thread:set("tid", started)
  started = started + 1
end
local i = 0
function request()
  local per_thread = math.floor(#paths / nthreads)
  local path = paths[1]
  if per_thread >= 1 then
    path = paths[(i %% per_thread) * nthreads + tid + 1]
  end
  i = i + 1
  return wrk.format("GET", path)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, ' ..
    '"status_errors": %%d, "connect_errors": %%d, "read_errors": %%d, "write_errors": %%d, ' ..
    '"timeouts": %%d, "p50_us": %%d, "p99_us": %%d}\n',
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def lua_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_wrk(base: str, paths: list[str], connections: int, duration: float, tmp: Path) -> dict:
    """wrk over `paths` of `base` for `duration` seconds; requests/s of
    successful responses, median and p99 latency, non-2xx/3xx count."""
    threads = min(2, connections)
    script = tmp / "wrk.lua"
    script.write_text(WRK_SCRIPT % {"paths": ", ".join(lua_string(p) for p in paths),
                                    "threads": threads})
    cmd = ["wrk", "-t", str(threads), "-c", str(connections),
           "-d", f"{duration:g}s", "--timeout", "60s", "-s", str(script), base]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"{' '.join(cmd)}: exit {out.returncode}\n{out.stdout}\n{out.stderr}")
    r = json.loads(line[len("WRKJSON "):])
    seconds = r["duration_us"] / 1e6
    errors = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
    return {"rps": (r["requests"] - r["status_errors"]) / seconds,
            "p50": r["p50_us"] / 1e6, "p99": r["p99_us"] / 1e6,
            "non2xx": r["status_errors"], "errors": errors, "requests": r["requests"],
            "mib_s": r["bytes"] / seconds / MiB}


NGINX_CONF = """# Generated by benches/compare.py: static files from one directory.
daemon off;
master_process on;
worker_processes 2;
pid %(tmp)s/nginx.pid;
error_log %(tmp)s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path %(tmp)s/client_body;
    proxy_temp_path %(tmp)s/proxy;
    fastcgi_temp_path %(tmp)s/fastcgi;
    uwsgi_temp_path %(tmp)s/uwsgi;
    scgi_temp_path %(tmp)s/scgi;
    server {
        listen 127.0.0.1:%(port)d;
        root %(root)s;
    }
}
"""


def start_nginx(stack: contextlib.ExitStack, tmp: Path, file: Path) -> tuple[int, str]:
    """nginx serving a copy of `file` on a free loopback port, stopped when
    `stack` closes. Returns (port, path of the file)."""
    # Its own world-readable directory: the workers drop root privileges.
    www = Path(tempfile.mkdtemp(prefix="framegate-nginx-www-"))
    stack.callback(shutil.rmtree, www, ignore_errors=True)
    www.chmod(0o755)
    shutil.copyfile(file, www / file.name)
    (www / file.name).chmod(0o644)
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF % {"tmp": tmp, "port": port, "root": www})
    proc = subprocess.Popen([which("nginx"), "-p", str(tmp), "-c", str(conf),
                             "-e", str(tmp / "error.log")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(tmp / "nginx.stderr", "wb"))
    stack.callback(stop_process, proc)
    try:
        wait_port(port)
    except RuntimeError:
        raise RuntimeError(f"nginx did not start: {(tmp / 'nginx.stderr').read_text()}"
                           f"{(tmp / 'error.log').read_text() if (tmp / 'error.log').exists() else ''}")
    return port, "/" + file.name


def load_section(args, sec: Section) -> None:
    ensure_tools(["wrk", "nginx"])
    video = args.dir / "sample_720p.mp4"
    if not video.exists():
        raise RuntimeError(f"{video} missing (fixtures/make.sh large {args.dir})")
    levels = (1, 8, 64)
    tmp = Path(tempfile.mkdtemp(prefix="framegate-load-"))
    snap, fg_get, ng_get = {}, {}, {}
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        gw = start_gateway(stack, tmp / "gw")
        snapshot_latency.upload(gw, video.name, video)
        nginx_port, nginx_path = start_nginx(stack, tmp, video)
        # 3800 distinct times (0.0025 .. 9.5 s): more than the requests that
        # can be issued while one waits in the queue, 503 answers included.
        times = [f"{0.0025 * i:g}" for i in range(1, 3801)]
        snap_paths = [urllib.parse.urlsplit(presign(
            gw, video.name, {"ci-process": "snapshot", "time": t, "mode": "keyframe"}))
            for t in times]
        snap_paths = [f"{u.path}?{u.query}" for u in snap_paths]
        get_url = urllib.parse.urlsplit(presign(gw, video.name))
        get_path = f"{get_url.path}?{get_url.query}"
        # Check a few URLs (and warm up) before measuring.
        with requests.Session() as s:
            for p in snap_paths[:5] + snap_paths[-5:] + [get_path]:
                r = s.get(gw.url + p, timeout=60)
                if r.status_code != 200:
                    raise RuntimeError(f"GET {p}: {r.status_code} {r.text[:300]}")
            r = s.get(f"http://127.0.0.1:{nginx_port}{nginx_path}", timeout=60)
            if r.status_code != 200 or r.content != video.read_bytes():
                raise RuntimeError(f"nginx GET: {r.status_code}")
        for c in levels:
            log(f"load: keyframe snapshots, {c} connection(s), {args.duration:g} s")
            decoded = len(SNAPSHOT_LOG.findall(gw.stderr_log.read_text()))
            snap[c] = run_wrk(gw.url, snap_paths, c, args.duration, tmp)
            time.sleep(0.5)  # the last answers' log lines
            snap[c]["decodes"] = len(SNAPSHOT_LOG.findall(gw.stderr_log.read_text())) - decoded
        for c in levels:
            log(f"load: framegate GET, {c} connection(s), {args.duration:g} s")
            fg_get[c] = run_wrk(gw.url, [get_path], c, args.duration, tmp)
            log(f"load: nginx GET, {c} connection(s), {args.duration:g} s")
            ng_get[c] = run_wrk(f"http://127.0.0.1:{nginx_port}", [nginx_path], c,
                                args.duration, tmp)

    def row(what, c, r, extra):
        errors = r["non2xx"] + r["errors"]
        decodes = "—"
        if "decodes" in r:
            ok = r["requests"] - r["non2xx"]
            decodes = f"{r['decodes']}" + ("" if r["decodes"] >= ok else f" (< {ok} answers)")
        return [what, str(c), f"{r['rps']:.1f}", ms(r["p50"]), ms(r["p99"]), str(errors),
                decodes, extra]

    rows = []
    for c in levels:
        rows.append(row("framegate snapshot (keyframe 720p)", c, snap[c],
                        ratio(snap[c]["rps"], snap[1]["rps"], 2) + " of 1 client"))
    for c in levels:
        share = ratio(fg_get[c]["rps"], ng_get[c]["rps"], 2)
        rows.append(row("framegate GET", c, fg_get[c],
                        f"{fg_get[c]['mib_s']:.0f} MiB/s, {share} of nginx"))
        rows.append(row("nginx GET", c, ng_get[c], f"{ng_get[c]['mib_s']:.0f} MiB/s"))
    sec.body.append(
        f"wrk, {args.duration:g} s per row, 2 threads (1 with one connection), on the same 2 cores "
        f"as the servers. Snapshots: `{video.name}` keyframe, full size, cache off, rotating over "
        f"{len(times)} pre-signed URLs with distinct times (0.0025 … 9.5 s; each wrk thread "
        "takes its own share in turn, so no two requests in flight are identical and none is "
        "coalesced: decodes, counted from the gateway's log, match the answers). GET: the whole "
        f"{video.stat().st_size / MiB:.1f} MiB file with a pre-signed URL; nginx serves the same "
        "file (sendfile, keep-alive, 2 workers, no access log). Requests/s counts 2xx answers "
        "only; errors are non-2xx (503 SlowDown beyond `media.workers` + `media.queue`) and "
        "socket errors; latencies include every answer.\n")
    sec.body.append(table(["load", "connections", "requests/s", "median", "p99", "errors",
                           "decodes", "ratio"], rows, right={1, 2, 3, 4, 5, 6}))
    scale = snap[8]["rps"] / snap[1]["rps"] if snap[1]["rps"] else 0
    sec.targets.append(Target("throughput at 8 clients, keyframe 720p, ≥ 1.8× single client",
                              f"{scale:.2f}×", scale >= 1.8))
    worst = min(levels, key=lambda c: fg_get[c]["rps"] / ng_get[c]["rps"])
    share = fg_get[worst]["rps"] / ng_get[worst]["rps"]
    sec.targets.append(Target(
        "plain GET throughput ≥ 80 % of nginx (at every concurrency)",
        f"lowest {share * 100:.0f} % (at {worst} connection{'s' if worst > 1 else ''})",
        share >= 0.8))


# --------------------------------------------------------------------------
# rss: 64 concurrent 2160p snapshots
# --------------------------------------------------------------------------

def burst(urls: list[str]) -> list[tuple[int, float, str]]:
    """GETs every URL at once, one connection each (connected beforehand);
    returns (status, seconds, error code) per request."""
    results: list = [None] * len(urls)
    gate = threading.Barrier(len(urls) + 1)

    def one(i: int, url: str) -> None:
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
        try:
            conn.connect()
            gate.wait()
            t0 = time.perf_counter()
            conn.request("GET", f"{u.path}?{u.query}")
            resp = conn.getresponse()
            body = resp.read()
            elapsed = time.perf_counter() - t0
            code = re.search(rb"<Code>([^<]+)</Code>", body) if resp.status != 200 else None
            results[i] = (resp.status, elapsed, code.group(1).decode() if code else "")
        except Exception as e:  # noqa: BLE001  (reported as status 0)
            results[i] = (0, 0.0, repr(e))
        finally:
            conn.close()

    threads = [threading.Thread(target=one, args=(i, u), daemon=True) for i, u in enumerate(urls)]
    for t in threads:
        t.start()
    gate.wait(timeout=60)
    for t in threads:
        t.join()
    return results


def rss_section(args, sec: Section) -> None:
    video = args.dir / "sample_2160p.mp4"
    if not video.exists():
        raise RuntimeError(f"{video} missing (fixtures/make.sh large {args.dir})")
    n = 64
    tmp = Path(tempfile.mkdtemp(prefix="framegate-rss-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        gw = start_gateway(stack, tmp / "gw")
        snapshot_latency.upload(gw, video.name, video)
        # Every 4th request: exact frame deep in the GOP (8.75..9.5 s);
        # the others: keyframe at distinct times.
        params = []
        for i in range(n):
            if i % 4 == 0:
                params.append({"time": f"{9.5 - (i // 4) * 0.05:.2f}", "mode": "exactframe"})
            else:
                params.append({"time": f"{0.05 + i * 0.1:.2f}", "mode": "keyframe"})
        urls = [presign(gw, video.name, {"ci-process": "snapshot", **p}) for p in params]
        warm = presign(gw, video.name, {"ci-process": "snapshot", "time": "0.01",
                                                     "mode": "keyframe"})
        requests.get(warm, timeout=60).raise_for_status()
        before = gw.status_kib("VmHWM") * 1024
        log(f"rss: {n} concurrent 2160p snapshots")
        t0 = time.perf_counter()
        results = burst(urls)
        total = time.perf_counter() - t0
        peak = gw.status_kib("VmHWM") * 1024
        text = Path(f"/proc/{gw.pid}/status").read_text()
        workers = re.search(r"^Threads:\s+(\d+)", text, re.M).group(1)
    ok = [r for r in results if r[0] == 200]
    slow = [r for r in results if r[0] == 503]
    other = [r for r in results if r[0] not in (200, 503)]
    ok_exact = sum(1 for r, p in zip(results, params) if r[0] == 200 and p["mode"] == "exactframe")
    rows = [[
        f"{n} ({n // 4} exact, {n - n // 4} keyframe)",
        f"{len(ok)} ({ok_exact} exact)",
        f"{len(slow)}" + ("" if not slow or all(r[2] == "SlowDown" for r in slow) else " (not SlowDown)"),
        str(len(other)) + (f" ({other[0][0]} {other[0][2]})" if other else ""),
        ms(statistics.median(r[1] for r in ok)) if ok else "n/a",
        ms(max(r[1] for r in ok)) if ok else "n/a",
        ms(statistics.median(r[1] for r in slow)) if slow else "n/a",
        f"{before / MiB:.0f} MiB", f"{peak / MiB:.0f} MiB",
    ]]
    sec.body.append(
        f"`{video.name}` (3840x2160), cache off, default `media.workers`/`media.queue`; {n} "
        "requests on their own connections (opened beforehand) released at once: every 4th "
        "exact frame at t = 8.75 … 9.5 (one 10 s GOP, so ~220-238 frames decoded each), the "
        f"others keyframe at distinct times. Burst over in {total:.1f} s; the server had "
        f"{workers} threads after it. VmHWM is the server's peak RSS since start (before: after "
        "one warm-up snapshot).\n")
    sec.body.append(table(["requests", "200", "503", "other", "200 median", "200 slowest",
                           "503 median", "VmHWM before", "VmHWM after"], rows,
                          right=set(range(1, 9))))
    sec.targets.append(Target("64 concurrent 2160p: peak RSS ≤ 1 GiB", f"{peak / MiB:.0f} MiB",
                              peak <= GiB))
    if slow:
        med = statistics.median(r[1] for r in slow)
        sec.targets.append(Target("excess requests answered 503 SlowDown quickly (median ≤ 100 ms)",
                                  f"{len(slow)} × 503, median {ms(med)}",
                                  med <= 0.1 and not other))
    else:
        sec.targets.append(Target("excess requests answered 503 SlowDown quickly",
                                  "no 503 (every request was admitted)", None))


# --------------------------------------------------------------------------
# metrics: recording and scraping on vs off
# --------------------------------------------------------------------------

def start_gateway_admin(stack: contextlib.ExitStack, workdir: Path, admin: bool) -> support.Gateway:
    """As start_gateway (snapshot cache off), with the admin listener (and
    so metrics recording) on or off; `gw.admin` is its URL or None."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = support.write_config(workdir / "framegate.toml", workdir / "data", "file://")
    top = f'admin_listen = "127.0.0.1:{free_port()}"\n' if admin else ""
    config.write_text(top + config.read_text() + "\n[media]\ncache_bytes = 0\n")
    gw = support.Gateway(config, workdir, "metrics-on" if admin else "metrics-off").start()
    stack.callback(gw.stop)
    gw.admin = ("http://" + top.split('"')[1]) if admin else None
    return gw


def metrics_section(args, sec: Section) -> None:
    ensure_tools(["wrk"])
    video = args.dir / "sample_720p.mp4"
    if not video.exists():
        raise RuntimeError(f"{video} missing (fixtures/make.sh large {args.dir})")
    tmp = Path(tempfile.mkdtemp(prefix="framegate-metrics-"))
    scrapes = {"n": 0, "bytes": 0}
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        off = start_gateway_admin(stack, tmp / "off", admin=False)
        on = start_gateway_admin(stack, tmp / "on", admin=True)
        small = tmp / "object.bin"
        small.write_bytes(os.urandom(64 * 1024))
        for gw in (off, on):
            snapshot_latency.upload(gw, video.name, video)
            snapshot_latency.upload(gw, small.name, small)
        stop = threading.Event()

        def scraper():
            # As Prometheus would, every second.
            with requests.Session() as s:
                while not stop.wait(1.0):
                    r = s.get(on.admin + "/metrics", timeout=10)
                    scrapes["n"] += 1
                    scrapes["bytes"] = len(r.content)

        thread = threading.Thread(target=scraper, daemon=True)
        thread.start()
        stack.callback(stop.set)
        log("metrics: keyframe snapshot latency, recording off vs on, alternating")
        client = KeepAlive()
        stack.callback(client.close)
        urls = {gw.name: presign(gw, video.name, {"ci-process": "snapshot", "time": "1",
                                                  "mode": "keyframe"}) for gw in (off, on)}
        times = {off.name: [], on.name: []}
        for name, url in urls.items():
            http_times(client, url, 1, warmup=3)
        for _ in range(args.runs * 10):
            for gw in (off, on):
                times[gw.name] += http_times(client, urls[gw.name], 1, warmup=0)
        log(f"metrics: GET throughput, wrk 8 connections, {args.duration:g} s x 2 per gateway")
        paths = {}
        for gw in (off, on):
            u = urllib.parse.urlsplit(presign(gw, small.name))
            paths[gw.name] = f"{u.path}?{u.query}"
        rps = {off.name: [], on.name: []}
        for _ in range(2):
            for gw in (off, on):
                rps[gw.name].append(run_wrk(gw.url, [paths[gw.name]], 8, args.duration, tmp)["rps"])
        stop.set()
        thread.join(timeout=5)
    snap = {k: (statistics.median(v), p95(v)) for k, v in times.items()}
    get = {k: sum(v) / len(v) for k, v in rps.items()}
    snap_cost = snap["metrics-on"][0] / snap["metrics-off"][0] - 1
    get_cost = 1 - get["metrics-on"] / get["metrics-off"]
    rows = [
        ["keyframe snapshot 720p t=1 (median, p95)",
         f"{ms(snap['metrics-off'][0])}, {ms(snap['metrics-off'][1])}",
         f"{ms(snap['metrics-on'][0])}, {ms(snap['metrics-on'][1])}", f"{snap_cost * 100:+.1f} %"],
        ["GET 64 KiB, wrk 8 connections (requests/s)", f"{get['metrics-off']:.0f}",
         f"{get['metrics-on']:.0f}", f"{-get_cost * 100:+.1f} %"],
    ]
    sec.body.append(table(["", "metrics off", "metrics on, scraped every 1 s", "difference"], rows,
                          right={1, 2, 3}) + "\n")
    sec.body.append(f"{len(times['metrics-on'])} snapshots per gateway, alternating; wrk "
                    f"{args.duration:g} s twice per gateway, alternating; {scrapes['n']} scrapes "
                    f"of {scrapes['bytes'] / 1024:.0f} KiB.\n")
    sec.targets.append(Target("metrics cost < 2 % of a keyframe snapshot's latency",
                              f"{snap_cost * 100:+.1f} %", snap_cost < 0.02))
    sec.targets.append(Target("metrics cost < 2 % of plain GET throughput",
                              f"{get_cost * 100:+.1f} %", get_cost < 0.02))


# --------------------------------------------------------------------------
# sprite: a 100-cell sprite job vs ffmpeg fps+scale+tile
# --------------------------------------------------------------------------

def sprite_section(args, sec: Section) -> None:
    import sprite_job

    video = args.dir / "ten_minutes_1080p.mp4"
    if not video.exists():
        raise RuntimeError(f"{video} missing (fixtures/make.sh large {args.dir})")
    log(f"sprite: 100-cell sprite job and ffmpeg on {video.name}")
    r = sprite_job.run(video, 100, args.binary, idle_priority=True, probes=False)
    interval = r["interval_s"]
    rows = [
        ["framegate sprite job", f"{r['framegate_wall_s']:.2f} s", f"{r['framegate_cpu_s']:.2f} s"],
        ["ffmpeg fps + scale + tile", f"{r['ffmpeg_wall_s']:.2f} s", f"{r['ffmpeg_cpu_s']:.2f} s"],
        ["ffmpeg ÷ framegate", f"**{ratio(r['ffmpeg_wall_s'], r['framegate_wall_s'])}**",
         ratio(r["ffmpeg_cpu_s"], r["framegate_cpu_s"])],
    ]
    sec.body.append(
        f"`{video.name}` ({r['duration_s']:.0f} s 1080p H.264, 2 s GOPs). The job: an "
        f"`ImageSpriteTemplate` of 142x80 cells, 10x10, one every {interval} s ({r['cells']} "
        "cells), one job worker at `SCHED_IDLE`, timed from `ProcessMedia` to `FINISH`; CPU "
        "is the gateway's user + system time. ffmpeg: `ffmpeg -i VIDEO -vf "
        f"fps=1/{interval},scale=142:80,tile=10x10 -frames:v 1 out.jpg`, CPU from "
        "`getrusage(RUSAGE_CHILDREN)`. Nothing else runs meanwhile.\n")
    sec.body.append(table(["", "wall", "CPU"], rows, right={1, 2}))
    speedup = r["ffmpeg_wall_s"] / r["framegate_wall_s"]
    sec.targets.append(Target("sprite job ≥ 3× faster than ffmpeg (wall)", f"{speedup:.1f}×",
                              speedup >= 3))


def ci_section(args, sec: Section) -> None:
    import ci_jobs

    video = args.dir / "ten_minutes_1080p.mp4"
    if not video.exists():
        raise RuntimeError(f"{video} missing (fixtures/make.sh large {args.dir})")
    log(f"ci: 100-picture and 10x10 sprite CI jobs and ffmpeg on {video.name}")
    r = ci_jobs.run(video, args.binary)
    every = f"{r['interval_s']:g}"
    rows = [
        ["Interval job, 100 pictures 320 wide", f"{r['pictures_wall_s']:.2f} s",
         f"{r['pictures_cpu_s']:.2f} s"],
        [f"ffmpeg fps=1/{every},scale=320:-2", f"{r['ffmpeg_pictures_wall_s']:.2f} s",
         f"{r['ffmpeg_pictures_cpu_s']:.2f} s"],
        ["ffmpeg ÷ framegate", f"**{ratio(r['ffmpeg_pictures_wall_s'], r['pictures_wall_s'])}**",
         ratio(r["ffmpeg_pictures_cpu_s"], r["pictures_cpu_s"])],
        ["Interval job, OnlySprite 10x10 of 142x80", f"{r['sprite_wall_s']:.2f} s",
         f"{r['sprite_cpu_s']:.2f} s"],
        [f"ffmpeg fps=1/{every},scale=142:80,tile=10x10", f"{r['ffmpeg_sprite_wall_s']:.2f} s",
         f"{r['ffmpeg_sprite_cpu_s']:.2f} s"],
        ["ffmpeg ÷ framegate", f"**{ratio(r['ffmpeg_sprite_wall_s'], r['sprite_wall_s'])}**",
         ratio(r["ffmpeg_sprite_cpu_s"], r["sprite_cpu_s"])],
    ]
    sec.body.append(
        f"`{video.name}` ({r['duration_s']:.0f} s 1080p H.264, 2 s GOPs), jobs submitted with "
        "cos-python-sdk-v5's `ci_create_media_jobs` (Mode Interval, TimeInterval "
        f"{every} s, Count 100) and timed to `State=Success` (one job worker at `SCHED_IDLE`; "
        "CPU is the gateway's user + system time); ffmpeg timed the same way, its CPU from "
        "`getrusage(RUSAGE_CHILDREN)`.\n")
    sec.body.append(table(["", "wall", "CPU"], rows, right={1, 2}))


def pictures_section(args, sec: Section) -> None:
    import pictures

    video = args.dir / "ten_minutes_1080p.mp4"
    if not video.exists():
        raise RuntimeError(f"{video} missing (fixtures/make.sh large {args.dir})")
    log(f"pictures: formats and animations of {video.name}")
    r = pictures.run(video, args.binary)
    rows = []
    for width in (0, 320):
        jpeg = r["formats"][("jpg", width)]["median_ms"]
        for fmt in ("jpg", "webp", "avif"):
            t = r["formats"][(fmt, width)]
            rows.append([f"{fmt} {'1920x1080' if width == 0 else '320 wide'}",
                         f"{t['median_ms']:.1f} ms", f"{t['p95_ms']:.1f} ms",
                         f"{t['bytes'] / 1024:.1f} KiB", ratio(t["median_ms"], jpeg, 2)])
    sec.body.append("Keyframe snapshot at 5 s, the video opened once, median of 30 runs of "
                    "seek + decode + scale + encode (`framegate snapshot --repeat 30`); "
                    "quality: JPEG 85, WebP 80 (libwebp method 2, method 0 from a megapixel "
                    "on), AVIF 60 (libaom real-time, cpu-used 8).\n")
    sec.body.append(table(["", "median", "p95", "size", "÷ JPEG"], rows, right={1, 2, 3, 4}))
    anim = []
    for fmt in ("gif", "webp"):
        wall, size = r["animation"][fmt]
        ff = r[f"ffmpeg_{fmt}_s"]
        anim.append([f"animated {fmt}", f"{wall:.2f} s", f"{size / 1024:.0f} KiB", f"{ff:.2f} s",
                     f"{r[f'ffmpeg_{fmt}_bytes'] / 1024:.0f} KiB", f"**{ratio(wall, ff, 2)}**"])
    sec.body.append("\nA 3 s, 10 fps, 320-wide preview of a 12 s cut: the VOD task timed from "
                    "ProcessMedia to FINISH (one worker) vs the ffmpeg command line (best of 3; "
                    "GIF: `fps=10,scale=320:-2,split,palettegen,paletteuse`, WebP: "
                    "`-c:v libwebp_anim -quality 75`).\n")
    sec.body.append(table(["", "framegate", "size", "ffmpeg", "size", "framegate ÷ ffmpeg"],
                          anim, right={1, 2, 3, 4, 5}))
    full_jpeg, full_webp = (r["formats"][(f, 0)]["median_ms"] for f in ("jpg", "webp"))
    sec.targets.append(Target("1080p keyframe snapshot as WebP within 1.5× of the same as JPEG",
                              ratio(full_webp, full_jpeg, 2), full_webp / full_jpeg <= 1.5))
    small_avif = r["formats"][("avif", 320)]["median_ms"]
    sec.targets.append(Target("320-px AVIF keyframe snapshot under 100 ms",
                              f"{small_avif:.1f} ms", small_avif < 100))
    for fmt in ("gif", "webp"):
        wall, ff = r["animation"][fmt][0], r[f"ffmpeg_{fmt}_s"]
        sec.targets.append(Target(f"3 s 320-px animated {fmt} preview within 2× of ffmpeg",
                                  ratio(wall, ff, 2), wall / ff <= 2))


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def machine_line() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        m = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        if m:
            cpu = m.group(1).strip()
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout
    ffmpeg = ffmpeg.splitlines()[0].split(" Copyright")[0] if ffmpeg else "ffmpeg ?"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"],
                           cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return (f"{os.cpu_count()} cores ({cpu}), {ffmpeg}, framegate commit {commit}"
            + (" plus uncommitted changes under src/" if dirty else ""))


def report(sections: list[Section], args, started: datetime.datetime, seconds: float) -> str:
    out = [
        f"Generated by `benches/compare.py` on {started:%Y-%m-%d %H:%M} UTC in "
        f"{seconds / 60:.1f} min: {machine_line()}; release build; "
        f"--runs {args.runs} --ffmpeg-runs {args.ffmpeg_runs} --duration {args.duration:g}.",
        "",
    ]
    for sec in sections:
        out.append(sec.markdown())
    targets = [(sec.title, t) for sec in sections for t in sec.targets]
    if targets:
        out += ["### Targets", ""]
        out.append(table(["", "target", "measured"],
                         [[t.mark(), t.what, t.measured] for _, t in targets]))
    return "\n".join(out).rstrip() + "\n"


def write_benchmarks(text: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    doc = path.read_text()
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"{path} has no {BEGIN} … {END} markers")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{text}{END}{tail}")
    log(f"wrote the results into {path}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Sections: " + ", ".join(SECTIONS) + ". See the module docstring for details.")
    parser.add_argument("dir", type=Path, help="the output directory of `fixtures/make.sh large DIR`")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help="comma-separated sections to run (default: all)")
    parser.add_argument("--skip", default="", help="comma-separated sections to leave out")
    parser.add_argument("--runs", type=int, default=15,
                        help="gateway requests and bound runs per latency case (default 15)")
    parser.add_argument("--ffmpeg-runs", type=int, default=5,
                        help="ffmpeg runs per latency case (default 5)")
    parser.add_argument("--duration", type=float, default=10,
                        help="seconds per load-generator run (default 10)")
    parser.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "framegate")
    parser.add_argument("--encodes", type=Path, default=None,
                        help="where `fixtures/make.sh encodes` puts (or has put) the ordinary "
                             "encodes of the encodes and scrub sections (default: DIR)")
    parser.add_argument("--write", action="store_true",
                        help="replace the generated section of BENCHMARKS.md")
    args = parser.parse_args()
    args.dir = args.dir.resolve()
    args.binary = args.binary.resolve()
    if args.encodes:
        args.encodes = args.encodes.resolve()
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    skipped = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = (set(wanted) | skipped) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; known: {', '.join(SECTIONS)}")
    if not args.binary.exists():
        parser.error(f"{args.binary} not found: run `cargo build --release`")
    if args.runs < 1 or args.ffmpeg_runs < 1 or args.duration <= 0:
        parser.error("--runs and --ffmpeg-runs must be ≥ 1, --duration > 0")
    os.environ["FRAMEGATE_BIN"] = str(args.binary)  # support.Gateway starts this binary

    # SIGINT (also when started in the background, where it is inherited as
    # ignored), SIGTERM and SIGHUP unwind like Ctrl-C, so every `finally`
    # stops the processes it started.
    def interrupt(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)

    runners = {"latency": ("Snapshot latency: gateway vs in-process bound vs ffmpeg CLI", latency_section),
               "encodes": ("Exact frames on ordinary encodes vs the ffmpeg CLI", encodes_section),
               "scrub": ("Scrubbing: 20 increasing exact frames in one GOP vs the deepest alone", scrub_section),
               "bytes": ("Bytes read from the store per snapshot, ≥ 1 GiB MP4", bytes_section),
               "remote": ("Round trips to a remote store (S3 behind a 20 ms proxy)", remote_section),
               "load": ("Throughput under load (wrk): snapshots, and plain GETs next to nginx", load_section),
               "rss": ("64 concurrent 2160p snapshots: admission and peak RSS", rss_section),
               "sprite": ("Sprite job vs the ffmpeg command line", sprite_section),
               "ci": ("CI snapshot jobs vs the ffmpeg command line", ci_section),
               "pictures": ("WebP, AVIF and animated previews", pictures_section),
               "metrics": ("The cost of metrics: recording and scraping on vs off", metrics_section)}
    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.monotonic()
    sections, failed = [], []
    for name in SECTIONS:
        if name not in wanted or name in skipped:
            continue
        title, run = runners[name]
        sec = Section(title)
        t0 = time.monotonic()
        try:
            run(args, sec)
        except KeyboardInterrupt:
            log("interrupted")
            return 130
        except Exception as e:  # noqa: BLE001  (one broken section must not hide the others)
            traceback.print_exc()
            sec.body.append(f"**Failed:** `{type(e).__name__}: {str(e).splitlines()[0][:300]}`\n")
            failed.append(name)
        sec.seconds = time.monotonic() - t0
        log(f"{name}: {sec.seconds:.0f} s")
        sections.append(sec)
        print(sec.markdown(), flush=True)
    seconds = time.monotonic() - t_start
    text = report(sections, args, started, seconds)
    print("\n" + "=" * 72 + "\n")
    print(text)
    log(f"total {seconds / 60:.1f} min" + (f"; failed sections: {', '.join(failed)}" if failed else ""))
    if args.write:
        if failed:
            log("not writing BENCHMARKS.md: some sections failed")
        else:
            write_benchmarks(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
