"""A threaded load generator with per-request accounting.

Each thread keeps one keep-alive connection per node, sends to the nodes in turn with
the tokens of many users in rotation, and records every request: start and end time,
node, method, status, error code, the upstream instance that answered, whether the
error body had the error-body shape, and the connection it used (so that a scenario can tell a
request in flight on a killed worker from one sent on a fresh connection). Nothing is
retried: every failure is counted.
"""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
from dataclasses import dataclass

ERROR_KEYS = {"code", "message", "details", "request_id"}


@dataclass
class Rec:
    t0: float
    t1: float
    node: int
    method: str
    status: int  # 0: no response (socket error)
    code: str = ""  # error code of the body, or the exception's class name
    instance: str = ""  # upstream that answered a 200
    body_ok: bool = True  # an error body has the error-body shape
    conn: int = 0  # id of the client connection used
    conn_t0: float = 0.0  # when that connection was opened
    user: int = 0  # index of the token used

    @property
    def latency(self) -> float:
        return self.t1 - self.t0


def parse(status: int, data: bytes) -> tuple[str, str, bool]:
    """(error code, instance, error body ok) of an answer."""
    try:
        doc = json.loads(data)
    except ValueError:
        return ("not_json" if status >= 400 else ""), "", status < 400
    if status < 400:
        return "", str(doc.get("instance", "")), True
    err = doc.get("error") if isinstance(doc, dict) else None
    ok = isinstance(err, dict) and set(err) == ERROR_KEYS
    return (str(err.get("code")) if ok else "bad_body"), "", ok


_conn_ids = itertools.count(1)


class Client:
    """One keep-alive connection to one node; reopened after any failure."""

    def __init__(self, port: int, timeout: float):
        self.port, self.timeout = port, timeout
        self.conn: http.client.HTTPConnection | None = None
        self.id, self.t0 = 0, 0.0

    def request(self, method: str, path: str, headers: dict, body: bytes | None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=self.timeout
            )
            self.id, self.t0 = next(_conn_ids), time.monotonic()
        try:
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
            if resp.will_close:
                self.close()
            return resp.status, data, dict(resp.getheaders())
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def call(port: int, method: str, path: str, *, token: str | None = None,
         body=None, timeout: float = 10.0, headers: dict | None = None):  # fmt: skip
    """One request on a fresh connection: (status, parsed JSON or None, headers,
    seconds). A socket error is status 0."""
    hdrs = dict(headers or {})
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    raw = None
    if body is not None:
        raw = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    client = Client(port, timeout)
    t0 = time.monotonic()
    try:
        status, data, resp_headers = client.request(method, path, hdrs, raw)
    except Exception as exc:  # noqa: BLE001 - the caller judges it
        return 0, {"exception": type(exc).__name__}, {}, time.monotonic() - t0
    finally:
        client.close()
    try:
        doc = json.loads(data) if data else None
    except ValueError:
        doc = {"raw": data[:200].decode(errors="replace")}
    return status, doc, resp_headers, time.monotonic() - t0


class Load:
    """``threads`` threads, each sending ``rate`` requests/s (paced) to ``ports`` in
    turn, ``GET /api/{service}/items`` and every ``post_every``-th a POST."""

    def __init__(self, ports, tokens, *, service="echo", threads=6, rate=20.0,
                 post_every=0, timeout=10.0):  # fmt: skip
        self.ports, self.tokens = list(ports), list(tokens)
        self.service, self.threads, self.rate = service, threads, rate
        self.post_every, self.timeout = post_every, timeout
        self.records: list[Rec] = []
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> Load:
        for n in range(self.threads):
            t = threading.Thread(target=self._run, args=(n,), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._workers:
            t.join(self.timeout + 5)

    def _run(self, n: int) -> None:
        clients = [Client(p, self.timeout) for p in self.ports]
        interval = 1.0 / self.rate
        next_at = time.monotonic() + n * interval / self.threads
        for i in itertools.count():
            if self._stop.is_set():
                break
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_at = max(next_at + interval, time.monotonic() - interval)
            node = (n + i) % len(clients)
            user = (n * 7919 + i) % len(self.tokens)
            post = self.post_every and i % self.post_every == 0
            method = "POST" if post else "GET"
            headers = {"Authorization": f"Bearer {self.tokens[user]}"}
            body = None
            if post:
                body = b'{"n": %d}' % i
                headers["Content-Type"] = "application/json"
            client = clients[node]
            t0 = time.monotonic()
            try:
                status, data, _ = client.request(
                    method, f"/api/{self.service}/items?i={i}", headers, body
                )
                code, instance, body_ok = parse(status, data)
                conn, conn_t0 = client.id, client.t0
            except Exception as exc:  # noqa: BLE001 - counted, never retried
                status, code, instance, body_ok = 0, type(exc).__name__, "", False
                conn, conn_t0 = client.id, client.t0
            rec = Rec(t0, time.monotonic(), node, method, status, code, instance,
                      body_ok, conn, conn_t0, user)  # fmt: skip
            with self._lock:
                self.records.append(rec)
        for c in clients:
            c.close()

    def between(self, t0: float, t1: float) -> list[Rec]:
        """Requests that started in [t0, t1)."""
        with self._lock:
            return [r for r in self.records if t0 <= r.t0 < t1]


def summarize(recs: list[Rec]) -> dict:
    """Counts by status (0 = socket error) and latency percentiles in ms."""
    by_status: dict[str, int] = {}
    for r in recs:
        key = str(r.status) if r.status else f"err:{r.code}"
        by_status[key] = by_status.get(key, 0) + 1
    lat = sorted(r.latency for r in recs)
    return {
        "n": len(recs),
        "statuses": dict(sorted(by_status.items())),
        "p50_ms": round(pct(lat, 50) * 1000, 1),
        "p99_ms": round(pct(lat, 99) * 1000, 1),
        "max_ms": round((lat[-1] if lat else 0) * 1000, 1),
    }


def pct(sorted_values, p: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, int(len(sorted_values) * p / 100))
    return sorted_values[index]
