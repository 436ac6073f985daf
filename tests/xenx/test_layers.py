"""The layering of the apps (``.importlinter``) holds: CI runs ``lint-imports`` too; this
catches a violation in a plain test run."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter")
def test_import_layers_are_kept():
    result = subprocess.run(
        ["lint-imports", "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]
