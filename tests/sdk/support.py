"""Helpers for the SDK suite: processes (the gateway, the S3 server), configs,
checksums and streaming bodies. Fixtures live in conftest.py."""

from __future__ import annotations

import hashlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

REGION = "ap-guangzhou"
DOMAIN = "myqcloud.com"
BUCKET = "test-1250000000"
SECRET_ID = "AKIDframegatetest"
SECRET_KEY = "framegatetestsecret"
# The bucket inside the S3 server that backs BUCKET for the s3 backend.
S3_BACKING_BUCKET = "framegate-backing"
S3_ACCESS_KEY = "testing"
S3_SECRET_KEY = "testing"
S3_REGION = "us-east-1"

MiB = 1024 * 1024
GiB = 1024 * MiB

LISTEN_RE = re.compile(r"framegate listening on (http://(\S+):(\d+))")


def gateway_binary() -> Path:
    env = os.environ.get("FRAMEGATE_BIN")
    if env:
        return Path(env)
    target = os.environ.get("CARGO_TARGET_DIR")
    base = Path(target) if target else REPO / "target"
    if not base.is_absolute():
        base = REPO / base
    return base / "debug" / "framegate"


# --------------------------------------------------------------------------
# Checksums
# --------------------------------------------------------------------------

# CRC-64/XZ (ECMA-182 polynomial, reflected; init and xorout all ones): the
# checksum COS reports in x-cos-hash-crc64ecma, as an unsigned decimal.
_CRC64_POLY_REFLECTED = 0xC96C5795D7870F42
_MASK64 = 0xFFFFFFFFFFFFFFFF


def _crc64_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC64_POLY_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC64_TABLE = _crc64_table()


def crc64_ecma_pure(data: bytes, crc: int = 0) -> int:
    """CRC-64/XZ of data, continuing from a previous result crc (0 to start)."""
    table = _CRC64_TABLE
    reg = crc ^ _MASK64
    for b in data:
        reg = table[(reg ^ b) & 0xFF] ^ (reg >> 8)
    return reg ^ _MASK64


def _fast_crc64():
    """crcmod's C implementation (installed with cos-python-sdk-v5), checked
    against the pure one; None if unavailable."""
    try:
        import crcmod  # type: ignore
        import crcmod._crcfunext  # noqa: F401  (only the C extension is fast)
    except Exception:
        return None
    # crcmod's initCrc is the register's initial value xor xorOut (= the
    # CRC of the empty string): all ones xor all ones = 0.
    fn = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, rev=True, xorOut=_MASK64)
    probe = bytes(range(256)) * 3 + b"123456789"
    if fn(probe) != crc64_ecma_pure(probe) or fn(b"123456789") != 0x995DC9BBDF1939FA:
        return None
    return fn


_FAST_CRC64 = _fast_crc64()


def have_fast_crc64() -> bool:
    return _FAST_CRC64 is not None


# Lines for the end-of-run summary (figures such as peak RSS), printed by
# conftest's pytest_terminal_summary even under -q.
REPORT_LINES: list[str] = []


def crc64_ecma(data: bytes, crc: int = 0) -> int:
    if _FAST_CRC64 is not None and len(data) > 4096:
        return _FAST_CRC64(data, crc)
    return crc64_ecma_pure(data, crc)


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def quoted_md5(data: bytes) -> str:
    return f'"{md5_hex(data)}"'


def multipart_etag(parts: list[bytes]) -> str:
    """S3/COS multipart ETag: MD5 of the concatenated binary part MD5s, '-N'."""
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


def content_md5_b64(data: bytes) -> str:
    import base64

    return base64.b64encode(hashlib.md5(data).digest()).decode()


# --------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------

def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic, incompressible-looking bytes of the given size."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest() * 32
        counter += 1
    return bytes(out[:size])


class StreamingBody:
    """A file-like body of `size` bytes produced on the fly (never held whole):
    chunk i is a fixed random block with its index stamped in front, so every
    chunk differs. requests sends it with Content-Length (it has __len__)."""

    CHUNK = 1 * MiB

    def __init__(self, size: int, seed: int = 1):
        self.size = size
        self.sent = 0
        self.md5 = hashlib.md5()
        self._block = payload(self.CHUNK, seed)
        self._index = 0
        self._buf = memoryview(b"")

    def __len__(self) -> int:
        return self.size

    def _next_chunk(self) -> bytes:
        n = min(self.CHUNK, self.size - self.sent - len(self._buf))
        chunk = self._index.to_bytes(8, "big") + self._block[8:]
        self._index += 1
        return chunk[:n]

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size
        out = []
        want = n
        while want > 0 and self.sent < self.size:
            if not self._buf:
                self._buf = memoryview(self._next_chunk())
            take = bytes(self._buf[:want])
            self._buf = self._buf[len(take):]
            self.md5.update(take)
            self.sent += len(take)
            want -= len(take)
            out.append(take)
        return b"".join(out)

    def __iter__(self):
        while True:
            data = self.read(self.CHUNK)
            if not data:
                return
            yield data


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------

