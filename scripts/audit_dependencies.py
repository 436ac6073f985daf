"""CI's dependency audit: pip-audit over the pinned requirements (requirements-dev.txt
includes requirements.txt).

Exit status 1 when a pinned dependency (or one it pulls in) has a known advisory,
each listed with its advisory id and the versions that fix it. pip-audit reports a
dependency it could not look up as skipped and still says "No known vulnerabilities
found": when the advisory service cannot be reached (a machine without that network)
nothing was audited, and this script says so in one loud line and exits 2, so CI can
tell "audited, clean" from "not audited" instead of passing silently.
"""

import json
import subprocess
import sys

REQUIREMENTS = "requirements-dev.txt"


def main() -> int:
    result = subprocess.run(  # noqa: S603 - our own fixed arguments
        [
            sys.executable, "-m", "pip_audit", "-r", REQUIREMENTS,
            "--format", "json", "--progress-spinner", "off",
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"pip-audit: NOT AUDITED: pip-audit failed: {last}")
        return 2
    dependencies = report.get("dependencies", [])
    vulnerable = [d for d in dependencies if d.get("vulns")]
    skipped = [d for d in dependencies if d.get("skip_reason")]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version"
            print(
                f"pip-audit: {dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixed})"
            )
    if vulnerable:
        return 1
    if skipped:
        print(
            f"pip-audit: NOT AUDITED: {len(skipped)} of {len(dependencies)} "
            "dependencies could not be looked up (is the advisory service "
            f"reachable from here?), e.g. {skipped[0]['skip_reason']}"
        )
        return 2
    print(f"pip-audit: {len(dependencies)} dependencies, no known advisory")
    return 0


if __name__ == "__main__":
    sys.exit(main())
