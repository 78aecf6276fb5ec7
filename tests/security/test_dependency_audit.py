"""scripts/dependency_audit.py: the fallback that checks packages through PyPI's project JSON.

PyPI's project JSON lists the vulnerabilities of the project's latest release only, so a
package is checked from it only when installed at that release; anything else must come out
NOT CHECKED, never clean.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location(
    "dependency_audit", Path(__file__).resolve().parents[2] / "scripts" / "dependency_audit.py")
audit = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = audit  # dataclasses resolve annotations through it
spec.loader.exec_module(audit)


def project(latest, vulns=(), releases=()):
    return {"info": {"version": latest}, "vulnerabilities": list(vulns),
            "releases": {v: [] for v in (*releases, latest)}}


def test_latest_release_is_checked_and_its_vulnerabilities_reported():
    vuln = {"id": "GHSA-aaaa", "aliases": ["CVE-2026-1"], "fixed_in": ["2.0.1"], "withdrawn": None}
    lookup = audit.lookup_latest("pkg", "2.0.0", [], fetch=lambda name: project("2.0.0", [vuln]))
    assert lookup.unchecked_reason == ""
    assert [v["id"] for v in lookup.vulns] == ["GHSA-aaaa"]


def test_latest_release_without_vulnerabilities_is_clean():
    lookup = audit.lookup_latest("pkg", "2.0", [], fetch=lambda name: project("2.0.0"))
    assert (lookup.unchecked_reason, lookup.vulns) == ("", [])


def test_withdrawn_and_ignored_advisories_do_not_count():
    vulns = [{"id": "GHSA-gone", "aliases": [], "withdrawn": "2026-01-01T00:00:00Z"},
             {"id": "PYSEC-1", "aliases": ["CVE-2026-2"], "withdrawn": None}]
    lookup = audit.lookup_latest("pkg", "1.0", ["CVE-2026-2"], fetch=lambda name: project("1.0", vulns))
    assert lookup.vulns == []
    assert lookup.unchecked_reason == ""


def test_an_older_release_is_not_checked_even_when_the_latest_is_clean():
    lookup = audit.lookup_latest("django", "5.2.20", [],
                                 fetch=lambda name: project("6.1.3", releases=["5.2.19", "5.2.20", "6.0"]))
    assert lookup.vulns == []
    assert "not the latest release (6.1.3); it is the newest 5.2.x" in lookup.unchecked_reason


def test_an_older_release_that_is_not_the_newest_of_its_series_says_only_that_it_is_old():
    lookup = audit.lookup_latest("pkg", "4.4.3", [], fetch=lambda name: project("4.4.6", releases=["4.4.3"]))
    assert lookup.unchecked_reason.startswith("not the latest release (4.4.6),")


@pytest.mark.parametrize("error", [OSError("connection refused"), ValueError("not JSON")])
def test_a_failed_lookup_is_not_checked(error):
    def fetch(name):
        raise error

    lookup = audit.lookup_latest("pkg", "1.0", [], fetch=fetch)
    assert lookup.vulns == []
    assert lookup.unchecked_reason.startswith("PyPI lookup failed")
