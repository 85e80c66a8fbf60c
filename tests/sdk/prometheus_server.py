"""A real Prometheus server (Debian's `prometheus` package, installed by
scripts/setup.sh) on an ephemeral loopback port, scraping given targets
every second into a temporary storage directory; queried through its HTTP
API (`/api/v1/query`)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import requests

import support

SCRAPE_INTERVAL = "1s"


def prometheus_binary() -> str:
    found = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
    if not found:
        raise RuntimeError("prometheus not found: run scripts/setup.sh (Debian package "
                           "`prometheus`)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrometheusServer:
    """`prometheus` scraping `targets` (host:port of /metrics endpoints) as
    job `framegate`."""

    def __init__(self, targets: list[str], workdir: Path):
        self.targets = targets
        self.workdir = Path(tempfile.mkdtemp(prefix="prometheus-", dir=workdir))
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.log = self.workdir / "prometheus.log"

    def start(self, timeout: float = 30.0) -> "PrometheusServer":
        config = self.workdir / "prometheus.yml"
        listed = ", ".join(f"'{t}'" for t in self.targets)
        config.write_text(
            "global:\n"
            f"  scrape_interval: {SCRAPE_INTERVAL}\n"
            f"  scrape_timeout: {SCRAPE_INTERVAL}\n"
            f"  evaluation_interval: {SCRAPE_INTERVAL}\n"
            "scrape_configs:\n"
            "  - job_name: framegate\n"
            f"    static_configs:\n      - targets: [{listed}]\n"
        )
        for _ in range(5):
            port = free_port()
            err = open(self.log, "ab")
            self.proc = subprocess.Popen(
                [prometheus_binary(), f"--config.file={config}",
                 f"--storage.tsdb.path={self.workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{port}",
                 "--log.level=warn"],
                stdout=err, stderr=err, stdin=subprocess.DEVNULL, cwd=self.workdir,
            )
            err.close()
            self.url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                        return self
                except requests.RequestException:
                    pass
                time.sleep(0.1)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
                break
            # Lost the port to someone else: try another.
        raise RuntimeError(f"prometheus did not start:\n{self.log.read_text()[-3000:]}")

    def query(self, expr: str) -> list[dict]:
        """The instant vector `expr` evaluates to now."""
        response = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        assert body.get("status") == "success", f"{expr}: {body}"
        return body["data"]["result"]

    def value(self, expr: str) -> float | None:
        """The single value of `expr`, or None when it has no series."""
        result = self.query(expr)
        if not result:
            return None
        assert len(result) == 1, f"{expr} has {len(result)} series: {result}"
        return float(result[0]["value"][1])

    def wait_for(self, expr: str, check, timeout: float = 20.0) -> float:
        """Polls until `check(value)` holds for `expr`'s single value; returns it."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            last = self.value(expr)
            if last is not None and check(last):
                return last
            if time.monotonic() > deadline:
                raise AssertionError(f"{expr} = {last} after {timeout}s")
            time.sleep(0.25)

    def stop(self) -> None:
        support.stop_process(self.proc)
        self.proc = None
        shutil.rmtree(self.workdir, ignore_errors=True)
