"""A multi-node deployment on loopback, as docs/deploy.md describes it:
N gateways with one configuration (the same credential, BUCKET on the
S3-compatible server, `jobs.store` on PostgreSQL, output URLs on the load
balancer), each with its own data dir (so its own node id), behind nginx
with consistent hashing on bucket + key. Used by test_fleet.py and
benches/fleet.py.

Gateways listen on ports chosen up front, so a node that is killed comes back
on the same address, where nginx still expects it."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from callback_receiver import CallbackServer
import support
from jobs_support import jobs_toml
from nginx_server import Nginx, free_port

# The S3 bucket (in the S3 server) that backs BUCKET for every node of the
# fleet: its own, so listings of outputs see the fleet's objects only.
FLEET_BACKING_BUCKET = "framegate-fleet"

STARTED_RE = re.compile(r"task started task=(\S+) key=\S+ attempt=(\d+)")
FINISHED_RE = re.compile(r"task finished task=(\S+)")


def events_toml(url: str) -> str:
    """Callbacks to `url`, retried quickly."""
    if not url:
        return ""
    return "\n".join(["[events]", f"callback_url = {support.toml_str(url)}",
                      "callback_backoff_initial_ms = 100", "callback_backoff_max_secs = 1",
                      "callback_timeout_secs = 2", "pull_visibility_secs = 2"]) + "\n"


class Fleet:
    """`nodes` gateways + nginx. `s3_endpoint`: the S3 server's URL (the
    backing bucket must exist); `store`: the PostgreSQL URL of the queue."""

    def __init__(self, root: Path, s3_endpoint: str, store: str, nodes: int = 3,
                 callback_url: str = "", workers: int = 1, extra: str = "",
                 balance: str = "consistent", media: str = ""):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        ports = [free_port() for _ in range(nodes)]
        self.nginx = Nginx([f"127.0.0.1:{p}" for p in ports], parent=root, balance=balance)
        self.gateways: list[support.Gateway] = []
        for i, port in enumerate(ports):
            name = f"node{i + 1}"
            workdir = root / name
            data = workdir / "data"
            data.mkdir(parents=True, exist_ok=True)
            toml = (jobs_toml(store, workers=workers, decode_threads=1,
                              url_base=self.nginx.url)
                    + events_toml(callback_url) + media + extra)
            config = support.write_config(workdir / "framegate.toml", data,
                                          f"s3://{FLEET_BACKING_BUCKET}", s3_endpoint,
                                          acl="private", extra=toml)
            text = config.read_text().replace('listen = "127.0.0.1:0"',
                                              f'listen = "127.0.0.1:{port}"', 1)
            config.write_text(text)
            self.gateways.append(support.Gateway(config, workdir, name))

    def start(self) -> "Fleet":
        """Every gateway, then nginx; on a failure, stops what started."""
        try:
            for gw in self.gateways:
                gw.start()
            self.nginx.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> list[tuple[str, int]]:
        self.nginx.stop()
        return [(gw.name, gw.stop()) for gw in self.gateways]

    def kill(self, gw: support.Gateway) -> None:
        """SIGKILL: no chance to hand anything back."""
        gw.proc.kill()
        gw.proc.wait()

    def node_of(self, upstream: str) -> support.Gateway:
        """The gateway behind an `X-Framegate-Upstream` value (the last one
        nginx tried)."""
        last = upstream.split(",")[-1].strip()
        port = int(last.rsplit(":", 1)[1])
        [gw] = [g for g in self.gateways if g.port == port]
        return gw

    def node_ids(self) -> dict[str, str]:
        """node name -> the id in its data dir."""
        return {gw.name: (gw.workdir / "data" / "node-id").read_text().strip()
                for gw in self.gateways}

    def task_log(self) -> dict[str, dict[str, list]]:
        """Per node: the (task, attempt) starts and the finished tasks its log
        shows (over all its starts)."""
        out = {}
        for gw in self.gateways:
            text = gw.stderr_log.read_text(errors="replace") if gw.stderr_log.exists() else ""
            out[gw.name] = {
                "started": [(m.group(1), int(m.group(2))) for m in STARTED_RE.finditer(text)],
                "finished": [m.group(1) for m in FINISHED_RE.finditer(text)],
            }
        return out


class Receiver(CallbackServer):
    """Task events by task: every delivery kept (deliveries are at least
    once; `X-Framegate-Event-Id` tells repeats apart)."""

    def events(self) -> list[tuple[str, dict]]:
        """(event id, ProcedureStateChangeEvent) of every delivery."""
        with self.lock:
            bodies = [(d["id"], json.loads(d["body"])) for d in self.deliveries]
        return [(i, e.get("ProcedureStateChangeEvent") or {}) for i, e in bodies]

    def by_task(self, tasks) -> dict[str, dict[str, dict]]:
        """task -> event id -> event body, for the tasks in `tasks`."""
        wanted = set(tasks)
        out: dict[str, dict[str, dict]] = {}
        for event_id, body in self.events():
            if body.get("TaskId") in wanted:
                out.setdefault(body["TaskId"], {})[event_id] = body
        return out

    def deliveries_of(self, tasks) -> int:
        wanted = set(tasks)
        return sum(1 for _, body in self.events() if body.get("TaskId") in wanted)

    def wait_for_tasks(self, tasks, timeout: float) -> dict[str, dict[str, dict]]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.by_task(tasks)
            if len(got) == len(set(tasks)):
                return got
            assert time.monotonic() < deadline, \
                f"events of {len(got)} of {len(set(tasks))} tasks arrived in {timeout}s"
            time.sleep(0.2)
