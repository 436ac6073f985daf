"""The benchmark's report (``bench/benchkit/report.py``): medians, ratios of medians and
the ratios paired round by round, including the --reference targets (f, g)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from benchkit.common import Target  # noqa: E402
from benchkit.report import instruction_ratios, render_markdown, summarize  # noqa: E402


def _target(key: str, rps_by_round: list[float], conns: int = 32) -> Target:
    target = Target(key, f"target {key}", 0, "/")
    for rnd, rps in enumerate(rps_by_round, start=1):
        target.runs.append(
            {"round": rnd, "conns": conns, "rps": rps, "p50_ms": 1.0, "p99_ms": 2.0}
        )
    return target


def test_medians_and_both_kinds_of_ratio():
    # the machine runs at full speed in round 1, half speed in round 2, full in 3
    b = _target("b", [1000, 500, 1000])
    d = _target("d", [1500, 900, 1200])
    f = _target("f", [1200, 600, 1000])
    summary, ratios = summarize([b, d, f])
    assert summary["32"]["d"]["rps"] == 1200
    assert summary["32"]["d"]["rps_each"] == [1500, 900, 1200]
    assert ratios["32"]["d/b"] == 1.2  # 1200 / 1000
    assert ratios["32"]["d/b by round"] == 1.5  # median of 1.5, 1.8, 1.2
    assert ratios["32"]["d/f"] == 1.2  # 1200 / 1000
    assert ratios["32"]["d/f by round"] == 1.25  # median of 1.25, 1.5, 1.2
    assert "e/g" not in ratios["32"] and "d/c" not in ratios["32"]


def test_a_round_missing_on_one_side_is_left_out_of_the_pairs():
    b = _target("b", [1000, 1000])
    e = _target("e", [2000, 3000, 4000])
    _, ratios = summarize([b, e])
    assert ratios["32"]["e/b by round"] == 2.5  # rounds 1 and 2 only


def test_markdown_lists_the_ratios():
    b, d = _target("b", [1000]), _target("d", [1500])
    summary, ratios = summarize([b, d])
    machine = dict.fromkeys(
        ("nproc", "cpu_model", "memory_gib", "kernel", "python", "django", "gunicorn",
         "django_revproxy", "urllib3", "nginx", "wrk"), "x",
    )  # fmt: skip
    text = render_markdown(
        {
            "date": "today",
            "machine": machine,
            "loadavg_before": "0",
            "loadavg_after": "0",
            "config": {"rounds": 1, "seconds": 1, "warmup": 0, "gunicorn": ["-k"]},
            "summary": summary,
            "ratios": ratios,
            "percall": {},
            "problems": [],
            "targets": {},
        }
    )
    assert "d/b = 1.50" in text and "d/b by round = 1.50" in text


def test_cpu_per_request_is_the_median_of_each_part_over_the_rounds():
    b = _target("b", [1000, 500, 1000])
    parts = [
        {"server": 500.0, "upstream": 40.0, "redis": 2.0, "wrk": 60.0, "machine": 900},
        {"server": 700.0, "upstream": 50.0, "redis": 4.0, "wrk": 70.0, "machine": 1300},
        {"server": 600.0, "upstream": 30.0, "redis": 3.0, "wrk": 80.0, "machine": 1000},
    ]
    for run, cpu in zip(b.runs, parts, strict=True):
        run["cpu_us_per_request"] = cpu
    e = _target("e", [2000])  # a run without the figures (an older result)
    summary, ratios = summarize([b, e])
    assert summary["32"]["b"]["cpu_us"] == {
        "server": 600.0,
        "upstream": 40.0,
        "redis": 3.0,
        "wrk": 70.0,
        "machine": 1000.0,
    }
    assert summary["32"]["e"]["cpu_us"] == {}
    text = render_markdown(
        {
            "date": "today",
            "machine": dict.fromkeys(
                (
                    "nproc",
                    "cpu_model",
                    "memory_gib",
                    "kernel",
                    "python",
                    "django",
                    "gunicorn",
                    "django_revproxy",
                    "urllib3",
                    "nginx",
                    "wrk",
                ),
                "x",
            ),  # fmt: skip
            "loadavg_before": "0",
            "loadavg_after": "0",
            "config": {"rounds": 3, "seconds": 1, "warmup": 0, "gunicorn": ["-k"]},
            "summary": summary,
            "ratios": ratios,
            "percall": {},
            "problems": [],
            "targets": {},
        }
    )
    assert "| (b) target b | 600 | 40 | 3 | 70 | 1,000 |" in text
    assert "| (e) target e | 2,000 |" in text  # its req/s row, and no CPU row
    assert text.count("| (e) target e |") == 1


def test_the_provider_targets_are_compared_with_the_login_one():
    # issue 23: the provider's tokens within 10 % of a login's, alternated per round
    d = _target("d", [1000, 500, 1000])
    h = _target("h", [950, 480, 900])
    i = _target("i", [1100, 500, 1000])
    _, ratios = summarize([d, h, i])
    assert ratios["32"]["h/d"] == 0.9  # median 900 / median 1000
    assert ratios["32"]["h/d by round"] == 0.95  # median of 0.95, 0.96, 0.9
    assert ratios["32"]["i/d"] == 1.0
    assert ratios["32"]["i/d by round"] == 1.0  # median of 1.1, 1.0, 1.0
    assert "h/i" not in ratios["32"] and "d/h" not in ratios["32"]
    assert instruction_ratios({"d": 600_000, "h": 630_000, "i": 540_000}) == {
        "h/d": 1.05,
        "i/d": 0.9,
    }
