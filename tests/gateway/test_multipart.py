"""Every multipart body under a content-type policy is parsed strictly and completely:
a part that cannot be classified is 415, broken framing 400, and nothing of either
reaches the upstream (issue 10 item 2)."""

import contextlib

import pytest

from core.errors import MalformedRequest
from gateway import content
from gateway.services import service_create
from tests.conftest import assert_error
from tests.gateway.test_gunicorn import gunicorn, real_db  # noqa: F401 - fixtures
from tests.gateway.wire import send_raw
from tests.support.linearity import assert_linear, peak_bytes
from tests.support.upstream import FakeUpstream

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
EXE = b"MZ" + b"\x90" * 200
B = b"XbOuNdArY"
CT = "multipart/form-data; boundary=" + B.decode()
POLICY = ["multipart/form-data", "image/png"]


def part(headers: bytes, data: bytes) -> bytes:
    return b"--" + B + b"\r\n" + headers + b"\r\n\r\n" + data + b"\r\n"


def form(*parts: bytes, end=b"--" + B + b"--\r\n") -> bytes:
    return b"".join(parts) + end


def file_part(filename=b'"a.png"', data=PNG, extra=b""):
    return part(
        b'Content-Disposition: form-data; name="f"; filename='
        + filename
        + b"\r\nContent-Type: image/png"
        + extra,
        data,
    )


FIELD = part(b'Content-Disposition: form-data; name="note"', b"hello")

ACCEPTED = {
    "png file and a field": form(FIELD, file_part()),
    "field only": form(FIELD),
    "empty file input": form(
        part(
            b'Content-Disposition: form-data; name="f"; filename=""\r\n'
            b"Content-Type: application/octet-stream",
            b"",
        )
    ),
    "utf-8 file name": form(file_part('"bild-ä.png"'.encode())),
    "field with text/plain": form(
        part(
            b'Content-Disposition: form-data; name="n"\r\nContent-Type: text/plain',
            b"x",
        )
    ),
    "no trailing CRLF": form(FIELD, end=b"--" + B + b"--"),
}

REFUSED_415 = {
    "file name x/": form(file_part(b'"x/"', EXE)),
    "file name .": form(file_part(b'"."', EXE)),
    "file name ..": form(file_part(b'".."', EXE)),
    "file name a backslash": form(file_part(b'"a\\"', EXE)),
    "file name with a path": form(file_part(b'"../../x.png"', PNG)),
    "no name": form(part(b'Content-Disposition: form-data; filename="a.png"', EXE)),
    "empty name": form(part(b'Content-Disposition: form-data; name=""', EXE)),
    "second Content-Disposition": form(
        part(
            b'Content-Disposition: form-data; name="ok"\r\n'
            b'Content-Disposition: form-data; name="f"; filename="a.exe"',
            EXE,
        )
    ),
    "second Content-Type": form(
        file_part(extra=b"\r\nContent-Type: image/png", data=EXE)
    ),
    "repeated parameter": form(
        part(b'Content-Disposition: form-data; name="a"; name="b"', b"x")
    ),
    "filename*": form(
        part(
            b"Content-Disposition: form-data; name=\"f\"; filename*=UTF-8''a.exe",
            EXE,
        )
    ),
    "unknown parameter": form(
        part(b'Content-Disposition: form-data; name="f"; size=3', b"abc")
    ),
    "not form-data": form(part(b'Content-Disposition: attachment; name="f"', EXE)),
    "Content-Transfer-Encoding": form(
        part(
            b'Content-Disposition: form-data; name="f"; filename="a.png"\r\n'
            b"Content-Transfer-Encoding: base64",
            b"TVqQAAMAAAAEAAAA",
        )
    ),
    "nested multipart": form(
        part(
            b'Content-Disposition: form-data; name="f"\r\n'
            b"Content-Type: multipart/mixed; boundary=inner",
            b"--inner\r\nContent-Type: application/x-msdownload\r\n\r\n"
            + EXE
            + b"\r\n--inner--",
        )
    ),
    "executable labelled png": form(file_part(data=EXE)),
    "executable in a field": form(
        part(b'Content-Disposition: form-data; name="n"', EXE)
    ),
    "no headers": form(b"--" + B + b"\r\n\r\n" + EXE + b"\r\n"),
    "no Content-Disposition": form(part(b"Content-Type: image/png", PNG)),
}

REFUSED_400 = {
    "preamble": b"junk\r\n" + form(file_part()),
    "bare LF boundary": form(FIELD).replace(b"\r\n", b"\n"),
    "hidden LF part": form(
        part(
            b'Content-Disposition: form-data; name="note"',
            b"x\n--" + B + b'\nContent-Disposition: form-data; name="f"; '
            b'filename="a.exe"\n\n' + EXE,
        )
    ),
    "no closing delimiter": form(FIELD, end=b""),
    "epilogue": form(FIELD, end=b"--" + B + b"--\r\nsmuggled"),
    "obs-fold header": form(
        part(b'Content-Disposition: form-data;\r\n name="f"; filename="a.exe"', EXE)
    ),
    "control character in a header": form(
        part(b'Content-Disposition: form-data; name="f\x01"', b"x")
    ),
    "junk after a boundary": b"--" + B + b"  \r\n" + form(FIELD)[len(B) + 4 :],
    "empty body": b"",
}


