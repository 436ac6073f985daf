"""``gateway.paths.is_clean``: its shortcut for plain paths judges exactly as the
layer-by-layer check does."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import paths


def _slow(path: str) -> bool:
    """The layer-by-layer check alone (the shortcut bypassed)."""
    for _ in range(paths._MAX_LAYERS):
        if not paths._clean_layer(path):
            return False
        decoded = paths.unquote(path, errors="strict") if "%" in path else path
        if decoded == path:
            return True
        path = decoded
    return False


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
    assert _slow(path) is clean


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.text(alphabet="ab./-_~%2e:;\\", max_size=12))
def test_the_shortcut_agrees_with_the_full_check(path):
    try:
        expected = _slow(path)
    except UnicodeDecodeError:
        expected = False
    assert paths.is_clean(path) is expected
