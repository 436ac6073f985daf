"""JSON bodies (core/jsonbody.py, core.middleware.BodyLimitMiddleware): the depth check
is linear in the body (issue 24: a body of unterminated strings made it quadratic, an
80 KB login body held a worker past gunicorn's timeout), and a body over
DATA_UPLOAD_MAX_MEMORY_SIZE is 413 before it is read."""

import io

import pytest

from core.errors import PayloadTooLarge
from core.jsonbody import MAX_DEPTH, JSONParser, TooDeep, check_depth
from tests.conftest import assert_error
from tests.support.linearity import assert_linear, peak_bytes

# The worst case found: enough brackets to need the scan, then `"\` repeated, each
# quote opening a string the old pattern tried to close to the end of the body.
HEAD = b"[]" * (MAX_DEPTH + 1)


def unterminated(size: int) -> bytes:
    return HEAD + b'"\\' * size


def escaped_quotes(size: int) -> bytes:  # `"\"\"\"…` then a lone backslash
    return HEAD + b'"' + b'\\"' * size + b"\\"


def deep_in_strings(size: int) -> bytes:  # brackets in strings, none counted
    return b'["' + b"[{" * size + b'"]' + b"[]" * (MAX_DEPTH + 1)


@pytest.mark.parametrize("make", [unterminated, escaped_quotes, deep_in_strings])
def test_the_depth_check_is_linear(make):
    assert_linear(make, check_depth, 4096)


def test_the_depth_check_holds_about_one_copy_of_the_body():
    data = unterminated(1 << 20)
    assert peak_bytes(check_depth, data) < 2 * len(data)


@pytest.mark.parametrize(
    ("data", "deep"),
    [
        (b'"\\"' + b"[" * (MAX_DEPTH + 1), False),  # inside an open string
        (b'"a\\\\"' + b"[" * (MAX_DEPTH + 1), True),  # the string closed first
        (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"[", False),
        (b"[]" * 500 + b"[" * (MAX_DEPTH + 1), True),
    ],
)
def test_strings_open_to_the_end_and_escapes(data, deep):
    if deep:
        with pytest.raises(TooDeep):
            check_depth(data)
    else:
        check_depth(data)


def test_the_worst_case_login_body_is_linear_through_http(api, db):
    def post(body):
        resp = api.post("/api/auth/login", body, content_type="application/json")
        assert resp.status_code == 400

    assert_linear(unterminated, post, 16_384, repeat=3)


def test_a_json_body_over_the_limit_is_413_by_its_length(api, db, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = b'{"email": "a@example.com", "password": "' + b"x" * 1000 + b'"}'
    resp = api.post("/api/auth/login", body, content_type="application/json")
    assert_error(resp, 413, "payload_too_large")
    small = b'{"email": "a@example.com", "password": "x"}'
    resp = api.post("/api/auth/login", small, content_type="application/json")
    assert_error(resp, 401, "invalid_credentials")


def test_a_json_body_over_the_limit_is_refused_before_it_is_read(api, db, settings):
    """The declared length decides: the body stream is never read (a stream that
    raises on read would turn any read into a 500)."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    class Unreadable:
        def read(self, *args):
            raise AssertionError("the body was read")

        readline = read

    resp = api.generic(
        "POST",
        "/api/auth/login",
        content_type="application/json",
        CONTENT_LENGTH="60000000",
        **{"wsgi.input": Unreadable()},
    )
    assert_error(resp, 413, "payload_too_large")


@pytest.mark.parametrize("content_type", ["application/json", "application/vnd+json"])
def test_json_types_are_capped_also_with_parameters(api, db, settings, content_type):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    resp = api.post(
        "/api/auth/login", b"[" + b" " * 20 + b"]", content_type=f"{content_type}; q=1"
    )
    assert_error(resp, 413, "payload_too_large")


def test_the_parser_reads_at_most_one_byte_past_the_limit(settings):
    """Belt and braces for a stream that declared no length."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    stream = io.BytesIO(b"[" + b"0," * 10_000 + b"0]")
    with pytest.raises(PayloadTooLarge):
        JSONParser().parse(stream)
    assert stream.tell() == 101
