"""A small threaded HTTP/1.1 upstream instance (keep-alive) for the fault harness.

    python bench/faultlib/upstream.py PORT NAME

Every answer is JSON naming the instance, so the load generator knows who served a
call, with the identity headers the gateway sent. ``GET /healthz`` is its health path.
Run as its own process so that a scenario can SIGKILL it.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faults-upstream"

    def _answer(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:  # an HTTP/1.1 server must read a chunked body
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                self.rfile.read(size + 2)
                if size == 0:
                    break
        else:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
        body = json.dumps(
            {
                "instance": self.server.instance_name,
                "method": self.command,
                "path": self.path,
                "user": self.headers.get("X-User-Id"),
                "role": self.headers.get("X-User-Role"),
                "te": self.headers.get("Transfer-Encoding"),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer  # noqa: N815

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512
    allow_reuse_address = True


def main() -> None:
    port, name = int(sys.argv[1]), sys.argv[2]
    server = Server(("127.0.0.1", port), Handler)
    server.instance_name = name
    server.serve_forever()


if __name__ == "__main__":
    main()
