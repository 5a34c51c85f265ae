"""A webhook receiver for Alertmanager's notifications, stdlib only.

Run: python3 tests/fakes/alert_webhook.py --host 0.0.0.0 --port 8001

- POST /alerts: an Alertmanager webhook payload (JSON); kept in arrival order.
- GET /received: every payload received so far, as a JSON array.
- GET /health: {"ok": true}.
"""

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_received: list[Any] = []
_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        if self.path != "/alerts":
            self._answer(404, {"error": f"no such path {self.path}"})
            return
        length = int(self.headers.get("Content-Length", "0"))
        try:
            payload = json.loads(self.rfile.read(length))
        except json.JSONDecodeError as exc:
            self._answer(400, {"error": str(exc)})
            return
        with _lock:
            _received.append(payload)
        self._answer(200, {"ok": True})

    def do_GET(self) -> None:
        if self.path == "/received":
            with _lock:
                self._answer(200, list(_received))
        elif self.path == "/health":
            self._answer(200, {"ok": True})
        else:
            self._answer(404, {"error": f"no such path {self.path}"})

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # silence the access log
        return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