class _LineReader:
    """Drains a process's stdout in a thread (so the pipe never fills) and
    lets a caller wait for a line that matches a pattern."""

    def __init__(self, stream, sink: Path):
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._sink = sink
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream):
        with open(self._sink, "a", encoding="utf-8", errors="replace") as sink:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace")
                sink.write(line)
                sink.flush()
                self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, pattern: re.Pattern, timeout: float):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return None
            m = pattern.search(line)
            if m:
                return m


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Gateway:
    """One framegate process started from a TOML config."""

    def __init__(self, config: Path, workdir: Path, name: str, extra_env: dict | None = None,
                 preexec_fn=None):
        self.config = config
        self.workdir = workdir
        self.name = name
        self.extra_env = extra_env or {}
        # Runs in the child before exec (e.g. to lower its open-file limit).
        self.preexec_fn = preexec_fn
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.port = 0
        self.starts = 0
        self.stdout_log = workdir / f"{name}.stdout.log"
        self.stderr_log = workdir / f"{name}.stderr.log"

    def start(self, timeout: float = 60.0) -> "Gateway":
        binary = gateway_binary()
        if not binary.exists():
            raise RuntimeError(
                f"gateway binary {binary} not found: run `cargo build` or set FRAMEGATE_BIN"
            )
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEGATE_")}
        env.setdefault("RUST_BACKTRACE", "1")
        env.update(self.extra_env)
        self.starts += 1
        with open(self.stderr_log, "a") as err:
            err.write(f"\n===== start #{self.starts}: {binary} serve --config {self.config}\n")
        err = open(self.stderr_log, "ab")
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--config", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=self.workdir,
            preexec_fn=self.preexec_fn,
        )
        err.close()
        reader = _LineReader(self.proc.stdout, self.stdout_log)
        m = reader.wait_for(LISTEN_RE, timeout)
        if m is None:
            code = self.proc.poll()
            if code is None:
                self.proc.kill()
                self.proc.wait()
            raise RuntimeError(
                f"gateway {self.name} did not print 'framegate listening on http://...' "
                f"within {timeout}s (exit code {self.proc.returncode});\n"
                f"stdout:\n{_tail(self.stdout_log)}\nstderr:\n{_tail(self.stderr_log)}"
            )
        self.url = m.group(1)
        self.port = int(m.group(3))
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def status_kib(self, field: str) -> int:
        """A memory figure (VmHWM, VmRSS, ...) from /proc/<pid>/status, in KiB."""
        text = Path(f"/proc/{self.pid}/status").read_text()
        m = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
        if not m:
            raise RuntimeError(f"{field} not in /proc/{self.pid}/status")
        return int(m.group(1))

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code (killed after timeout: -9)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                code = -9
                self.proc = None
                return code
        code = self.proc.returncode
        self.proc = None
        return code

    def stderr_tail(self, lines: int = 40) -> str:
        return _tail(self.stderr_log, lines)


