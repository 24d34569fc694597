"""``python -m pytest_mnops.cli``: the `mnops` console script without its entry point (tests, a bare checkout)."""

import sys

from pytest_mnops.cli import main

sys.exit(main())
