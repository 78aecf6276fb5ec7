"""pip-audit over the installed environment, with an honest answer when it cannot check.

Every installed package (editable installs aside: that is this project) is looked up in
PyPI's vulnerability data, first by pip-audit, which asks PyPI's per-release JSON
(``/pypi/<name>/<version>/json``). Where that is not reachable — our CI sandbox reaches
PyPI's project pages but not its per-release ones — each package pip-audit skipped is looked
up in PyPI's *project* JSON (``/pypi/<name>/json``), which carries the vulnerabilities of the
project's latest release only: a package installed at its latest release is checked from
it; any other package stays NOT CHECKED, by name. Outcomes:

* a known vulnerability not on the ignore list (``PIP_AUDIT_IGNORE``, ids separated by
  spaces; each needs a reason in docs/security.md) -> exit 1, listing them;
* every package checked, nothing found -> exit 0;
* packages that could not be checked -> a loud ``NOT CHECKED`` line naming them, and exit 0
  — or exit 1 with ``AUDIT_STRICT=1`` (use it wherever PyPI is fully reachable, e.g. a
  release pipeline). A plain ``pip-audit`` would print "No known vulnerabilities found"
  having checked nothing; this never does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

VENV_BIN = Path(sys.executable).parent
PYPI_URL = os.environ.get("PYPI_URL", "https://pypi.org").rstrip("/")


@dataclass
class Lookup:
    """What PyPI's project JSON says about one installed package."""

    name: str
    version: str
    vulns: list[dict] = field(default_factory=list)
    unchecked_reason: str = ""


def fetch_project(name: str) -> dict:
    """PyPI's project JSON for ``name`` (raises on any failure)."""
    url = f"{PYPI_URL}/pypi/{name}/json"
    with urllib.request.urlopen(url, timeout=20) as response:  # nosec B310 (https, or PYPI_URL set by the operator)
        return json.load(response)


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def lookup_latest(name: str, version: str, ignored: Iterable[str],
                  fetch: Callable[[str], dict] = fetch_project) -> Lookup:
    """Check ``name==version`` against the vulnerabilities PyPI lists for the latest release.

    Only meaningful when ``version`` *is* the latest release; otherwise the package is
    reported unchecked with the reason. Withdrawn advisories and ignored ids (or aliases)
    do not count.
    """
    ignored = set(ignored)
    try:
        project = fetch(name)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        return Lookup(name, version, unchecked_reason=f"PyPI lookup failed: {exc}")
    latest = project.get("info", {}).get("version", "")
    if not _same_version(version, latest):
        return Lookup(name, version, unchecked_reason=f"not the latest release ({latest}){_series_note(version, project)}, "
                                                      f"and PyPI's per-release vulnerability data is unreachable")
    vulns = [v for v in project.get("vulnerabilities") or []
             if not v.get("withdrawn") and not ({v.get("id"), *(v.get("aliases") or [])} & ignored)]
    return Lookup(name, version, vulns=vulns)


def _series_note(version: str, project: dict) -> str:
    """``"; the newest 5.2.x"`` when ``version`` is the newest final release of its minor series.

    Not a vulnerability check, but worth saying: every fix released for that series is in.
    """
    try:
        installed = Version(version)
        series = [v for v in map(_parse, project.get("releases") or {})
                  if v and not v.is_prerelease and v.release[:2] == installed.release[:2]]
    except InvalidVersion:
        return ""
    if series and max(series) == installed:
        return f"; it is the newest {'.'.join(map(str, installed.release[:2]))}.x"
    return ""


def _parse(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def installed_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


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
    findings = [(d["name"], d["version"], v["id"], v.get("fix_versions", []))
                for d in dependencies for v in d.get("vulns", [])]
    skipped = [d["name"] for d in dependencies
               if "skip_reason" in d and "editable" not in d["skip_reason"]]  # editable: this project
    editable = sum(1 for d in dependencies if "editable" in d.get("skip_reason", ""))
    dependencies = [d for d in dependencies if "editable" not in d.get("skip_reason", "")]
    checked_by = {"pip-audit": len(dependencies) - len(skipped), "PyPI project JSON": 0}
    unchecked: list[Lookup] = []
    if skipped:
        with ThreadPoolExecutor(max_workers=8) as pool:
            lookups = list(pool.map(lambda n: lookup_latest(n, installed_version(n), ignored), skipped))
        for lookup in lookups:
            if lookup.unchecked_reason:
                unchecked.append(lookup)
                continue
            checked_by["PyPI project JSON"] += 1
            findings += [(lookup.name, lookup.version, v["id"], v.get("fixed_in", [])) for v in lookup.vulns]
    for name, version, vuln_id, fixed in findings:
        print(f"pip-audit: {name} {version}: {vuln_id} (fixed in {', '.join(fixed) or 'no fixed version'})")
    vulnerable = {canonicalize_name(name) for name, *_ in findings}
    checked = sum(checked_by.values())
    print(f"pip-audit: {checked} of {len(dependencies)} installed packages checked "
          f"({', '.join(f'{n} by {source}' for source, n in checked_by.items() if n)}), "
          f"{len(vulnerable)} with known vulnerabilities" + (f", ignored: {' '.join(ignored)}" if ignored else ""))
    if findings:
        return 1
    if unchecked:
        for lookup in unchecked:
            print(f"pip-audit: NOT CHECKED: {lookup.name} {lookup.version}: {lookup.unchecked_reason}")
        print(f"pip-audit: NOT CHECKED: {len(unchecked)} packages. Run `AUDIT_STRICT=1 make audit` "
              f"where PyPI's per-release data is reachable.")
        return 1 if os.environ.get("AUDIT_STRICT") == "1" else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