@pytest.fixture
def images(make_service):
    up = FakeUpstream()
    make_service("images", [up.url], public=True, allowed_content_types=POLICY)
    yield up
    up.close()


@pytest.mark.parametrize("body", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted_forms_are_forwarded_intact(api, images, body):
    resp = api.generic("POST", "/api/images/up", body, content_type=CT)
    assert resp.status_code == 200, resp.content
    assert images.requests[-1][1] == body


@pytest.mark.parametrize("body", REFUSED_415.values(), ids=REFUSED_415.keys())
def test_unclassifiable_parts_are_415(api, images, body):
    resp = api.generic("POST", "/api/images/up", body, content_type=CT)
    assert_error(resp, 415, "unsupported_media_type")
    assert images.requests == []


@pytest.mark.parametrize("body", REFUSED_400.values(), ids=REFUSED_400.keys())
def test_broken_multipart_framing_is_400(api, images, body):
    resp = api.generic("POST", "/api/images/up", body, content_type=CT)
    if body == b"":
        assert resp.status_code == 200  # no body at all: nothing to judge
        return
    assert_error(resp, 400, "malformed_request")
    assert images.requests == []


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=a\\b",
        "multipart/form-data; boundary=" + "a" * 71,
        f"{CT}; boundary=other",
        f"{CT}; foo=bar",
    ],
)
def test_bad_boundary_is_400(api, images, content_type):
    resp = api.generic("POST", "/api/images/up", form(FIELD), content_type=content_type)
    assert_error(resp, 400, "malformed_request")
    assert images.requests == []


def test_other_multipart_types_are_not_judged(make_service, api):
    up = FakeUpstream()
    try:
        make_service("m", [up.url], public=True, allowed_content_types=["multipart/*"])
        ct = "multipart/mixed; boundary=" + B.decode()
        resp = api.generic("POST", "/api/m/x", form(FIELD), content_type=ct)
        assert_error(resp, 415, "unsupported_media_type")
        assert up.requests == []
    finally:
        up.close()


def test_large_form_is_spooled_and_judged_whole(api, images):
    big = PNG + b"\x00" * 300_000
    body = form(FIELD, file_part(data=big), file_part(b'"b.png"', data=EXE))
    assert_error(
        api.generic("POST", "/api/images/up", body, content_type=CT),
        415,
        "unsupported_media_type",
    )
    body = form(FIELD, file_part(data=big))
    resp = api.generic("POST", "/api/images/up", body, content_type=CT)
    assert resp.status_code == 200
    assert images.requests[-1][1] == body


@pytest.mark.slow
def test_hostile_forms_through_gunicorn(gunicorn):  # noqa: F811 - fixture
    up = FakeUpstream()
    try:
        service_create(
            name="images",
            instances=[up.url],
            public=True,
            allowed_content_types=POLICY,
            rate_limits={"anonymous": "10000/m"},
        )
        server = gunicorn(workers=1)
        cases = [(b, 415) for b in REFUSED_415.values()]
        cases += [(b, 400) for b in REFUSED_400.values() if b]
        cases += [(b, 200) for b in ACCEPTED.values()]
        for body, expected in cases:
            for chunked in (False, True):
                framing = (
                    b"Transfer-Encoding: chunked\r\n"
                    if chunked
                    else b"Content-Length: %d\r\n" % len(body)
                )
                payload = (
                    b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body) if chunked else body
                )
                raw = (
                    b"POST /api/images/up HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    + b"Content-Type: "
                    + CT.encode()
                    + b"\r\n"
                    + framing
                    + b"Connection: close\r\n\r\n"
                    + payload
                )
                status, data = send_raw(server.port, raw)
                assert status == expected, (body[:120], chunked, data[:400])
        up.wait_idle()
        accepted = [b for b in ACCEPTED.values() for _ in range(2)]
        assert [body for _, body in up.requests] == accepted
    finally:
        up.close()


# --- linear and bounded (issue 24) ------------------------------------------------


def _near_delimiters(size: int) -> bytes:
    """One file part whose bytes are full of almost-delimiters."""
    return form(file_part(data=PNG + (b"\r\n--" + B[:-1] + b"\r\n") * size))


def _many_parts(size: int) -> bytes:
    return form(*[FIELD] * size)


def _epilogue(size: int) -> bytes:
    return form(FIELD, end=b"--" + B + b"--\r\n" + b"x" * (64 * size))


def _judge(body: bytes) -> None:
    # The epilogue is refused: the time to find that out is what is measured.
    with contextlib.suppress(MalformedRequest):
        content.check_multipart(CT, body, tuple(POLICY))


@pytest.mark.parametrize(
    ("make", "size"), [(_near_delimiters, 2048), (_many_parts, 100), (_epilogue, 256)]
)
def test_the_strict_parser_is_linear(make, size):
    assert_linear(make, _judge, size)


def test_an_epilogue_is_never_copied():
    """A body spooled to disk is judged through a read-only map: an 8 MiB epilogue
    must not come back into memory (it was sliced into a bytes copy)."""
    spooled = content.spool([_epilogue(128 * 1024)])

    def judge(body):
        with pytest.raises(MalformedRequest, match="after its end"):
            content.check_multipart(CT, body, tuple(POLICY))

    assert spooled._rolled
    assert peak_bytes(judge, spooled) < 256 * 1024
