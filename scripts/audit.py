"""`make audit`: pip-audit over the locked dependency set, with plain words for each outcome.

Exit 0: no known vulnerability in the locked set. Exit 1: vulnerabilities found (listed).
Exit 3: the vulnerability database could not be reached, so nothing was checked.
Exit 2: pip-audit itself failed for another reason (its output is shown).

pip-audit reports a package it could not look up as "skipped" and still exits 0, which would read
as a clean audit when the database (PyPI's JSON API) is blocked; this script says so instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

CLEAN, VULNERABLE, FAILED, UNREACHABLE = 0, 1, 2, 3
NETWORK_WORDS = ("ConnectionError", "NameResolutionError", "Max retries exceeded", "timed out")


def main(lock_file: str) -> int:
    pip_audit = Path(sys.executable).with_name("pip-audit")
    with tempfile.TemporaryDirectory() as scratch:
        report_path = Path(scratch) / "audit.json"
        command = [
            str(pip_audit),
            "--requirement",
            lock_file,
            "--disable-pip",  # the lock is complete and hashed: nothing to resolve
            "--progress-spinner=off",
            "--format=json",
            f"--output={report_path}",
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        report = json.loads(report_path.read_text()) if report_path.exists() else None
    if report is None:
        if any(word in result.stderr for word in NETWORK_WORDS):
            return unreachable()
        print(result.stdout + result.stderr, file=sys.stderr)
        print("pip-audit failed before it could audit anything (see above).")
        return FAILED
    dependencies = report.get("dependencies", [])
    audited = [d for d in dependencies if "skip_reason" not in d]
    if dependencies and not audited:
        return unreachable()
    vulnerable = [d for d in audited if d.get("vulns")]
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed release yet"
            print(f"{dependency['name']} {dependency['version']}: {vuln['id']} (fixed in {fixes})")
    skipped = [d for d in dependencies if "skip_reason" in d]
    for dependency in skipped:
        print(f"Not audited: {dependency['name']} {dependency.get('version', '')}")
    if vulnerable:
        print(f"{len(vulnerable)} of {len(audited)} locked packages have known vulnerabilities.")
        return VULNERABLE
    print(f"No known vulnerabilities in the {len(audited)} audited packages of {lock_file}.")
    return CLEAN


def unreachable() -> int:
    print(
        "The vulnerability database (PyPI's advisory data) could not be reached, "
        "so no package was audited. Try again with access to pypi.org."
    )
    return UNREACHABLE


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "requirements.lock"))