class S3Server:
    """moto's S3 server in a child process on an ephemeral loopback port."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.endpoint = ""
        self.log = workdir / "s3-server.log"

    def start(self, timeout: float = 60.0) -> "S3Server":
        err = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "s3_server.py")],
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
        err.close()
        reader = _LineReader(self.proc.stdout, self.workdir / "s3-server.stdout.log")
        m = reader.wait_for(re.compile(r"s3 listening on (http://\S+)"), timeout)
        if m is None:
            if self.proc.poll() is None:
                self.proc.kill()
            raise RuntimeError(f"S3 server did not start:\n{_tail(self.log)}")
        self.endpoint = m.group(1)
        return self

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=S3_REGION,
            aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}),
        )

    def stop(self):
        stop_process(self.proc)
        self.proc = None


def stop_process(proc: subprocess.Popen | None, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds, for a child still running."""
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(path: Path, data_dir: Path, store: str, s3_endpoint: str | None = None,
                 acl: str = "public-read-write",
                 extra_buckets: list[tuple[str, str, str]] = (), extra: str = "") -> Path:
    """The gateway's TOML config: BUCKET on one backing store, plus optional
    (name, store, acl) buckets on local stores (file:// or memory://), plus
    `extra` TOML appended at the end (e.g. a [jobs] table)."""
    lines = [
        'listen = "127.0.0.1:0"',
        f"data_dir = {toml_str(str(data_dir))}",
        f"region = {toml_str(REGION)}",
        f"domain = {toml_str(DOMAIN)}",
        f"default_bucket = {toml_str(BUCKET)}",
        "",
        "[[buckets]]",
        f"name = {toml_str(BUCKET)}",
        f"store = {toml_str(store)}",
        f"acl = {toml_str(acl)}",
    ]
    if store.startswith("s3://"):
        assert s3_endpoint, "an s3:// store needs the S3 server's endpoint"
        lines += [
            "[buckets.options]",
            f"endpoint = {toml_str(s3_endpoint)}",
            f"region = {toml_str(S3_REGION)}",
            f"access_key_id = {toml_str(S3_ACCESS_KEY)}",
            f"secret_access_key = {toml_str(S3_SECRET_KEY)}",
            'allow_http = "true"',
        ]
    for name, extra_store, extra_acl in extra_buckets:
        lines += [
            "",
            "[[buckets]]",
            f"name = {toml_str(name)}",
            f"store = {toml_str(extra_store)}",
            f"acl = {toml_str(extra_acl)}",
        ]
    lines += [
        "",
        "[[credentials]]",
        f"secret_id = {toml_str(SECRET_ID)}",
        f"secret_key = {toml_str(SECRET_KEY)}",
        "",
        extra,
    ]
    path.write_text("\n".join(lines))
    return path


def store_url(backend: str) -> str:
    if backend == "file":
        return "file://"
    if backend == "memory":
        return "memory://"
    if backend == "s3":
        return f"s3://{S3_BACKING_BUCKET}"
    raise ValueError(backend)


# --------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------

class CosSigned:
    """A `requests` auth that signs any request with the test credential,
    using cos-python-sdk-v5's own signer over the request's decoded path and
    all of its query parameters: raw-HTTP tests run signed against private
    buckets, as a real client would."""

    def __init__(self, secret_id: str = None, secret_key: str = None):
        from qcloud_cos import CosConfig

        self.conf = CosConfig(Region=REGION, SecretId=secret_id or SECRET_ID,
                              SecretKey=secret_key or SECRET_KEY)

    def __call__(self, r):
        from urllib.parse import parse_qsl, unquote, urlsplit
        from qcloud_cos.cos_auth import CosS3Auth

        url = urlsplit(r.url)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        return CosS3Auth(self.conf, key=unquote(url.path), params=params)(r)


def cos_client(gw: Gateway, style: str):
    from qcloud_cos import CosConfig, CosS3Client

    if style == "domain":
        # Path /<key> on the default bucket, Host: 127.0.0.1:PORT.
        conf = CosConfig(
            Region=REGION, SecretId=SECRET_ID, SecretKey=SECRET_KEY,
            Domain=f"127.0.0.1:{gw.port}", Scheme="http", Timeout=120,
        )
    elif style == "vhost":
        # Connects to the IP, sends Host: <bucket>.cos.<region>.myqcloud.com.
        conf = CosConfig(
            Region=REGION, SecretId=SECRET_ID, SecretKey=SECRET_KEY,
            IP="127.0.0.1", Port=gw.port, Scheme="http", Timeout=120,
        )
    else:
        raise ValueError(style)
    # No SDK retries: a server error must show up, not be papered over.
    return CosS3Client(conf, retry=0)


def boto3_client(gw: Gateway, **config):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=gw.url,
        region_name="us-east-1",
        aws_access_key_id=SECRET_ID,
        aws_secret_access_key=SECRET_KEY,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 1},
            connect_timeout=10,
            read_timeout=120,
            **config,
        ),
    )


# --------------------------------------------------------------------------
# Response helpers
# --------------------------------------------------------------------------

def hget(headers, name: str, default=None):
    """A header from a plain dict (the COS SDK returns `dict(response.headers)`,
    which keeps the server's spelling) or any mapping, case-insensitively."""
    lname = name.lower()
    for k, v in headers.items():
        if k.lower() == lname:
            return v
    return default


def cos_body(response) -> bytes:
    """The whole body of a COS SDK get_object response."""
    return response["Body"].get_raw_stream().read()


def cos_error(excinfo):
    """(status, code) of a CosServiceError."""
    e = excinfo.value
    return e.get_status_code(), e.get_error_code()


def boto_error(excinfo):
    """(status, code) of a botocore ClientError."""
    r = excinfo.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]
