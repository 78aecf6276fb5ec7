"""pip-audit over the installed environment, with an honest answer when it cannot check.

Every installed package (editable installs aside: that is this project) is looked up in
PyPI's vulnerability data. Outcomes:

* a known vulnerability not on the ignore list (``PIP_AUDIT_IGNORE``, ids separated by
  spaces; each needs a reason in docs/security.md) -> exit 1, listing them;
* every package checked, nothing found -> exit 0;
* packages that could not be checked (the machine reaches a package mirror but not PyPI's
  per-release vulnerability data, as in our CI sandbox) -> a loud ``NOT CHECKED`` line
  naming how many, and exit 0 — or exit 1 with ``AUDIT_STRICT=1`` (use it wherever PyPI is
  reachable, e.g. a release pipeline). A plain ``pip-audit`` would print "No known
  vulnerabilities found" here having checked nothing; this never does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def main() -> int:
    ignored = os.environ.get("PIP_AUDIT_IGNORE", "").split()
    command = [str(VENV_BIN / "pip-audit"), "--skip-editable", "--progress-spinner", "off", "--format", "json",
               *[arg for vuln in ignored for arg in ("--ignore-vuln", vuln)]]
    completed = subprocess.run(command, capture_output=True, text=True)
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        print(f"pip-audit failed to run:\n{completed.stderr}", file=sys.stderr)
        return 1
    dependencies = report.get("dependencies", [])
    vulnerable = [d for d in dependencies if d.get("vulns")]
    unchecked = [d for d in dependencies if "skip_reason" in d]
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions", [])) or "no fixed version"
            print(f"pip-audit: {dependency['name']} {dependency['version']}: {vuln['id']} (fixed in {fixed})")
    checked = len(dependencies) - len(unchecked)
    print(f"pip-audit: {checked} of {len(dependencies)} installed packages checked, {len(vulnerable)} with known vulnerabilities"
          + (f", ignored: {' '.join(ignored)}" if ignored else ""))
    if vulnerable:
        return 1
    if unchecked:
        print(f"pip-audit: NOT CHECKED: {len(unchecked)} packages could not be looked up "
              f"(e.g. {unchecked[0]['skip_reason']}). This machine cannot reach PyPI's vulnerability data; "
              f"run `AUDIT_STRICT=1 make audit` where it can.")
        return 1 if os.environ.get("AUDIT_STRICT") == "1" else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
