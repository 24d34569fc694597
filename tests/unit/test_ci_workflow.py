"""The GitHub Actions workflow (.github/workflows/mnops.yml) is well formed and runs what docs/ci-gating.md says.

Static checks, no network and no runner: the YAML's shape, pinned actions, no secret or event text pasted
into shell, and every pytest command it runs (directly, or through a Makefile target) parsed by a real pytest
with this plugin loaded, so a renamed ``--mnops-*`` option or a typo fails here rather than in CI.
"""

from __future__ import annotations

import argparse
import re
import shlex
import tomllib
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_mnops.drills import CATEGORIES
from pytest_mnops.markers import MARKERS
from pytest_mnops.options import BY_NAME, OPTIONS
from pytest_mnops.sandbox.binaries import DEBIAN_BINARIES

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "mnops.yml"
MAKEFILE = ROOT / "Makefile"
Job = dict[str, Any]
Step = dict[str, Any]
Run = tuple[str, dict[str, Any], list[str]]  # (where, environment, pytest arguments)

# owner/repo[/path]@vN[.N[.N]] or @<40-hex commit>: a moving branch (@main) is not a pin.
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(?:/[\w./-]+)?@(?:v\d+(?:\.\d+){0,2}|[0-9a-f]{40})$")
# KWOK v0.8.0's go.mod says `go 1.26.0`: older Go cannot build the sandbox.
MIN_GO = (1, 26)
REPORT_OPTIONS = ("--junitxml", "--html", "--mnops-report-json")  # options naming a report file
# pytest options (besides the plugin's) whose value may follow as the next word.
VALUE_OPTIONS = {
    "-m",
    "-k",
    "-o",
    "-p",
    "-c",
    "--drill",
    "--junitxml",
    "--junit-xml",
    "--html",
    "--css",
    "--rootdir",
    "--basetemp",
    "--maxfail",
    "-n",
}
# MNOPS_* variables read elsewhere than the options (secrets CLI, sandbox binaries and cache, assets).
OTHER_MNOPS_ENV = {"MNOPS_GITHUB_TOKEN", "MNOPS_SANDBOX_BIN", "MNOPS_CACHE_DIR", "MNOPS_ASSETS_DIR"}
SHELL_KEYWORDS = {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}"}
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
SHELL_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


# -- the workflow and the Makefile ---------------------------------------------------------------------------


@cache
def workflow() -> dict[Any, Any]:
    assert WORKFLOW.is_file(), f"{WORKFLOW.relative_to(ROOT)} is missing. Fix: restore the CI workflow."
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict), f"{WORKFLOW.name}: the top level is not a mapping"
    return data


def triggers(data: dict[Any, Any]) -> Any:
    # PyYAML (YAML 1.1) reads the bare key `on` as the boolean True; GitHub reads it as "on".
    return data.get("on", data.get(True))


def jobs() -> dict[str, Job]:
    return workflow().get("jobs") or {}


def steps(job: Job) -> list[Step]:
    return job.get("steps") or []


def action(step: Step) -> str:
    return str(step.get("uses", "")).split("@", 1)[0]


def step_name(job_id: str, index: int, step: Step) -> str:
    return f"jobs.{job_id}.steps[{index}] ({step.get('name') or step.get('uses') or 'run'})"


@cache
def make_recipes() -> dict[str, tuple[str, ...]]:
    """Makefile target -> its recipe lines, continuations joined and make variables expanded."""
    text = MAKEFILE.read_text().replace("\\\n", " ")
    variables = dict(re.findall(r"^(\w+)\s*[?:]?=\s*(.*)$", text, re.MULTILINE))
    recipes: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if target := re.match(r"^([\w.-]+)\s*:(?!=)", line):
            current = recipes.setdefault(target.group(1), [])
        elif line.startswith("\t") and current is not None:
            expanded = line.strip()
            for _ in range(3):  # variables made of variables
                expanded = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m.group(1), m.group(0)), expanded)
            current.append(expanded)
        elif line.strip() and not line.startswith("#"):
            current = None
    return {target: tuple(lines) for target, lines in recipes.items()}


def env_of(job: Job, step: Step) -> dict[str, Any]:
    return {**(workflow().get("env") or {}), **(job.get("env") or {}), **(step.get("env") or {})}


def static_value(value: Any) -> str | None:
    """A value known before the run: a literal, or the literal fallback of ``${{ x || 'literal' }}``."""
    text = str(value)
    match = EXPRESSION.fullmatch(text.strip())
    if match is None:
        return None if "${{" in text else text
    fallback = re.search(r"\|\|\s*'([^']*)'\s*$", match.group(1).strip())
    return fallback.group(1) if fallback else None


# -- shell commands -----------------------------------------------------------------------------------------


