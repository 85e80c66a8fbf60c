"""moto's S3 server on an ephemeral loopback port, for the s3:// backend tests.

Prints `s3 listening on http://127.0.0.1:PORT` on stdout once it accepts
connections, and exits on SIGTERM or SIGINT. Started by conftest.py; can also
be run by hand: `.venv/bin/python tests/sdk/s3_server.py`.
"""

import signal
import threading

from moto.moto_server.threaded_moto_server import ThreadedMotoServer


def main() -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"s3 listening on http://{host}:{port}", flush=True)
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
