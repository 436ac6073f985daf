"""The benchmark's option checks (``bench/harness.py``): a plan wrk cannot run or that
would outlast the ten-minute limit is refused before anything starts."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from harness import parse_args  # noqa: E402


@pytest.mark.parametrize(
    "argv",
    [
        ["--seconds", "0.5"],  # wrk's -d takes whole seconds
        ["--warmup", "0.5"],
        ["--seconds", "0"],
        ["--rounds", "0"],
        ["--targets", "x"],
        ["--targets", "d,f"],  # f and g come with --reference only
        ["--targets", "d,h,i", "--instructions", "--rounds", "6"],  # 3 min of callgrind
        ["--targets", "b,c", "--reference", "HEAD"],  # f and g follow d and e
        ["--layout", "2by8"],
        ["--xenx-env", "NOEQUALS"],
        ["--rounds", "40"],  # far past ten minutes
        ["--port-base", "80"],
    ],
)
def test_refused_before_anything_starts(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_a_plan_within_the_limits_is_taken():
    args = parse_args(["--targets", "d,e", "--rounds", "12", "--seconds", "3"])
    assert (args.rounds, args.seconds, args.warmup) == (12, 3.0, 2.0)
    args = parse_args(["--quick"])
    assert (args.rounds, args.seconds, args.warmup) == (1, 3.0, 1.0)


def test_the_provider_targets_run_beside_the_login_one():
    args = parse_args(["--targets", "d,h,i", "--rounds", "3", "--seconds", "6"])
    assert args.keys == ["d", "h", "i"]
    args = parse_args(["--targets", "d,h", "--instructions", "--quick"])
    assert args.keys == ["d", "h"] and args.instructions
    # with a reference, f follows d; h and i stay this checkout's
    args = parse_args(["--targets", "d,h", "--reference", "HEAD", "--quick"])
    assert args.keys == ["d", "h", "f"]
