"""Medians, ratios, and the tables printed and written to bench/results/."""

from __future__ import annotations

import statistics

from .common import CONNECTIONS, WRK_THREADS, Target, log

# --- report ------------------------------------------------------------------------

# The provider's tokens against a login's (issue 23: within 10 %): (h) a user's
# authorization-code token, (i) a machine's client-credentials token, each over (d).
PROVIDER_PAIRS = [("h", "d"), ("i", "d")]


def summarize(targets: list[Target]) -> tuple[dict, dict]:
    summary: dict = {}
    for conns in CONNECTIONS:
        per = {}
        for t in targets:
            runs = [r for r in t.runs if r["conns"] == conns]
            if not runs:
                continue
            per[t.key] = {
                "label": t.label,
                "rps": round(statistics.median(r["rps"] for r in runs), 1),
                "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 3),
                "p99_ms": round(statistics.median(r["p99_ms"] for r in runs), 3),
                "others_cores": round(
                    statistics.median(r.get("cpu_others_cores", 0) for r in runs), 2
                ),
                "rounds": len(runs),
                "rps_each": [round(r["rps"], 1) for r in runs],
                "cpu_us": _cpu_medians(runs),
            }
        summary[str(conns)] = per
    ratios: dict = {}
    pairs = [(n, d) for n in ("d", "e") for d in ("b", "c")] + [("d", "f"), ("e", "g")]
    pairs += PROVIDER_PAIRS
    by_key = {t.key: t for t in targets}
    for conns, per in summary.items():
        ratios[conns] = {}
        for num, den in pairs:  # f, g: this checkout against the --reference
            if num in per and den in per and per[den]["rps"]:
                ratios[conns][f"{num}/{den}"] = round(
                    per[num]["rps"] / per[den]["rps"], 3
                )
        # The same ratio round by round (the two runs minutes apart at most), then
        # its median: steadier than the ratio of medians when the machine's speed
        # drifts during the run.
        for num, den in pairs:
            if num in per and den in per:
                each = _paired(by_key[num], by_key[den], int(conns))
                if each:
                    ratios[conns][f"{num}/{den} by round"] = round(
                        statistics.median(each), 3
                    )
    return summary, ratios


CPU_PARTS = ("server", "upstream", "redis", "wrk", "machine")


def _cpu_medians(runs: list[dict]) -> dict:
    """Median CPU microseconds per request of each part over the rounds (the target's
    server, the upstream nginx, Redis, wrk, and every busy core of the machine)."""
    parts = [r["cpu_us_per_request"] for r in runs if r.get("cpu_us_per_request")]
    return {
        name: round(statistics.median(p.get(name, 0.0) for p in parts), 1)
        for name in CPU_PARTS
        if parts
    }


