"""``core.net``: kernel-kept socket timeouts (SO_RCVTIMEO / SO_SNDTIMEO) on real
sockets on 127.0.0.1, and the trusted proxies read once but re-read when the setting
changes."""

import contextlib
import socket
import struct
import threading
import time

import pytest
from django.conf import settings as django_settings
from django.test import RequestFactory

from core import net
from core.net import kernel_timeouts

# --- kernel_timeouts ------------------------------------------------------------------


@pytest.fixture
def silent_pair():
    """(client, server side) of a TCP connection on 127.0.0.1 whose server side never
    sends. A watchdog closes the server side after 5 s, so a timeout that does not fire
    fails the test instead of hanging it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = socket.create_connection(listener.getsockname(), timeout=5)
    peer, _ = listener.accept()
    listener.close()
    watchdog = threading.Timer(5, lambda: peer.shutdown(socket.SHUT_RDWR))
    watchdog.daemon = True
    watchdog.start()
    yield client, peer
    watchdog.cancel()
    for sock in (client, peer):
        with contextlib.suppress(OSError):
            sock.close()


def timeval(sock, option):
    return struct.unpack("ll", sock.getsockopt(socket.SOL_SOCKET, option, 16))


def timed_recv(sock) -> float:
    started = time.monotonic()
    with pytest.raises(BlockingIOError):
        sock.recv(1024)
    return time.monotonic() - started


@pytest.mark.parametrize("seconds", [0.1, 0.25, 0.5])
def test_recv_from_a_silent_peer_raises_after_about_the_timeout(silent_pair, seconds):
    client, _ = silent_pair
    kernel_timeouts(client, seconds)
    assert client.gettimeout() is None  # blocking: no poll by Python
    elapsed = timed_recv(client)
    assert seconds * 0.5 <= elapsed <= seconds * 3, elapsed


@pytest.mark.parametrize("seconds", [0, 1e-9, 1e-6, 0.0001])
def test_zero_ish_timeouts_never_mean_wait_forever(silent_pair, seconds):
    # A zero timeval is "no timeout" to the kernel: the smallest one is kept instead.
    client, _ = silent_pair
    kernel_timeouts(client, seconds)
    assert timeval(client, socket.SO_RCVTIMEO) != (0, 0)
    assert timed_recv(client) < 0.2


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0.3, (0, 300_000)),
        (1, (1, 0)),
        (2.5, (2, 500_000)),
        # rounds up to a whole second: the kernel refuses 1,000,000 µs (EDOM)
        (0.9999999, (1, 0)),
        (2.9999996, (3, 0)),
    ],
)
def test_both_timeouts_are_set_and_always_valid(seconds, expected):
    with socket.socket() as sock:
        sock.settimeout(7)
        kernel_timeouts(sock, seconds)
        assert sock.gettimeout() is None
        # the kernel keeps them in jiffies: within one jiffy (at most 10 ms) above
        for option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
            whole, micro = timeval(sock, option)
            got, want = whole + micro / 1e6, expected[0] + expected[1] / 1e6
            assert want <= got <= want + 0.011, (option, (whole, micro))


def test_none_clears_a_timeout_set_before():
    with socket.socket() as sock:
        kernel_timeouts(sock, 0.5)
        kernel_timeouts(sock, None)
        assert sock.gettimeout() is None
        assert timeval(sock, socket.SO_RCVTIMEO) == (0, 0)
        assert timeval(sock, socket.SO_SNDTIMEO) == (0, 0)


def test_send_to_a_peer_that_never_reads_raises_after_about_the_timeout(silent_pair):
    client, peer = silent_pair
    client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    kernel_timeouts(client, 0.3)
    started = time.monotonic()
    with pytest.raises(BlockingIOError):
        client.sendall(b"x" * (16 * 1024 * 1024))  # far more than both buffers
    elapsed = time.monotonic() - started
    assert 0.15 <= elapsed <= 0.9, elapsed


def test_a_later_call_replaces_the_timeout(silent_pair):
    client, _ = silent_pair
    kernel_timeouts(client, 3)
    kernel_timeouts(client, 0.1)
    assert timed_recv(client) <= 0.3


# --- trusted proxies: read once, re-read when the setting changes ----------------------


def forwarded(remote="127.0.0.1", chain="203.0.113.9"):
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=chain)
    return net.forwarded_chain(request), net.client_ip(request)


def test_trusted_proxies_change_takes_effect_at_once(settings):
    settings.XENX_TRUSTED_PROXIES = ["10.9.9.9"]
    assert forwarded() == (("127.0.0.1",), "127.0.0.1")
    settings.XENX_TRUSTED_PROXIES = ["127.0.0.0/8"]
    assert forwarded() == (("203.0.113.9", "127.0.0.1"), "203.0.113.9")
    settings.XENX_TRUSTED_PROXIES = ["10.9.9.9"]
    assert forwarded() == (("127.0.0.1",), "127.0.0.1")
    settings.XENX_TRUSTED_PROXIES = []
    assert forwarded() == (("127.0.0.1",), "127.0.0.1")
    settings.XENX_TRUSTED_PROXIES = ["127.0.0.1"]
    assert forwarded() == (("203.0.113.9", "127.0.0.1"), "203.0.113.9")


def test_trusted_proxies_are_read_once(settings, monkeypatch):
    for value in (["127.0.0.1"], []):  # an empty list is read once too
        settings.XENX_TRUSTED_PROXIES = value
        assert net.is_trusted_proxy("127.0.0.1") is bool(value)
        # Changed behind Django's back (no setting_changed): the memo still answers.
        other = [] if value else ["127.0.0.1"]
        monkeypatch.setattr(django_settings, "XENX_TRUSTED_PROXIES", other)
        assert net.is_trusted_proxy("127.0.0.1") is bool(value)
        monkeypatch.undo()
