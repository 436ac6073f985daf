"""``gateway.state.pipeline`` against a fake Redis on a real socket on 127.0.0.1: one
connection per thread (and per process after a fork), timeouts kept by the kernel on
plain TCP, a Redis that stops answering is a timeout (never sent again, the fail-fast
window starts), and the one transparent resend is kept for a connection Redis closed
while idle (tests/gateway/test_redis_reconnect.py), never for one that had the
commands (nor part of a reply); an error reply about one key fails that call only, one
about the server starts the fail-fast window."""

import functools
import os
import signal
import socket
import struct
import threading
import time

import pytest
import redis
from redis._parsers import _HiredisParser, _RESP2Parser

from core import cache as core_cache
from core.cache import CACHE_ERRORS
from gateway import state
from tests.support.redis import ANSWER, HANG, RESET, FakeRedis


@pytest.fixture
def fake_redis(test_servers):
    return functools.partial(test_servers, FakeRedis)


@pytest.fixture
def raw_to(settings):
    """raw_to(fake, timeout=1, parser=hiredis): the hot path's client pointed at the
    fake Redis."""
    settings.XENX_CACHE_FAIL_FAST_SECONDS = 30

    def point(fake, timeout=1.0, parser=_HiredisParser):
        pool = redis.ConnectionPool(
            host="127.0.0.1",
            port=fake.port,
            socket_timeout=timeout,
            socket_connect_timeout=1,
            lib_name=None,
            lib_version=None,
            parser_class=parser,
        )
        client = redis.Redis(connection_pool=pool)
        state.use_client(client)
        return client

    core_cache.reset()
    yield point
    state.forget()
    core_cache.reset()


TWO = (("INCR", "k"), ("EXPIRE", "k", 61, "NX"))
PARSERS = pytest.mark.parametrize(
    "parser", [_HiredisParser, _RESP2Parser], ids=["hiredis", "python"]
)


def timed_failure(commands=TWO):
    started = time.monotonic()
    with pytest.raises(CACHE_ERRORS) as caught:
        state.pipeline(commands)
    return caught.value, time.monotonic() - started


# --- one connection per thread -------------------------------------------------------


def test_each_thread_uses_its_own_connection(fake_redis, raw_to):
    fake = fake_redis()
    raw_to(fake)
    both_connected = threading.Barrier(2, timeout=5)
    results, errors, ports = [], [], {}

    def work(name):
        try:
            results.append(state.pipeline(TWO))
            ports[name] = state.connection()._sock.getsockname()[1]
            both_connected.wait()  # two connections open at once
            results.append(state.pipeline(TWO))
            assert state.connection()._sock.getsockname()[1] == ports[name]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            state.drop_connection()

    threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert errors == []
    assert results == [[1, 1]] * 4
    assert fake.connections == 2
    assert sorted(fake.peers) == sorted(ports.values())
    assert [len(calls) for calls in fake.calls] == [2, 2]  # each kept for its thread


def test_connection_is_kept_with_kernel_timeouts(fake_redis, raw_to):
    fake = fake_redis()
    raw_to(fake, timeout=0.25)
    for _ in range(3):
        assert state.pipeline(TWO) == [1, 1]
    assert fake.connections == 1
    sock = state.connection()._sock
    assert sock.gettimeout() is None  # blocking: Python polls nothing
    for option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
        whole, micro = struct.unpack(
            "ll", sock.getsockopt(socket.SOL_SOCKET, option, 16)
        )
        assert 0.25 <= whole + micro / 1e6 <= 0.26


@pytest.mark.parametrize("timeout", [0.9999999, None])
def test_any_socket_timeout_connects(fake_redis, raw_to, timeout):
    # 0.9999999 s was 0 s + 1,000,000 µs, which the kernel refuses (EDOM): every
    # connection failed; None is no timeout.
    fake = fake_redis()
    raw_to(fake, timeout=timeout)
    assert state.pipeline(TWO) == [1, 1]
    assert state.pipeline(TWO) == [1, 1]
    assert fake.connections == 1


