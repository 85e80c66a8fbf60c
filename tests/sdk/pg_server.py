"""A throwaway PostgreSQL server on an ephemeral loopback port, for tests that
need a database.

`PostgresServer` runs initdb into a fresh temp dir, starts `postgres` there
listening on 127.0.0.1 only (unix socket in the temp dir too, trust auth,
fsync off), creates the database `framegate` and exposes its `url`:
postgres://postgres@127.0.0.1:PORT/framegate. On exit the server is stopped
immediately (SIGQUIT) and the temp dir removed.

PostgreSQL refuses to run as root: under root (as on CI) initdb and the server
run as the `postgres` system user of the Debian package, through `runuser`.
The binaries come from /usr/lib/postgresql/<highest version>/bin, installed by
scripts/setup.sh.

    with PostgresServer() as pg:
        pg.url                      # postgres://postgres@127.0.0.1:PORT/framegate
        pg.psql("SELECT 1")         # -> "1"
        pg.reset()                  # drop and recreate `framegate`

Can also be run by hand as a smoke check: `.venv/bin/python tests/sdk/pg_server.py`.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PG_LIB = Path("/usr/lib/postgresql")
TOOLS = ("initdb", "postgres", "pg_isready", "psql")
USER = "postgres"  # the superuser role (initdb -U) and, under root, the OS user
DATABASE = "framegate"
HOST = "127.0.0.1"


def find_bin_dir() -> Path:
    """The bin dir of the highest PostgreSQL version under /usr/lib/postgresql
    that has all of TOOLS."""
    found = []
    for bin_dir in PG_LIB.glob("*/bin"):
        version = bin_dir.parent.name
        if not re.fullmatch(r"\d+(\.\d+)*", version):
            continue
        if all(os.access(bin_dir / tool, os.X_OK) for tool in TOOLS):
            found.append((tuple(int(part) for part in version.split(".")), bin_dir))
    if not found:
        raise RuntimeError(
            f"PostgreSQL server binaries not found (no {PG_LIB}/*/bin with "
            f"{', '.join(TOOLS)}): run scripts/setup.sh, which installs the "
            "Debian package `postgresql`"
        )
    return max(found)[1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    # No PGHOST/PGDATABASE/... of the caller's; C messages (the log is parsed).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", TZ="UTC", PGCLIENTENCODING="UTF8")
    return env


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class PostgresServer:
    """initdb + postgres in a temp dir on an ephemeral loopback port, with the
    database `framegate` created. Use as a context manager, or start()/stop()."""

    def __init__(self, parent: str | Path | None = None, database: str = DATABASE):
        # parent: where the temp dir goes (default: the system temp dir). Under
        # root it must be reachable by the `postgres` user, which rules out
        # pytest's tmp_path (/tmp/pytest-of-root is 0700).
        self.parent = parent
        self.database = database
        self.host = HOST
        self.port = 0
        self.url = ""
        self.bin_dir: Path | None = None
        self.dir: Path | None = None  # data/, the unix socket, server.log
        self.log: Path | None = None
        self.proc: subprocess.Popen | None = None
        self._as_postgres: list[str] = []

    # -- lifecycle -------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> "PostgresServer":
        self.bin_dir = find_bin_dir()
        owner = None
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam(USER)
            except KeyError:
                raise RuntimeError(
                    f"running as root, so PostgreSQL must run as the `{USER}` user, "
                    "which does not exist: run scripts/setup.sh (the Debian package "
                    "`postgresql` creates it)"
                ) from None
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"
            self._as_postgres = [runuser, "-u", USER, "--"]
            owner = (pw.pw_uid, pw.pw_gid)
        self.dir = Path(tempfile.mkdtemp(prefix="framegate-pg-", dir=self.parent))
        try:
            if owner is not None:
                os.chown(self.dir, *owner)
            self.log = self.dir / "server.log"
            deadline = time.monotonic() + timeout
            self._initdb(deadline)
            self._start_server(deadline)
            self.psql(f'CREATE DATABASE "{self.database}"', database="postgres")
        except BaseException:
            self.stop()
            raise
        self.url = f"postgres://{USER}@{self.host}:{self.port}/{self.database}"
        return self

    def stop(self) -> None:
        """Immediate shutdown (SIGQUIT to the postmaster, no checkpoint), then
        remove the temp dir. Idempotent."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self._signal_postmaster(signal.SIGQUIT)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._signal_postmaster(signal.SIGKILL)
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> "PostgresServer":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- for tests -------------------------------------------------------------

    def psql(self, *sql: str, database: str | None = None, timeout: float = 60.0) -> str:
        """Run SQL statements with psql as `postgres` over TCP; each statement is
        sent on its own (so DROP/CREATE DATABASE work). Returns psql's unaligned,
        tuples-only output, stripped."""
        cmd = [
            str(self.bin_dir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-h", self.host, "-p", str(self.port), "-U", USER,
            "-d", database or self.database,
        ]
        for statement in sql:
            cmd += ["-c", statement]
        r = subprocess.run(cmd, cwd=self.dir, env=_env(), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"psql failed ({r.returncode}) on {sql!r}:\n{r.stderr.strip()}")
        return r.stdout.strip()

    def reset(self) -> None:
        """Drop and recreate the database (closing its open connections)."""
        self.psql(
            f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)',
            f'CREATE DATABASE "{self.database}"',
            database="postgres",
        )

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log, lines) if self.log else "(no log)"

    # -- internals -------------------------------------------------------------

    def _initdb(self, deadline: float) -> None:
        cmd = self._as_postgres + [
            str(self.bin_dir / "initdb"), "-D", str(self.dir / "data"),
            "-U", USER, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync",
        ]
        r = subprocess.run(cmd, cwd=self.dir, env=_env(), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=max(1.0, deadline - time.monotonic()))
        if r.returncode != 0:
            hint = ""
            if self._as_postgres:
                hint = (f"\n(running as `{USER}`: every directory above {self.dir} "
                        "must be searchable by that user)")
            raise RuntimeError(f"initdb failed ({r.returncode}):\n{r.stdout.strip()}{hint}")

    def _start_server(self, deadline: float) -> None:
        # The port is free when picked but may be taken before postgres binds
        # it (another test starting in parallel): then pick another.
        for _ in range(5):
            self.port = _free_port()
            offset = self.log.stat().st_size if self.log.exists() else 0
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(
                    self._as_postgres + [
                        str(self.bin_dir / "postgres"), "-D", str(self.dir / "data"),
                        "-p", str(self.port),
                        "-c", f"listen_addresses={self.host}",
                        "-c", f"unix_socket_directories={self.dir}",
                        "-c", "fsync=off",
                        "-c", "synchronous_commit=off",
                        "-c", "full_page_writes=off",
                    ],
                    cwd=self.dir, env=_env(), stdin=subprocess.DEVNULL,
                    stdout=log, stderr=log,
                    start_new_session=True,  # stopped by stop(), not by the terminal's ^C
                )
            if self._wait_ready(deadline):
                return
            if self.proc.poll() is None:  # timed out, still not accepting
                raise RuntimeError(
                    f"PostgreSQL did not accept connections on {self.host}:{self.port} "
                    f"in time:\n{self.log_tail()}"
                )
            with open(self.log, "rb") as log:
                log.seek(offset)
                started_log = log.read().decode(errors="replace")
            self.proc = None
            if "Address already in use" not in started_log:
                raise RuntimeError(f"PostgreSQL exited at start-up:\n{self.log_tail()}")
        raise RuntimeError(f"PostgreSQL found no free port:\n{self.log_tail()}")

    def _wait_ready(self, deadline: float) -> bool:
        """True once it accepts connections; False if it exited or time ran out."""
        cmd = [str(self.bin_dir / "pg_isready"), "-q", "-t", "1",
               "-h", self.host, "-p", str(self.port), "-U", USER, "-d", "postgres"]
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if subprocess.run(cmd, cwd=self.dir, env=_env(),
                              stdin=subprocess.DEVNULL).returncode == 0:
                return True
            time.sleep(0.05)
        return False

    def _signal_postmaster(self, sig: int) -> None:
        if not self._as_postgres:  # the child is the postmaster itself
            self.proc.send_signal(sig)
            return
        # The child is runuser, which does not pass SIGQUIT on (and answers
        # SIGTERM with SIGTERM, a "smart" shutdown that waits for clients, then
        # SIGKILL): signal the postmaster directly.
        pid = None
        try:
            pid = int((self.dir / "data" / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            try:  # not written yet: runuser's only child is the postmaster
                children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
                pid = int(children.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        try:
            if pid is not None:
                os.kill(pid, sig)
            else:
                self.proc.send_signal(signal.SIGTERM if sig == signal.SIGQUIT else sig)
        except ProcessLookupError:
            pass


def main() -> None:
    t0 = time.monotonic()
    with PostgresServer() as pg:
        started = time.monotonic() - t0
        print(f"postgres listening on {pg.url} (started in {started:.2f}s, "
              f"{pg.bin_dir}, as {'postgres via runuser' if pg._as_postgres else 'self'})",
              flush=True)
        print(pg.psql("SELECT version()"), flush=True)
        pg.psql("CREATE TABLE t (x int)", "INSERT INTO t VALUES (1)")
        t1 = time.monotonic()
        pg.reset()
        left = pg.psql("SELECT count(*) FROM pg_tables WHERE tablename = 't'")
        assert left == "0", f"reset left table t behind ({left})"
        print(f"reset ok in {time.monotonic() - t1:.2f}s", flush=True)
        t2 = time.monotonic()
    print(f"stopped in {time.monotonic() - t2:.2f}s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
