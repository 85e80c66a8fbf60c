"""nginx (Debian's `nginx` package) as the load balancer in front of several
gateways, for the multi-node tests and benches/fleet.py.

The configuration is written into a temp dir and nginx runs in the
foreground as the current user (`-p DIR -c DIR/nginx.conf -g 'daemon off;
...'`), with its pid file, logs and temp paths in that dir, listening on a
loopback port. It is the one docs/deploy.md shows, with the upstream
addresses filled in:

- `hash $host$uri consistent`: bucket (the Host, or the path's first
  segment) + key pick the node, the query (ci-process, time, width) does
  not, so every snapshot of one object lands on the node that holds its
  opened container and pictures; `balance="round_robin"` drops the hash (for
  the benchmark's comparison).
- `proxy_next_upstream error timeout http_502 http_503` with `max_fails` /
  `fail_timeout`: a dead node's requests go to the next node on the ring.
- `Host $http_host` kept: COS and S3 signatures cover the Host header.
- no buffering of bodies either way, no size limit, HTTP/1.1 keep-alive to
  the gateways.

Every response carries `X-Framegate-Upstream` (the node that answered), so
tests can see where a request went.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def find_nginx() -> str:
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError("nginx not found: run scripts/setup.sh (Debian package `nginx`)")


def free_port() -> int:
    """A loopback port that was free a moment ago (for processes that must
    keep their port across restarts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render_conf(port: int, upstreams: list[str], root: Path, balance: str = "consistent",
                max_fails: int = 1, fail_timeout_secs: int = 2) -> str:
    """nginx.conf for `upstreams` ("127.0.0.1:PORT"), listening on `port`."""
    if balance == "consistent":
        method = "hash $host$uri consistent;"
    elif balance == "round_robin":
        method = "# round robin (nginx's default)"
    else:
        raise ValueError(balance)
    servers = "\n".join(
        f"        server {u} max_fails={max_fails} fail_timeout={fail_timeout_secs}s;"
        for u in upstreams)
    temp = root / "temp"
    return f"""\
worker_processes 1;
events {{ worker_connections 1024; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {temp}/client;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;

    upstream framegate {{
        {method}
{servers}
        keepalive 32;
    }}

    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        large_client_header_buffers 4 64k;
        location / {{
            proxy_pass http://framegate;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout 2s;
            proxy_read_timeout 120s;
            proxy_send_timeout 120s;
            add_header X-Framegate-Upstream $upstream_addr always;
        }}
    }}
}}
"""


class Nginx:
    """nginx in the foreground on a loopback port, in front of `upstreams`.

    Offers `url` and `port` like support.Gateway, so the test clients
    (cos_client, boto3_client, vod, ci_support.client) work through it."""

    name = "nginx"

    def __init__(self, upstreams: list[str], parent: str | Path | None = None,
                 balance: str = "consistent", port: int = 0):
        self.upstreams = list(upstreams)
        self.balance = balance
        self.dir = Path(tempfile.mkdtemp(prefix="framegate-nginx-", dir=parent))
        (self.dir / "temp").mkdir()
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.conf = self.dir / "nginx.conf"
        self.error_log = self.dir / "error.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> "Nginx":
        self.conf.write_text(render_conf(self.port, self.upstreams, self.dir, self.balance))
        directives = (f"daemon off; master_process on; pid {self.dir}/nginx.pid; "
                      f"error_log {self.error_log} warn;")
        if os.geteuid() == 0:
            # As root, workers would switch to nobody, who cannot write the
            # temp dir: keep them as root (loopback only, a test server).
            directives += " user root;"
        self.proc = subprocess.Popen(
            [find_nginx(), "-p", str(self.dir), "-c", str(self.conf), "-g", directives],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "stderr.log", "ab"))
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"nginx did not listen on {self.port}:\n{self.log_tail()}")
                time.sleep(0.05)

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for name in ("stderr.log", "error.log"):
            path = self.dir / name
            if path.exists():
                out += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(out)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
