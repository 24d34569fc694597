"""``python -m pytest_mnops.standins.github --state-dir DIR``: the sandbox's GitHub stand-in process."""

import sys

from pytest_mnops.standins.github.process import main

sys.exit(main())
