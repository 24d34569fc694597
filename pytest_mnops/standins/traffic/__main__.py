"""``python -m pytest_mnops.standins.traffic --state-dir DIR``: the sandbox's traffic stand-in process."""

from pytest_mnops.standins.traffic.process import main

main()
