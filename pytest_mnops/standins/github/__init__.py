"""A stand-in for the GitHub REST API's Actions-secrets endpoints, on loopback (named a stand-in in docs).

It speaks the contract PyGithub 2.x uses for repository and environment secrets, and holds a real Curve25519
key pair per repository and per environment: every PUT is opened with the private key, so a round trip
proves the client sealed the value for the right key. Plaintexts stay in memory, are only handed out by
``decrypted()`` (test inspection), and never reach a log, a response or the request log.

In-process: ``with GitHubStandIn(token=...) as gh: Github(base_url=gh.url, ...)``. As a sandbox process:
``python -m pytest_mnops.standins.github --state-dir DIR`` serves on ``settings.ports.github``.

The modules: ``state`` (repositories, scopes and their key pairs, secrets), ``faults`` (injected errors and
rate limits), ``api`` (the REST routes and GitHub's answers), ``handler`` (the HTTP transport), ``server``
(``GitHubStandIn``: lifecycle, request log, test inspection), ``process`` (the sandbox process's ``main``).
"""

from pytest_mnops.names import SANDBOX_GITHUB_REPO as DEFAULT_REPO
from pytest_mnops.names import SANDBOX_GITHUB_TOKEN as DEFAULT_TOKEN
from pytest_mnops.standins.github.faults import Faults
from pytest_mnops.standins.github.process import main
from pytest_mnops.standins.github.server import GitHubStandIn

__all__ = ["DEFAULT_REPO", "DEFAULT_TOKEN", "Faults", "GitHubStandIn", "main"]
