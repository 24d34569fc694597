"""Loopback stand-ins for what cannot exist offline; each speaks the real protocol (see docs/sandbox.md).

Every stand-in is a server class that tests start in-process on port 0, and a ``main()`` that the sandbox
runs as a process (``python -m pytest_mnops.standins.<name> --state-dir DIR``) on its fixed port.
"""