def shell_commands(script: str) -> Iterator[list[str]]:
    """Simple commands of a shell script as argv lists (heredoc bodies, comments, redirections left out)."""
    heredoc: str | None = None
    for line in script.replace("\\\n", " ").splitlines():
        if heredoc is not None:
            if line.strip() == heredoc:
                heredoc = None
            continue
        if marker := re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line):
            heredoc = marker.group(1)
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            words = list(lexer)
        except ValueError:
            continue
        command: list[str] = []
        redirect = False
        for word in words:
            if redirect:
                redirect = False
            elif word and set(word) <= set(";|&()"):  # ; | || && & ( ): the command ends
                if command:
                    yield command
                command = []
            elif word and set(word) <= set("<>&"):  # > >> < <<: the next word is its target
                redirect = True
            elif command or word not in SHELL_KEYWORDS:
                command.append(word)
        if command:
            yield command


def pytest_args(argv: list[str]) -> list[str] | None:
    """The arguments after ``pytest`` / ``python -m pytest``, or None when argv does not run pytest."""
    for index, word in enumerate(argv):
        if word == "pytest" or word.endswith("/pytest"):
            return argv[index + 1 :]
        if word == "-m" and argv[index + 1 : index + 2] == ["pytest"]:
            return argv[index + 2 :]
    return None


def make_targets(argv: list[str]) -> list[str]:
    if argv[:1] != ["make"]:
        return []
    return [word for word in argv[1:] if not word.startswith("-") and "=" not in word]


def workflow_commands() -> Iterator[tuple[str, str, Job, Step, list[str]]]:
    """(where, job id, job, step, argv) of every command the workflow's run steps execute."""
    for job_id, job in jobs().items():
        for index, step in enumerate(steps(job)):
            for argv in shell_commands(str(step.get("run", ""))):
                yield step_name(job_id, index, step), job_id, job, step, argv


def pytest_runs(job_id: str | None = None) -> list[Run]:
    """Every pytest run of the workflow (or of one job): in run steps, and in the make targets they call."""
    runs = []
    for where, owner, job, step, argv in workflow_commands():
        if job_id is not None and owner != job_id:
            continue
        env = env_of(job, step)
        if (args := pytest_args(argv)) is not None:
            runs.append((where, env, args))
        for target in make_targets(argv):
            for recipe in make_recipes().get(target, ()):
                for command in shell_commands(recipe):
                    if (args := pytest_args(command)) is not None:
                        runs.append((f"{where} -> make {target}", env, args))
    return runs


