"""One callback receiver for every suite that receives events or job
callbacks: an HTTP server on loopback that keeps every accepted POST (path,
content type, `X-Framegate-Event-Id`, `X-Framegate-Signature`, body) and
answers 503 to the first `fail_first` deliveries (or to all while `down`),
then 200."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class CallbackServer:
    """Subclasses read `deliveries` (under `lock`) in their own terms."""

    def __init__(self, fail_first: int = 0):
        self.fail_first = fail_first
        self.down = False
        self.attempts = 0
        self.deliveries: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.attempts += 1
                    refuse = receiver.down or receiver.attempts <= receiver.fail_first
                    if not refuse:
                        receiver.deliveries.append({
                            "path": self.path,
                            "type": self.headers.get("Content-Type", ""),
                            "id": self.headers.get("X-Framegate-Event-Id"),
                            "signature": self.headers.get("X-Framegate-Signature"),
                            "body": body,
                        })
                self.send_response(503 if refuse else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.url = f"{self.base}/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