def test_new_client_gets_a_new_connection(fake_redis, raw_to):
    first, second = fake_redis(), fake_redis()
    raw_to(first)
    assert state.pipeline(TWO) == [1, 1]
    raw_to(second)  # e.g. CACHES changed: another pool
    assert state.pipeline(TWO) == [1, 1]
    assert (first.connections, second.connections) == (1, 1)


# --- a Redis that stops answering: a timeout, never sent again -------------------------


@PARSERS
def test_silent_redis_on_a_fresh_connection_times_out_once(fake_redis, raw_to, parser):
    fake = fake_redis([HANG])
    raw_to(fake, timeout=0.3, parser=parser)
    error, elapsed = timed_failure()
    assert 0.15 <= elapsed <= 0.9, elapsed
    assert isinstance(error.__context__, BlockingIOError)  # the kernel's EAGAIN
    assert fake.connections == 1
    assert fake.commands() == [[b"INCR", b"k"], [b"EXPIRE", b"k", b"61", b"NX"]]
    assert core_cache.failing_fast()
    assert state.connection() is None  # never reused with replies pending


@PARSERS
def test_silent_redis_on_a_reused_connection_is_not_sent_again(
    fake_redis, raw_to, parser
):
    fake = fake_redis([ANSWER, HANG])
    raw_to(fake, timeout=0.3, parser=parser)
    assert state.pipeline(TWO) == [1, 1]
    error, elapsed = timed_failure()
    assert 0.15 <= elapsed <= 0.9, elapsed
    assert isinstance(error.__context__, BlockingIOError)
    assert fake.connections == 1  # no second connection: not retried
    assert len(fake.commands()) == 4  # each pipeline seen once
    assert core_cache.failing_fast()


def test_after_a_timeout_calls_fail_fast_without_touching_redis(fake_redis, raw_to):
    fake = fake_redis([HANG])
    raw_to(fake, timeout=0.2)
    timed_failure()
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="failing fast"):
        state.pipeline(TWO)
    assert time.monotonic() - started < 0.05
    assert fake.connections == 1


def test_silent_redis_is_503_through_the_gateway(
    fake_redis, raw_to, make_service, api, upstream
):
    make_service("svc", [upstream.url], public=True)
    assert api.get("/api/svc/x").status_code == 200  # the registry loaded
    fake = fake_redis([HANG])
    raw_to(fake, timeout=0.3)
    started = time.monotonic()
    resp = api.get("/api/svc/x")
    assert resp.status_code == 503, resp.content
    assert resp.json()["error"]["code"] == "service_unavailable"
    assert time.monotonic() - started <= 0.9 + 0.3
    assert fake.connections == 1 and len(fake.calls[0]) == 1
    assert len(upstream.requests) == 1
    assert core_cache.failing_fast()


# --- a connection closed mid-reply: the commands arrived, never sent again -----------


@PARSERS
@pytest.mark.parametrize(
    "reply", [b"", b":1\r\n", b":1\r\n:"], ids=["nothing", "one-reply", "partial"]
)
def test_fresh_connection_closed_mid_reply_is_not_retried(
    fake_redis, raw_to, parser, reply
):
    fake = fake_redis([(reply, True)])
    raw_to(fake, parser=parser)
    error, elapsed = timed_failure()
    assert isinstance(error, redis.ConnectionError)
    assert elapsed < 0.5
    assert fake.connections == 1
    assert len(fake.commands()) == 2  # INCR counted once
    assert core_cache.failing_fast()


@PARSERS
@pytest.mark.parametrize("reply", [b":1\r\n", b":2"], ids=["one-reply", "partial"])
def test_reused_connection_closed_after_a_reply_is_not_retried(
    fake_redis, raw_to, parser, reply
):
    # Redis answered INCR, or began to, and closed (killed, restarted, an output buffer
    # limit): the commands were delivered and INCR counted, so sending them again
    # counts it twice. A partial reply shows in the parser's buffer.
    fake = fake_redis([ANSWER, (reply, True)])
    raw_to(fake, parser=parser)
    assert state.pipeline(TWO) == [1, 1]
    timed_failure()
    assert fake.connections == 1
    assert [cmd[0] for cmd in fake.commands()] == [b"INCR", b"EXPIRE"] * 2


