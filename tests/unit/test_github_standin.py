"""The GitHub stand-in speaks the contract real PyGithub uses, with a real key pair, faults and auth."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from github import Auth, BadCredentialsException, Github, GithubException, UnknownObjectException
from nacl.public import PrivateKey, PublicKey, SealedBox

from pytest_mnops.errors import ConfigError
from pytest_mnops.standins.github import DEFAULT_REPO, DEFAULT_TOKEN, GitHubStandIn

TOKEN = "test-token-1"
REPO = DEFAULT_REPO


@pytest.fixture
def standin() -> Iterator[GitHubStandIn]:
    with GitHubStandIn(token=TOKEN) as server:
        yield server


@pytest.fixture
def gh(standin: GitHubStandIn) -> Iterator[Github]:
    client = Github(
        base_url=standin.url,
        auth=Auth.Token(TOKEN),
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )
    yield client
    client.close()


def _api(
    standin: GitHubStandIn,
    method: str,
    path: str,
    *,
    token: str | None = TOKEN,
    scheme: str = "token",
    json: Any = None,
) -> requests.Response:
    headers = {"Authorization": f"{scheme} {token}"} if token else {}
    return requests.request(method, f"{standin.url}{path}", headers=headers, json=json, timeout=5)


def test_repository_json_satisfies_pygithub(gh: Github, standin: GitHubStandIn) -> None:
    repo = gh.get_repo(REPO)
    assert (repo.full_name, repo.name, repo.owner.login) == (REPO, "machine-native-ops", "machinenativeops")
    assert repo.id > 0 and repo.private
    assert repo.url == f"{standin.url}/repos/{REPO}"  # PyGithub builds every later URL from this one
    # GitHub matches owner/name case-insensitively; the seed document spells it MachineNativeOps.
    assert gh.get_repo("MachineNativeOps/machine-native-ops").full_name == REPO


def test_pygithub_reads_the_environment_before_its_secrets(gh: Github, standin: GitHubStandIn) -> None:
    env = gh.get_repo(REPO).get_environment("staging")
    env.create_secret("API_TOKEN", "s3-staging")
    paths = [(method, path) for method, path, _ in standin.requests]
    assert paths == [
        ("GET", f"/repos/{REPO}"),
        ("GET", f"/repos/{REPO}/environments/staging"),
        ("GET", f"/repos/{REPO}/environments/staging/secrets/public-key"),
        ("PUT", f"/repos/{REPO}/environments/staging/secrets/API_TOKEN"),
    ]
    assert env.name == "staging"


def test_unknown_repository_and_environment_are_404(gh: Github) -> None:
    with pytest.raises(UnknownObjectException):
        gh.get_repo("someone/else")
    with pytest.raises(UnknownObjectException):
        gh.get_repo(REPO).get_environment("qa")


def test_round_trip_decrypts_with_the_scope_private_key(gh: Github, standin: GitHubStandIn) -> None:
    repo = gh.get_repo(REPO)
    repo.create_secret("API_TOKEN", "repo-value")
    repo.get_environment("production").create_secret("API_TOKEN", "prod-value")
    assert standin.decrypted(REPO, "API_TOKEN") == "repo-value"
    assert standin.decrypted(REPO, "API_TOKEN", environment="production") == "prod-value"
    assert standin.decrypted(REPO, "API_TOKEN", environment="staging") is None


def test_each_scope_has_its_own_real_curve25519_key(standin: GitHubStandIn) -> None:
    repo_key = _api(standin, "GET", f"/repos/{REPO}/actions/secrets/public-key").json()
    staging = _api(standin, "GET", f"/repos/{REPO}/environments/staging/secrets/public-key").json()
    production = _api(standin, "GET", f"/repos/{REPO}/environments/production/secrets/public-key").json()
    assert len({repo_key["key"], staging["key"], production["key"]}) == 3
    assert len({repo_key["key_id"], staging["key_id"], production["key_id"]}) == 3
    assert len(base64.b64decode(staging["key"])) == 32
    # A value sealed for staging's key is refused by production: the keys are not interchangeable.
    sealed = base64.b64encode(SealedBox(PublicKey(base64.b64decode(staging["key"]))).encrypt(b"v")).decode()
    refused = _api(
        standin,
        "PUT",
        f"/repos/{REPO}/environments/production/secrets/X",
        json={"encrypted_value": sealed, "key_id": production["key_id"]},
    )
    assert refused.status_code == 422


def test_put_is_201_then_204_and_rejects_bad_key_id_or_box(standin: GitHubStandIn) -> None:
    key = _api(standin, "GET", f"/repos/{REPO}/actions/secrets/public-key").json()
    sealed = base64.b64encode(SealedBox(PublicKey(base64.b64decode(key["key"]))).encrypt(b"one")).decode()
    url = f"/repos/{REPO}/actions/secrets/DB_PASSWORD"
    body = {"encrypted_value": sealed, "key_id": key["key_id"]}
    assert _api(standin, "PUT", url, json=body).status_code == 201
    assert _api(standin, "PUT", url, json=body).status_code == 204
    wrong_id = _api(standin, "PUT", url, json={"encrypted_value": sealed, "key_id": "123"})
    assert wrong_id.status_code == 422 and "key_id" in wrong_id.json()["message"]
    foreign = SealedBox(PrivateKey.generate().public_key).encrypt(b"two")
    not_ours = _api(
        standin, "PUT", url, json={"encrypted_value": base64.b64encode(foreign).decode(), "key_id": key["key_id"]}
    )
    assert not_ours.status_code == 422
    assert _api(standin, "PUT", url, json={"key_id": key["key_id"]}).status_code == 422
    assert _api(standin, "PUT", f"/repos/{REPO}/actions/secrets/GITHUB_X", json=body).status_code == 422
    assert standin.decrypted(REPO, "DB_PASSWORD") == "one"


def test_list_get_delete_through_pygithub(standin: GitHubStandIn) -> None:
    for name in ("A_ONE", "B_TWO", "C_THREE"):
        standin.seed_secret(REPO, name, "x")
    # per_page=1 makes PyGithub follow the Link header across three pages.
    with Github(
        base_url=standin.url,
        auth=Auth.Token(TOKEN),
        retry=None,
        per_page=1,
        seconds_between_requests=None,
        seconds_between_writes=None,
    ) as client:
        repo = client.get_repo(REPO)
        assert [s.name for s in repo.get_secrets()] == ["A_ONE", "B_TWO", "C_THREE"]
        assert repo.get_secret("B_TWO").updated_at.tzinfo is not None
        assert repo.delete_secret("B_TWO") is True
        with pytest.raises(UnknownObjectException):
            repo.get_secret("B_TWO")
    assert _api(standin, "DELETE", f"/repos/{REPO}/actions/secrets/B_TWO").status_code == 404


def test_token_auth_accepts_token_and_bearer_only(standin: GitHubStandIn) -> None:
    path = f"/repos/{REPO}"
    assert _api(standin, "GET", path).status_code == 200
    assert _api(standin, "GET", path, scheme="Bearer").status_code == 200
    missing = _api(standin, "GET", path, token=None)
    assert missing.status_code == 401 and missing.json()["message"] == "Requires authentication"
    assert _api(standin, "GET", path, token="nope").json()["message"] == "Bad credentials"
    with (
        Github(base_url=standin.url, auth=Auth.Token("nope"), retry=None) as client,
        pytest.raises(BadCredentialsException),
    ):
        client.get_repo(REPO)


def test_fail_next_serves_errors_then_recovers(standin: GitHubStandIn) -> None:
    standin.faults.fail_next(2, status=503, method="PUT")
    assert _api(standin, "GET", f"/repos/{REPO}").status_code == 200  # not a PUT: untouched
    url = f"/repos/{REPO}/actions/secrets/X"
    statuses = [_api(standin, "PUT", url, json={}).status_code for _ in range(3)]
    assert statuses == [503, 503, 422]


def test_rate_limit_next_sends_githubs_headers(gh: Github, standin: GitHubStandIn) -> None:
    standin.faults.rate_limit_next(1, reset_in_s=1)
    limited = _api(standin, "GET", f"/repos/{REPO}")
    assert limited.status_code == 403
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.headers["Retry-After"] == "1"
    assert 0 < int(limited.headers["X-RateLimit-Reset"]) - time.time() <= 2
    standin.faults.rate_limit_next(1)
    with pytest.raises(GithubException) as caught:  # PyGithub classifies it as a rate limit
        gh.get_repo(REPO)
    assert type(caught.value).__name__ == "RateLimitExceededException"
    assert _api(standin, "GET", f"/repos/{REPO}").headers["X-RateLimit-Remaining"] != "0"


def test_faults_can_be_driven_over_http(standin: GitHubStandIn) -> None:
    control = f"{standin.url}/_standin/faults"
    assert requests.post(control, json={"fail_next": 1, "status": 500}, timeout=5).status_code == 204
    assert _api(standin, "GET", f"/repos/{REPO}").status_code == 500
    assert requests.post(control, json={"rate_limit_next": 5, "reset_in_s": 0}, timeout=5).status_code == 204
    assert requests.post(control, json={"clear": True}, timeout=5).status_code == 204
    assert _api(standin, "GET", f"/repos/{REPO}").status_code == 200
    refused = requests.post(control, json={"explode": 1}, timeout=5)
    assert refused.status_code == 400 and "Fix:" in refused.json()["message"]
    with pytest.raises(ConfigError, match=r"400\.\.599"):
        standin.faults.fail_next(1, status=200)


def test_request_log_has_no_bodies_and_skips_health(gh: Github, standin: GitHubStandIn) -> None:
    assert requests.get(f"{standin.url}/healthz", timeout=5).json() == {"status": "ok"}
    gh.get_repo(REPO).create_secret("API_TOKEN", "never-in-the-log")
    assert all(len(entry) == 3 for entry in standin.requests)
    assert "never-in-the-log" not in repr(standin.requests) + repr(standin)
    assert not any(path == "/healthz" for _, path, _ in standin.requests)


def test_inspection_names_unknown_repositories(standin: GitHubStandIn) -> None:
    with pytest.raises(ConfigError, match="no repository 'a/b'"):
        standin.decrypted("a/b", "X")
    with pytest.raises(ConfigError, match="no environment 'qa'"):
        standin.seed_secret(REPO, "X", "v", environment="qa")


def _free_port_base() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return port - 16  # Ports.github is base + 16


def test_main_serves_the_sandbox_port(tmp_path: Path) -> None:
    base = _free_port_base()
    (tmp_path / "sandbox.json").write_text(json.dumps({"state_dir": str(tmp_path), "port_base": base}))
    env = {**os.environ, "MNOPS_GITHUB_TOKEN": ""}  # empty: the fixed sandbox token applies
    argv = [sys.executable, "-m", "pytest_mnops.standins.github", "--state-dir", str(tmp_path)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{base + 16}"
        deadline = time.monotonic() + 10
        while True:
            try:
                requests.get(f"{url}/healthz", timeout=1).raise_for_status()
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "stand-in did not come up"
                time.sleep(0.05)
        auth = {"Authorization": f"token {DEFAULT_TOKEN}"}
        reply = requests.get(f"{url}/repos/{REPO}", headers=auth, timeout=5)
        assert reply.json()["full_name"] == REPO
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0  # SIGTERM is a clean stop


def test_main_without_sandbox_settings_says_how_to_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_mnops.standins.github import main

    assert main(["--state-dir", str(tmp_path)]) == 2
    assert "mnops sandbox up" in capsys.readouterr().err
