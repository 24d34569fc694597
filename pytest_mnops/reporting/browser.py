"""report.html in headless Chromium: the DOM after pytest-html's scripts ran, and a screenshot.

The project's own tests read the report through it, and it makes the report sample in docs/:

    python -m pytest_mnops.reporting.browser report.html docs/images/report-sample.png
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from pytest_mnops.errors import ConfigError

# Headless, offline and stateless: nothing phones home, nothing is kept between runs.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
TIMEOUT_S = 120.0
WIDTH = 1400


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise ConfigError(
        "no Chromium on PATH (looked for chromium, chromium-browser, google-chrome). "
        "Fix: apt-get install chromium (scripts/setup.sh does)."
    )


def _run(page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="mnops-chromium-") as profile:
        argv = [chromium(), *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise ConfigError(f"chromium failed on {page} (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return done


def dump_dom(page: Path) -> str:
    """The page's DOM as serialised after its scripts ran (pytest-html builds its table in JavaScript)."""
    return _run(page, "--dump-dom").stdout


def screenshot(page: Path, png: Path, *, height: int = 3000) -> Path:
    """A PNG of the top ``height`` pixels of the page, ``WIDTH`` wide."""
    png.parent.mkdir(parents=True, exist_ok=True)
    _run(page, f"--screenshot={png.resolve()}", f"--window-size={WIDTH},{height}")
    if not png.is_file():
        raise ConfigError(f"chromium wrote no screenshot of {page} to {png}")
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="a pytest-html report (report.html)")
    parser.add_argument("png", type=Path, help="where to write the screenshot")
    parser.add_argument("--height", type=int, default=3000, help="pixels of the page to capture")
    args = parser.parse_args(argv)
    print(screenshot(args.report, args.png, height=args.height))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