@PARSERS
@pytest.mark.parametrize("close", [True, RESET], ids=["closed", "reset"])
def test_reused_connection_closed_while_idle_is_sent_again_once(
    fake_redis, raw_to, parser, close
):
    # Answers, then closes while idle. A reset arrives before the next write, which
    # then fails: nothing was delivered either way.
    fake = fake_redis([(b":1\r\n:1\r\n", close)])
    raw_to(fake, parser=parser)
    assert state.pipeline(TWO) == [1, 1]
    time.sleep(0.05)  # the FIN or RST reaches the client's socket
    assert state.pipeline(TWO) == [1, 1]
    assert fake.connections == 2
    assert [len(calls) for calls in fake.calls] == [1, 1]
    assert not core_cache.failing_fast()


def test_reused_connection_closed_twice_is_sent_again_only_once(fake_redis, raw_to):
    # closed while idle, then the new connection closed without a reply: one resend
    fake = fake_redis([(b":1\r\n:1\r\n", True)], [(b"", True)])
    raw_to(fake)
    assert state.pipeline(TWO) == [1, 1]
    time.sleep(0.05)
    timed_failure()
    assert fake.connections == 2
    assert [len(calls) for calls in fake.calls] == [1, 1]
    assert core_cache.failing_fast()


# --- after a fork: the child's own connection ---------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork")
def test_forked_child_makes_its_own_connection(fake_redis, raw_to):
    fake = fake_redis()
    raw_to(fake)
    assert state.pipeline(TWO) == [1, 1]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no pytest from here on, only the pipeline and _exit
        code = 1
        try:
            os.close(read_end)
            result = state.pipeline(TWO)
            port = state.connection()._sock.getsockname()[1]
            os.write(write_end, f"{result}|{port}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    deadline = time.monotonic() + 5
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.01)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child did not finish")
    with os.fdopen(read_end, "rb") as reader:
        output = reader.read().decode()
    assert os.waitstatus_to_exitcode(status) == 0
    result, port = output.split("|")
    assert result == "[1, 1]"
    parent_port = state.connection()._sock.getsockname()[1]
    assert int(port) != parent_port
    # the parent's connection is untouched by the child and still answers
    assert state.pipeline(TWO) == [1, 1]
    assert fake.connections == 2
    assert fake.peers == [parent_port, int(port)]
    assert [len(calls) for calls in fake.calls] == [2, 1]


# --- error replies: about one key, this call fails; about the server, fail fast ------


@pytest.mark.parametrize(
    "reply",
    [
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        b"-ERR value is not an integer or out of range\r\n",
    ],
    ids=["WRONGTYPE", "ERR"],
)
def test_an_error_reply_about_one_key_fails_that_call_only(fake_redis, raw_to, reply):
    fake = fake_redis([(reply + b":1\r\n", False)])
    raw_to(fake)
    error, _ = timed_failure()
    assert isinstance(error, redis.ResponseError)
    assert not core_cache.failing_fast()
    assert state.pipeline(TWO) == [1, 1]  # the next call tries Redis
    assert fake.connections == 2  # the first one was dropped with a reply pending


@pytest.mark.parametrize(
    "reply",
    [
        b"-OOM command not allowed when used memory > 'maxmemory'.\r\n",
        b"-READONLY You can't write against a read only replica.\r\n",
        b"-LOADING Redis is loading the dataset in memory\r\n",
        b"-MISCONF Redis is configured to save RDB snapshots, but it's currently"
        b" unable to persist to disk.\r\n",
        b"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set"
        b" to 'no'.\r\n",
        b"-NOPERM this user has no permissions to run the 'incr' command\r\n",
        b"!!! not RESP\r\n",
    ],
    ids=["OOM", "READONLY", "LOADING", "MISCONF", "MASTERDOWN", "NOPERM", "not-RESP"],
)
def test_an_error_reply_about_the_server_fails_fast(fake_redis, raw_to, reply):
    fake = fake_redis([(reply + b":1\r\n", False)])
    raw_to(fake)
    timed_failure()
    assert core_cache.failing_fast()
    with pytest.raises(ConnectionError, match="failing fast"):
        state.pipeline(TWO)
    assert fake.connections == 1 and len(fake.calls[0]) == 1
