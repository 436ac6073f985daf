"""``gateway.paths.is_clean``: its shortcut for plain paths judges exactly as the
layer-by-layer check (``layers_clean``) does."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import paths
from tests.support.linearity import assert_linear


@pytest.mark.parametrize(
    ("path", "clean"),
    [
        ("", True),
        ("/", True),
        ("/json", True),
        ("/a/b-c_d~e/f.json", True),
        ("/.well-known/x", True),
        ("/a/../b", False),
        ("/a/./b", False),
        ("/..", False),
        ("/.", False),
        ("..", False),
        ("/a//b", False),
        ("//evil", False),
        ("/a/%2e%2e/b", False),
        ("/http:evil", False),
    ],
)
def test_known_paths(path, clean):
    assert paths.is_clean(path) is clean
    assert paths.layers_clean(path) is clean


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.text(alphabet="ab./-_~%2e:;\\", max_size=12))
def test_the_shortcut_agrees_with_the_full_check(path):
    assert paths.is_clean(path) is paths.layers_clean(path)


# --- linear in the path (issue 24) -------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda n: "/a%20b;c=d" * n,  # clean, encoded: every layer is looked at
        lambda n: "/%2541" * n + "/..",  # encoded twice, refused at the end
        lambda n: "/" + "x" * (8 * n),  # one long segment
        lambda n: "/a" * n + "/http:x",  # a scheme deep down: only the first counts
    ],
    ids=["clean-encoded", "double-encoded", "long-segment", "scheme-late"],
)
def test_path_checks_are_linear(make):
    assert_linear(make, paths.is_clean, 512)


def test_splitting_the_request_target_is_linear():
    def target(n):
        return {"RAW_URI": "/api/svc" + "/a%2Fb" * n + "?" + "q=1&" * n}

    assert_linear(target, lambda environ: paths.split_target(environ, "svc"), 512)


# --- header and cookie splitting, through the gateway and the portal -------------------


@pytest.mark.slow
def test_cookie_and_connection_splitting_is_linear_through_the_gateway(
    api, make_service, upstream
):
    """The proxied call splits the client's Cookie (XenX's own cookies stay home) and
    its Connection header (the names it lists are dropped): both grow with the input."""
    make_service(
        "hdr", [upstream.url], public=True, rate_limits={"anonymous": "999999/m"}
    )

    def call(headers):
        assert api.get("/api/hdr/x", **headers).status_code == 200

    def headers(n):
        return {
            "HTTP_COOKIE": "; ".join(f"c{i}=v" for i in range(n)) + "; sessionid=x",
            "HTTP_CONNECTION": ", ".join(f"x-h{i}" for i in range(n)),
        }

    assert_linear(headers, call, 256, repeat=3)


def test_cookie_parsing_is_linear_at_the_portal(client, db):
    def call(cookie):
        assert client.get("/portal/login", HTTP_COOKIE=cookie).status_code == 200

    assert_linear(lambda n: "; ".join(f"c{i}=v" for i in range(n)), call, 256, repeat=3)
