#!/usr/bin/env python3
"""Several gateways behind nginx (docs/deploy.md), measured: snapshot
throughput with 1, 2 and 3 gateways, the cache hit ratios of a
repeated-thumbnail workload under consistent hashing vs round robin, and the
job throughput of a 200-task burst on 1 vs 3 nodes. Prints Markdown tables
(BENCHMARKS.md, "Several gateways").

Usage (from the repository root; as root for the CPU shares):

    .venv/bin/python benches/fleet.py [--bin target/release/framegate] [--duration 10]
        [--share 0.4] [--only throughput,cache,jobs]

Everything runs on loopback, started from the test helpers
(tests/sdk/fleet_support.py): moto as the S3 server, a throwaway PostgreSQL,
nginx with the configuration of docs/deploy.md, N gateways with one
configuration. The fixture h264_bframes.mp4 (320x240, 10 s) is uploaded
under many keys, so consistent hashing spreads objects over the nodes.

CPU method: each gateway runs in its own cgroup (v1 `cpu` controller) with a
CFS quota of `--share` of one CPU (default 0.4) and a high `cpu.shares`, so
each node gets the same fixed share whatever the number of nodes, while
nginx, wrk, moto and PostgreSQL run outside those groups on what is left
(2 - N x share of the 2 cores). Without cgroup v1 (or not as root) it falls
back to `taskset`, one core per gateway in turn (then 3 nodes on 2 cores
share a core, which the output says).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "sdk"))
sys.path.insert(0, str(ROOT / "benches"))
import support  # noqa: E402
from compare import run_wrk  # noqa: E402
from fleet_support import FLEET_BACKING_BUCKET, Fleet, Receiver  # noqa: E402
from jobs_support import FIXTURES, process, vod  # noqa: E402
from pg_server import PostgresServer  # noqa: E402

CLIP = (FIXTURES / "h264_bframes.mp4").read_bytes()      # 320x240, 10 s, 239 KB
SMALL_CLIP = (FIXTURES / "vfr.mp4").read_bytes()        # 320x240, 3.9 s, 65 KB
CGROUP_CPU = Path("/sys/fs/cgroup/cpu")
SNAPSHOT_LOG = re.compile(r"snapshot store_bytes=\d+ store_requests=\d+ reopened=(\w+)")


# --------------------------------------------------------------------------
# CPU shares
# --------------------------------------------------------------------------

class CpuShares:
    """One CPU share per gateway: a cgroup v1 with a CFS quota, or taskset."""

    def __init__(self, share: float):
        self.share = share
        self.groups: list[Path] = []
        self.cgroups = os.geteuid() == 0 and (CGROUP_CPU / "cpu.cfs_quota_us").exists()
        self.method = (f"cgroup v1 cpu, CFS quota {share:g} CPU per gateway"
                       if self.cgroups else "taskset, one core per gateway in turn")

    def prioritise_self(self) -> None:
        """This process and everything it starts from now on (moto,
        PostgreSQL, nginx, wrk, the gateways until confined) in one cgroup
        with a high weight and no quota: other work on the machine (other
        people's builds) gets the CPU after the benchmark's."""
        if not self.cgroups:
            return
        self.own = CGROUP_CPU / f"framegate-bench-rest-{os.getpid()}"
        self.own.mkdir(exist_ok=True)
        (self.own / "cpu.shares").write_text("8192")
        (self.own / "cgroup.procs").write_text(str(os.getpid()))

    def release_self(self) -> None:
        own = getattr(self, "own", None)
        if own is None:
            return
        for pid in (own / "cgroup.procs").read_text().split():
            try:
                (CGROUP_CPU / "cgroup.procs").write_text(pid)
            except OSError:
                pass
        try:
            own.rmdir()
        except OSError as err:
            print(f"  (could not remove {own}: {err})", file=sys.stderr)

    def confine(self, pids: list[int]) -> None:
        for i, pid in enumerate(pids):
            if self.cgroups:
                group = CGROUP_CPU / f"framegate-bench-{uuid.uuid4().hex[:8]}"
                group.mkdir()
                (group / "cpu.cfs_period_us").write_text("100000")
                (group / "cpu.cfs_quota_us").write_text(str(int(self.share * 100000)))
                (group / "cpu.shares").write_text("8192")
                (group / "cgroup.procs").write_text(str(pid))
                self.groups.append(group)
            else:
                core = i % (os.cpu_count() or 1)
                os.system(f"taskset -a -p -c {core} {pid} >/dev/null")

    def release(self) -> None:
        for group in self.groups:
            try:
                for pid in (group / "cgroup.procs").read_text().split():
                    try:
                        (CGROUP_CPU / "cgroup.procs").write_text(pid)
                    except OSError:
                        pass
                group.rmdir()
            except OSError as err:
                print(f"  (could not remove {group}: {err})", file=sys.stderr)
        self.groups.clear()


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def upload_objects(fleet: Fleet, keys: list[str], body: bytes = CLIP) -> None:
    cos = support.cos_client(fleet.nginx, "domain")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda k: cos.put_object(Bucket=support.BUCKET, Key=k, Body=body), keys))


def snapshot_paths(fleet: Fleet, keys: list[str], times: list[float], width: int) -> list[str]:
    """Pre-signed snapshot paths (relative to nginx) for every key and time,
    key-major then interleaved so consecutive paths are different objects."""
    cos = support.cos_client(fleet.nginx, "domain")
    out = []
    for t in times:
        for k in keys:
            url = cos.get_presigned_url(Bucket=support.BUCKET, Key=k, Method="GET", Expired=3600,
                                        Params={"ci-process": "snapshot", "time": f"{t:g}",
                                                "width": str(width)})
            out.append(url[len(fleet.nginx.url):])
    return out


def decodes(fleet: Fleet) -> dict[str, tuple[int, int]]:
    """Per node: (decodes, decodes that opened the container) from its log."""
    out = {}
    for gw in fleet.gateways:
        found = SNAPSHOT_LOG.findall(gw.stderr_log.read_text(errors="replace"))
        out[gw.name] = (len(found), sum(1 for r in found if r == "true"))
    return out


def start_fleet(root: Path, s3: support.S3Server, pg: PostgresServer, nodes: int,
                balance: str = "consistent", media: str = "", callback: str = "") -> Fleet:
    pg.reset()
    return Fleet(root / f"{balance}-{nodes}-{uuid.uuid4().hex[:6]}", s3.endpoint, pg.url,
                 nodes=nodes, balance=balance, media=media, callback_url=callback).start()


# --------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------

def throughput(root, s3, pg, shares: CpuShares, duration: float) -> list[str]:
    """Snapshots/s through nginx with 1, 2, 3 gateways (consistent hashing),
    each held to its CPU share; picture cache off (every request decodes),
    opened containers kept (enough entries for every object)."""
    # Many small objects, so that the ring's share of each node is close to
    # 1/N (with ~100 objects it was 59/41 for two nodes).
    keys = [f"bench/tp-{i:03d}.mp4" for i in range(480)]
    times = [round(0.1 + 0.3 * i, 2) for i in range(12)]
    media = "[media]\nworkers = 1\nqueue = 64\ncache_bytes = 0\nopen_cache_entries = 512\n"
    rows, base = [], None
    uploaded = False
    for nodes in (1, 2, 3):
        fleet = start_fleet(root, s3, pg, nodes, media=media)
        try:
            if not uploaded:
                upload_objects(fleet, keys, SMALL_CLIP)
                uploaded = True
            shares.confine([gw.pid for gw in fleet.gateways])
            paths = snapshot_paths(fleet, keys, times, 160)
            # Warm: every object opened once on its node.
            session = requests.Session()
            for p in paths[:len(keys)]:
                session.get(fleet.nginx.url + p, timeout=60).raise_for_status()
            connections = 4 * nodes
            warm = decodes(fleet)
            with tempfile.TemporaryDirectory() as tmp:
                r = run_wrk(fleet.nginx.url, paths[len(keys):], connections, duration, Path(tmp))
            spread = {k: v[0] - warm[k][0] for k, v in decodes(fleet).items()}
            base = base or r["rps"]
            rows.append(f"| {nodes} | {connections} | {r['rps']:.1f} | {r['p50'] * 1e3:.1f} ms | "
                        f"{r['p99'] * 1e3:.1f} ms | {r['non2xx'] + r['errors']} | "
                        f"{' / '.join(str(v) for v in spread.values())} | "
                        f"{r['rps'] / base:.2f}× |")
            print(rows[-1], file=sys.stderr)
        finally:
            shares.release()
            fleet.stop()
    return ["| gateways | wrk connections | snapshots/s | median | p99 | errors | "
            "decodes per node | vs 1 gateway |", "|---:|---:|---:|---:|---:|---:|---|---|"] + rows


def cache_ratio(root, s3, pg) -> list[str]:
    """A repeated-thumbnail workload (each thumbnail asked 3 times, shuffled,
    one client) on 1 gateway, 3 behind consistent hashing, 3 behind round
    robin; default media settings (16 opened containers, 64 MiB of pictures
    per gateway)."""
    rows = []
    for objects in (12, 48):
        keys = [f"bench/cache-{objects}-{i:03d}.mp4" for i in range(objects)]
        uploaded = False
        rng = random.Random(objects)
        for nodes, balance in ((1, "consistent"), (3, "consistent"), (3, "round_robin")):
            fleet = start_fleet(root, s3, pg, nodes, balance=balance)
            try:
                if not uploaded:
                    upload_objects(fleet, keys)
                    uploaded = True
                paths = snapshot_paths(fleet, keys, [1.0, 3.0, 5.5, 8.0], 160) * 3
                rng.shuffle(paths)
                session = requests.Session()
                hits = 0
                for p in paths:
                    r = session.get(fleet.nginx.url + p, timeout=60)
                    r.raise_for_status()
                    hits += r.headers.get("x-framegate-cache") == "hit"
                per_node = decodes(fleet)
                decoded = sum(d for d, _ in per_node.values())
                opened = sum(o for _, o in per_node.values())
                reused = decoded - opened
                rows.append(
                    f"| {objects} objects × 4 times × 3 | {nodes} | {balance.replace('_', ' ')} | "
                    f"{len(paths)} | {hits / len(paths):.1%} | {decoded} | "
                    f"{reused / decoded:.1%} | {opened} | {1 - opened / len(paths):.1%} |")
                print(rows[-1], file=sys.stderr)
            finally:
                fleet.stop()
    return ["| workload | gateways | balancing | requests | picture-cache hits | decodes | "
            "opened container reused (of decodes) | containers opened | requests without an "
            "open |", "|---|---:|---|---:|---:|---:|---:|---:|---:|"] + rows


def jobs_burst(root, s3, pg, shares: CpuShares, tasks: int = 200) -> list[str]:
    """`tasks` one-picture VOD tasks submitted at once, until every callback
    arrived: 1 node vs 3 (one job worker each, each node held to its share)."""
    key = "bench/jobs.mp4"
    rows, base = [], None
    one = {"SnapshotByTimeOffsetTaskSet": [{"Definition": 10, "ExtTimeOffsetSet": ["1s"]}]}
    for nodes in (1, 3):
        receiver = Receiver()
        fleet = start_fleet(root, s3, pg, nodes, callback=receiver.url)
        try:
            shares.confine([gw.pid for gw in fleet.gateways])
            support.cos_client(fleet.nginx, "domain").put_object(
                Bucket=support.BUCKET, Key=key, Body=CLIP)
            client = vod(fleet.nginx)
            started = time.monotonic()
            ids = [process(client, f"/{key}", one) for _ in range(tasks)]
            submitted = time.monotonic() - started
            receiver.wait_for_tasks(ids, timeout=600)
            elapsed = time.monotonic() - started
            base = base or elapsed
            rows.append(f"| {nodes} | {tasks} | {submitted:.1f} s | {elapsed:.1f} s | "
                        f"{tasks / elapsed:.1f} | {base / elapsed:.2f}× |")
            print(rows[-1], file=sys.stderr)
        finally:
            shares.release()
            fleet.stop()
            receiver.close()
    return ["| nodes | tasks | submitted in | all callbacks in | tasks/s | vs 1 node |",
            "|---:|---:|---:|---:|---:|---|"] + rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", help="the gateway binary (default: FRAMEGATE_BIN or "
                                      "target/debug/framegate)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of wrk per row")
    parser.add_argument("--share", type=float, default=0.4, help="CPU per gateway (cgroups)")
    parser.add_argument("--only", default="throughput,cache,jobs")
    args = parser.parse_args()
    if args.bin:
        os.environ["FRAMEGATE_BIN"] = str(Path(args.bin).resolve())
    sections = set(args.only.split(","))
    binary = support.gateway_binary()
    print(f"binary {binary}", file=sys.stderr)
    root = Path(tempfile.mkdtemp(prefix="framegate-fleet-bench-"))
    shares = CpuShares(args.share)
    shares.prioritise_self()
    s3 = support.S3Server(root).start()
    s3.client().create_bucket(Bucket=FLEET_BACKING_BUCKET)
    pg = PostgresServer().start()
    out = [f"Built: {'release' if 'release' in str(binary) else 'debug'} ({binary}); "
           f"{os.cpu_count()} cores; CPU method: {shares.method}; "
           f"load average at start {os.getloadavg()[0]:.1f}."]
    try:
        if "throughput" in sections:
            out += ["", "Snapshot throughput (keyframe, width 160, picture cache off):", ""]
            out += throughput(root, s3, pg, shares, args.duration)
        if "cache" in sections:
            out += ["", "Repeated thumbnails (picture cache and opened containers):", ""]
            out += cache_ratio(root, s3, pg)
        if "jobs" in sections:
            out += ["", "Job burst:", ""]
            out += jobs_burst(root, s3, pg, shares)
    finally:
        shares.release()
        pg.stop()
        s3.stop()
        shares.release_self()
    out.append("")
    out.append(f"Load average at the end {os.getloadavg()[0]:.1f}.")
    print("\n".join(out))


if __name__ == "__main__":
    main()