def split_options(args: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(options with their values, positional paths, -m expressions) of a pytest argument list."""
    takes_value = VALUE_OPTIONS | {o.cli for o in OPTIONS if not o.flag}
    options: list[str] = []
    paths: list[str] = []
    marks: list[str] = []
    words = iter(args)
    for word in words:
        if not word.startswith("-"):
            paths.append(word)
            continue
        options.append(word)
        if word in takes_value:
            value = next(words, "")
            options.append(value)
            if word == "-m":
                marks.append(value)
    return options, paths, marks


def option_value(args: list[str], name: str) -> str | None:
    for index, word in enumerate(args):
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
        if word == name and index + 1 < len(args):
            return args[index + 1]
    return None


def expand(word: str, env: dict[str, Any]) -> str | None:
    """``$VAR`` / ``${VAR}`` replaced from the step's environment; None when a value is not known statically."""
    unknown = False

    def value(match: re.Match[str]) -> str:
        nonlocal unknown
        name = match.group(1) or match.group(2)
        found = static_value(env[name]) if name in env else None
        unknown = unknown or found is None
        return found or ""

    expanded = SHELL_VAR.sub(value, word)
    return None if unknown else expanded


def registered_markers() -> set[str]:
    names = {marker.split("(", 1)[0] for marker in MARKERS} | set(CATEGORIES)
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    return names | {marker.split(":", 1)[0].split("(", 1)[0].strip() for marker in ini.get("markers", [])}


def job_running(predicate: Callable[[list[str]], bool], what: str) -> str:
    for _, job_id, _, _, argv in workflow_commands():
        if predicate(argv):
            return job_id
    pytest.fail(f"{WORKFLOW.name}: no job runs {what}. Fix: see docs/ci-gating.md for the two jobs.")


# -- structure ------------------------------------------------------------------------------------------------


def test_workflow_has_triggers_jobs_and_least_privilege() -> None:
    data = workflow()
    on = triggers(data)
    assert on, f"{WORKFLOW.name}: no `on:` triggers. Fix: run on push and pull_request at least."
    events = {on} if isinstance(on, str) else set(on)
    assert {"push", "pull_request"} <= events, (
        f"{WORKFLOW.name}: triggers {sorted(events)} miss push or pull_request, so changes are not gated."
    )
    assert jobs(), f"{WORKFLOW.name}: no jobs"
    assert data.get("permissions") == {"contents": "read"}, (
        f"{WORKFLOW.name}: top-level permissions are {data.get('permissions')!r}. Fix: `contents: read`, and "
        "grant more (checks: write) per job, only where a step needs it."
    )


@pytest.mark.parametrize("job_id", list(jobs()))
def test_each_job_has_a_runner_a_timeout_and_steps(job_id: str) -> None:
    job = jobs()[job_id]
    assert isinstance(job.get("runs-on"), str) and job["runs-on"], f"jobs.{job_id}: no runs-on"
    assert isinstance(job.get("timeout-minutes"), int), (
        f"jobs.{job_id}: no timeout-minutes; a hung cluster would hold the runner for 6 hours. Fix: set one."
    )
    assert steps(job), f"jobs.{job_id}: no steps"
    for index, step in enumerate(steps(job)):
        where = step_name(job_id, index, step)
        assert isinstance(step, dict), f"{where}: not a mapping"
        assert ("uses" in step) != ("run" in step), f"{where}: needs exactly one of `uses:` and `run:`"


def test_every_action_is_pinned_to_a_version() -> None:
    unpinned = [
        f"{step_name(job_id, index, step)}: {step['uses']}"
        for job_id, job in jobs().items()
        for index, step in enumerate(steps(job))
        if "uses" in step and not PINNED.match(str(step["uses"]))
    ]
    assert not unpinned, (
        f"actions not pinned to a version: {'; '.join(unpinned)}. Fix: owner/repo@vN (or a "
        "full commit SHA), never a branch."
    )


def test_no_secret_or_event_text_is_pasted_into_shell() -> None:
    """``${{ secrets.X }}`` or ``${{ github.event... }}`` in ``run:`` is pasted into the script itself (script
    injection, secrets in the process list); such values belong in ``env:``, read as ``"$VAR"``."""
    pasted = [
        f"{step_name(job_id, index, step)}: ${{{{{expression.strip()}}}}}"
        for job_id, job in jobs().items()
        for index, step in enumerate(steps(job))
        for expression in EXPRESSION.findall(str(step.get("run", "")))
        if re.search(r"\b(secrets|github\.event|inputs)\b", expression)
    ]
    assert not pasted, f'expressions in run scripts: {"; ".join(pasted)}. Fix: map them to env: and use "$VAR".'


# -- what the jobs run ------------------------------------------------------------------------------------------


def test_make_targets_exist() -> None:
    missing = [
        f"{where}: make {target}"
        for where, _, _, _, argv in workflow_commands()
        for target in make_targets(argv)
        if target not in make_recipes()
    ]
    assert not missing, f"the workflow runs make targets the Makefile lacks: {'; '.join(missing)}"


def test_pytest_commands_use_existing_options_markers_and_paths() -> None:
    runs = pytest_runs()
    assert runs, f"{WORKFLOW.name} runs no pytest command, directly or through make"
    markers = registered_markers()
    problems = []
    for where, _, args in runs:
        options, paths, marks = split_options(args)
        for word in options:
            name = word.split("=", 1)[0]
            if name.startswith("--mnops-") and name.removeprefix("--mnops-") not in BY_NAME:
                problems.append(f"{where}: {name} is not an option in pytest_mnops/options.py")
        for expression in marks:
            unknown = set(re.findall(r"[A-Za-z_]\w*", expression)) - {"and", "or", "not"} - markers
            problems += [f"{where}: -m {expression!r}: marker {name!r} is not registered" for name in sorted(unknown)]
        problems += [
            f"{where}: path {path} does not exist" for path in paths if "$" not in path and not (ROOT / path).exists()
        ]
    assert not problems, "; ".join(problems)


def test_pytest_commands_parse(mnops_pytester: pytest.Pytester) -> None:
    """The real parser, with this plugin and pytest-html loaded: an unknown option or a bad value fails."""
    for where, env, args in pytest_runs():
        options, _, _ = split_options(args)
        known = [word for option in options if (word := expand(option, env)) is not None]
        result = mnops_pytester.runpytest(*known, "--collect-only", "-q")
        assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, (
            f"{where}: `pytest {shlex.join(known)}` does not parse:\n{result.stderr.str()}"
        )


def test_mnops_environment_variables_are_options() -> None:
    """``MNOPS_<NAME>`` is ``--mnops-<name>``: a misspelt variable would be ignored without a word."""
    by_env = {option.env: option for option in OPTIONS}
    scopes: list[tuple[str, dict[str, Any]]] = [("env", workflow().get("env") or {})]
    for job_id, job in jobs().items():
        scopes.append((f"jobs.{job_id}.env", job.get("env") or {}))
        scopes += [(f"{step_name(job_id, i, step)}.env", step.get("env") or {}) for i, step in enumerate(steps(job))]
    problems = []
    for where, env in scopes:
        for name, value in env.items():
            if not str(name).startswith("MNOPS_"):
                continue
            if name not in by_env:
                if name not in OTHER_MNOPS_ENV:
                    problems.append(f"{where}: {name} is no --mnops-* option's variable, nor another known one")
                continue
            literal = static_value(value)
            if literal:
                try:
                    by_env[name].parse(literal)
                except (argparse.ArgumentTypeError, ValueError) as exc:
                    problems.append(f"{where}: {name}={literal!r} is not a valid {by_env[name].cli}: {exc}")
    assert not problems, "; ".join(problems)


def test_validation_job_runs_the_suite_against_the_kubeconfig_secret() -> None:
    job_id = job_running(lambda argv: "suites/validation" in (pytest_args(argv) or []), "pytest suites/validation")
    args = next(args for _, _, args in pytest_runs(job_id) if "suites/validation" in args)
    assert option_value(args, "-m") == "validation", f"jobs.{job_id}: the suite must run with -m validation"
    assert option_value(args, "--junitxml") == "validation.xml", f"jobs.{job_id}: no --junitxml=validation.xml"
    text = yaml.safe_dump(jobs()[job_id])
    assert "secrets.KUBECONFIG_DATA" in text and "base64" in text, (
        f"jobs.{job_id}: the cluster must come from the base64 secret KUBECONFIG_DATA (docs/ci-gating.md)"
    )


def test_drills_job_runs_make_drills_with_go_packages_and_a_gate() -> None:
    job_id = job_running(lambda argv: make_targets(argv)[:1] == ["drills"], "make drills")
    job = jobs()[job_id]
    assert str(job["runs-on"]).startswith("ubuntu-"), f"jobs.{job_id}: the sandbox needs an Ubuntu runner"
    go = [step for step in steps(job) if action(step) == "actions/setup-go"]
    assert go, f"jobs.{job_id}: no actions/setup-go step; the sandbox binaries are built with Go"
    version = tuple(int(part) for part in str(go[0]["with"]["go-version"]).split(".")[:2])
    assert version >= MIN_GO, f"jobs.{job_id}: Go {version} is older than {MIN_GO}, which KWOK v0.8.0 needs"
    scripts = " ".join(str(step.get("run", "")) for step in steps(job)).replace("\\\n", " ")
    installs = " ".join(re.findall(r"apt-get install[^\n]*", scripts))
    packages = sorted({package for _, package in DEBIAN_BINARIES.values()})
    missing = [package for package in packages if not re.search(rf"(?<![\w-]){re.escape(package)}(?![\w-])", installs)]
    assert not missing, f"jobs.{job_id}: apt-get install lacks {', '.join(missing)} (binaries.DEBIAN_BINARIES)"
    gated = [
        where
        for where, env, args in pytest_runs(job_id)
        if option_value(args, "--mnops-fail-under") is not None or env.get("MNOPS_FAIL_UNDER")
    ]
    assert gated, (
        f"jobs.{job_id}: the drills run without --mnops-fail-under (or MNOPS_FAIL_UNDER), so a weak "
        "resilience score would pass. Fix: set the gate."
    )


def reports_of(job_id: str) -> set[str]:
    runs = pytest_runs(job_id)
    return {option_value(args, option) for _, _, args in runs for option in REPORT_OPTIONS} - {None}


def test_some_job_writes_reports() -> None:
    assert any(reports_of(job_id) for job_id in jobs()), "no job writes a JUnit/HTML report. Fix: add one."


@pytest.mark.parametrize("job_id", [job_id for job_id in jobs() if reports_of(job_id)])
def test_reports_are_uploaded_and_the_junit_published(job_id: str) -> None:
    reports = reports_of(job_id)
    job = jobs()[job_id]
    uploads = [step for step in steps(job) if action(step) == "actions/upload-artifact"]
    uploaded = {line.strip() for step in uploads for line in str(step["with"]["path"]).splitlines()}
    assert reports <= uploaded, (
        f"jobs.{job_id}: {sorted(reports - uploaded)} written but not uploaded. Fix: add "
        "them to an actions/upload-artifact step."
    )
    late = [str(step["with"].get("name")) for step in uploads if "always()" not in str(step.get("if", ""))]
    assert not late, (
        f"jobs.{job_id}: uploads {late} run only after success, but reports matter most when the "
        "run failed. Fix: `if: always()`."
    )
    junit = {option_value(args, "--junitxml") for _, _, args in pytest_runs(job_id)} - {None}
    published = {
        str(step["with"]["path"])
        for step in steps(job)
        if action(step) == "dorny/test-reporter" and "always()" in str(step.get("if", ""))
    }
    assert junit <= published, (
        f"jobs.{job_id}: JUnit {sorted(junit - published)} is not published by a "
        "dorny/test-reporter step with `if: always()`"
    )