def _cpu_cells(cpu: dict) -> list[str]:
    return [f"{cpu.get(name, 0):,.0f}" for name in CPU_PARTS]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table: the target column left, the figures right-aligned."""
    return [
        "| " + " | ".join(header) + " |",
        "|---|" + "---:|" * (len(header) - 1),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def _ratio_text(ratios: dict[str, float]) -> str:
    return ", ".join(f"{k} = {v:.2f}" for k, v in ratios.items())


def instruction_ratios(counts: dict[str, int]) -> dict[str, float]:
    """This checkout's instructions per call over the reference's (d/f, e/g), over
    the bare view (d/c, e/c), and the provider's tokens over a login's (h/d, i/d):
    below 1 is fewer."""
    pairs = (("d", "f"), ("e", "g"), ("d", "c"), ("e", "c"), *PROVIDER_PAIRS)
    return {
        f"{n}/{d}": round(counts[n] / counts[d], 3)
        for n, d in pairs
        if counts.get(n) and counts.get(d)
    }


def _paired(num: Target, den: Target, conns: int) -> list[float]:
    rounds = {r["round"]: r["rps"] for r in den.runs if r["conns"] == conns}
    return [
        r["rps"] / rounds[r["round"]]
        for r in num.runs
        if r["conns"] == conns and rounds.get(r["round"])
    ]


def render_markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"# XenX benchmark, {result['date']}",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, "
        f"Linux {m['kernel']}; Python {m['python']}, Django {m['django']}, "
        f"gunicorn {m['gunicorn']}, django-revproxy {m['django_revproxy']}, "
        f"urllib3 {m['urllib3']}, nginx {m['nginx']}, wrk {m['wrk']}.",
        f"Load average before the run: {result['loadavg_before']}; "
        f"after: {result['loadavg_after']}.",
        f"Rounds: {result['config']['rounds']}, {result['config']['seconds']} s per run "
        f"after {result['config']['warmup']} s warm-up, wrk -t{WRK_THREADS}; "
        'figures are medians over the rounds. "others\' CPU": cores busy with '
        f"work other than this run's servers, Redis and wrk during the runs (of "
        f"{m['nproc']}). Every Django target: gunicorn "
        f"{' '.join(result['config']['gunicorn'])}.",
        "",
    ]
    if result["config"].get("xenx_env_extra"):
        lines += [f"XenX extra settings: {result['config']['xenx_env_extra']}", ""]
    for conns, per in result["summary"].items():
        lines += [
            f"## {conns} connections",
            "",
            "| target | req/s | p50 ms | p99 ms | req/s each round | others' CPU |",
            "|---|---:|---:|---:|---|---:|",
        ]
        for key, row in per.items():
            each = ", ".join(f"{x:,.0f}" for x in row["rps_each"])
            lines.append(
                f"| ({key}) {row['label']} | {row['rps']:,.0f} | {row['p50_ms']:.2f} "
                f"| {row['p99_ms']:.2f} | {each} | {row['others_cores']:.2f} |"
            )
        cpu_rows = [
            [f"({key}) {row['label']}", *_cpu_cells(row["cpu_us"])]
            for key, row in per.items()
            if row.get("cpu_us")
        ]
        if cpu_rows:
            lines += [
                "",
                "CPU microseconds per request under this load (medians over the "
                "rounds; from /proc: the target's server processes, the upstream "
                "nginx, Redis, wrk, and every busy core of the machine):",
                "",
                *_table(
                    ["target", "server", "upstream", "Redis", "wrk", "machine"],
                    cpu_rows,
                ),
            ]
        ratios = result["ratios"].get(conns, {})
        if ratios:
            lines += ["", "Ratios of req/s: " + _ratio_text(ratios)]
        lines.append("")
    labels = {key: t["label"] for key, t in result["targets"].items()}
    if result.get("percall"):
        lines += ["## In-process cost per call (--percall)", ""]
        lines += _table(
            ["target", "CPU us/call", "wall us/call"],
            [
                [f"({k}) {labels[k]}", f"{r['cpu_us']:.0f}", f"{r['wall_us']:.0f}"]
                for k, r in result["percall"].items()
            ],
        )
        lines.append("")
    if result.get("instructions"):
        lines += ["## Instructions per call in process (--instructions, callgrind)", ""]
        lines += _table(
            ["target", "instructions/call"],
            [
                [f"({k}) {labels[k]}", f"{n:,}"]
                for k, n in result["instructions"].items()
            ],
        )
        ratios = instruction_ratios(result["instructions"])
        if ratios:
            lines += ["", "Ratios of instructions: " + _ratio_text(ratios)]
        lines.append("")
    if result["problems"]:
        lines += ["## Problems", ""] + [f"- {p}" for p in result["problems"]] + [""]
    return "\n".join(lines)


def print_table(result: dict) -> None:
    log()
    log(
        f"{'target':<44} {'conns':>5} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'others':>6}"
    )
    for conns, per in result["summary"].items():
        for key, row in per.items():
            log(
                f"({key}) {row['label']:<40} {conns:>5} {row['rps']:>10,.0f} "
                f"{row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {row['others_cores']:>6.2f}"
            )
        ratios = result["ratios"].get(conns, {})
        if ratios:
            log(f"    ratios at {conns} connections: " + _ratio_text(ratios))
    for conns, per in result["summary"].items():
        rows = {k: r["cpu_us"] for k, r in per.items() if r.get("cpu_us")}
        if rows:
            log(f"CPU us per request at {conns} connections: " + " ".join(
                f"{n:>9}" for n in CPU_PARTS))  # fmt: skip
            for key, cpu in rows.items():
                log(f"  ({key}) {per[key]['label']:<36} " + " ".join(
                    f"{cpu.get(n, 0):>9,.0f}" for n in CPU_PARTS))  # fmt: skip
    for key, count in result.get("instructions", {}).items():
        label = result["targets"][key]["label"]
        log(
            f"in process, callgrind: ({key}) {label:<36} {count:>12,} instructions/call"
        )
    ratios = instruction_ratios(result.get("instructions", {}))
    if ratios:
        log("    instruction ratios: " + _ratio_text(ratios))
    for key, row in result.get("percall", {}).items():
        label = result["targets"][key]["label"]
        log(
            f"in process, one thread: ({key}) {label:<36} cpu {row['cpu_us']:7.0f} us/call"
            f"  wall {row['wall_us']:7.0f} us/call"
        )
