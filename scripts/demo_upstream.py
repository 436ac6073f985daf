#!/usr/bin/env python3
"""The demo back end that the seeded ``demo`` service points at (standard library only).

``scripts/run`` starts it on 127.0.0.1 (port ``XENX_DEMO_PORT``, default 9000) and stops
it on exit. Every GET, HEAD, POST, PUT, PATCH or DELETE answers 200 with a JSON echo of
what reached it: method, path, query, body size and the identity headers the gateway
adds, so a first ``curl … /api/demo/hello`` shows what the gateway forwards.
``/health`` (the service's ``health_check_path``) answers ``{"status": "ok"}``.

    python3 scripts/demo_upstream.py [--host 127.0.0.1] [--port 9000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ECHOED_HEADERS = (
    "X-Request-ID",
    "X-User-Id",
    "X-User-Email",
    "X-User-Role",
    "X-Organization-Id",
    "X-Forwarded-For",
)
MAX_BODY = 1024 * 1024


class DemoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the gateway's pool expects
    server_version = "xenx-demo-upstream"

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, {"error": "body over 1 MiB"}, close=True)
            return
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        if parts.path == "/health":
            self._send(200, {"status": "ok"})
            return
        self._send(
            200,
            {
                "service": "demo",
                "method": self.command,
                "path": parts.path,
                "query": parse_qs(parts.query),
                "body_bytes": len(body),
                "headers": {
                    name: self.headers[name]
                    for name in ECHOED_HEADERS
                    if name in self.headers
                },
            },
        )

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def _send(self, status, payload, close=False):
        data = (json.dumps(payload, indent=2) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass  # the gateway logs the calls; the demo stays quiet


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("XENX_DEMO_PORT") or 9000)
    )
    args = parser.parse_args(argv)
    try:
        server = ThreadingHTTPServer((args.host, args.port), DemoHandler)
    except OSError as exc:
        print(
            f"demo upstream: cannot listen on {args.host}:{args.port} ({exc.strerror}).",
            file=sys.stderr,
        )
        return 1
    server.daemon_threads = True
    print(f"demo upstream: http://{args.host}:{args.port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
