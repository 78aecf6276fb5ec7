#!/usr/bin/env python3
"""Install the Debian packages the test suite needs, when missing.

PostgreSQL and Redis are installed by ``scripts/testenv.py`` when it has to start them.
This installs Chromium for the browser tests (Playwright drives Debian's Chromium: Playwright's
own browser download cannot be used here). As root with apt-get it installs what is missing;
otherwise it prints what to install and exits 2.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

PACKAGES = {
    # package: a file that proves it is installed
    "chromium": "/usr/bin/chromium",
}


def main() -> int:
    missing = [package for package, path in PACKAGES.items() if not os.path.exists(path)]
    if not missing:
        return 0
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print(f"system_deps: please install: {' '.join(missing)} (e.g. sudo apt-get install {' '.join(missing)})", file=sys.stderr)
        return 2
    print(f"system_deps: installing {' '.join(missing)} with apt-get", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)
    still_missing = [package for package in missing if not os.path.exists(PACKAGES[package])]
    if still_missing:
        print(f"system_deps: could not install {' '.join(still_missing)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
