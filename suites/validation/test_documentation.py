"""Documentation: the guides exist, every alert's runbook_url lands on a real heading, the README documents
the very commands CI runs, and the docs' relative links resolve."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from pytest_mnops.observability.rules import RULES_FILE, alert_rules

GUIDES = {
    "docs/team-training-guide.md": "how trainees run the drills (`--mnops-training`)",
    "docs/github-secrets-setup-guide.md": "the GitHub secrets, token scopes and rotation",
    "docs/sandbox.md": "the local sandbox and what is real / simulated in it",
    "docs/runbooks.md": "one section per alert",
    "docs/ci-gating.md": "how CI gates on the suites' JUnit",
    "docs/write-your-own-drill.md": "a team's own drill, end to end: experiment, test, command, guards",
}
MIN_GUIDE_CHARS = 200
README = "README.md"
CI_SCRIPT = ".ci/run"
BLOCK_START, BLOCK_END = "<!-- mnops:commands -->", "<!-- /mnops:commands -->"
FENCE = re.compile(r"^\s*(```|~~~)")
ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
HTML_ANCHOR = re.compile(r"<a\s[^>]*?(?:name|id)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
MD_LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
NOT_PARAGRAPH = ("|", "-", "*", ">")  # a setext underline only makes a heading of paragraph text
BLOB = re.compile(r"^/[^/]+/[^/]+/(?:blob|tree)/[^/]+/(.+)$")


def _outside_code(lines: list[str]) -> list[tuple[int, str]]:
    """(line number, line) of every line that is not inside a fenced code block."""
    kept, fenced = [], False
    for number, line in enumerate(lines, 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            kept.append((number, line))
    return kept


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (not - or _), each space a hyphen."""
    text = INLINE_LINK.sub(r"\1", heading).strip().lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


@cache
def anchors(file: Path) -> frozenset[str]:
    """Every anchor GitHub renders for a Markdown file: heading slugs (repeats get -1, -2...) and <a name>."""
    lines = file.read_text().splitlines()
    found: list[str] = []
    seen: dict[str, int] = {}
    previous = ""
    for _, line in _outside_code(lines):
        heading = None
        if match := ATX.match(line):
            heading = match.group(2)
        elif SETEXT.match(line) and previous.strip() and not previous.lstrip().startswith(NOT_PARAGRAPH):
            heading = previous.strip()
        if heading is not None:
            slug = github_slug(heading)
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.append(slug if count == 0 else f"{slug}-{count}")
        found += HTML_ANCHOR.findall(line)
        previous = line
    return frozenset(found)


def _headings(file: Path) -> list[str]:
    return [m.group(2) for _, line in _outside_code(file.read_text().splitlines()) if (m := ATX.match(line))]


@pytest.fixture
def source_checkout(repo_root: Path, not_applicable: Any) -> Path:
    """These checks read pytest-mnops' own source repository; an installed wheel carries no docs or CI script."""
    if not (repo_root / "docs").is_dir():
        not_applicable(
            f"{repo_root} is an installed pytest-mnops without its docs/, README.md and .ci/run; these checks "
            "run from its source checkout"
        )
    return repo_root


@pytest.mark.validation("documentation", reads="repo")
def test_guides_exist(source_checkout: Path) -> None:
    repo_root = source_checkout
    problems = []
    for guide, content in GUIDES.items():
        file = repo_root / guide
        if not file.is_file():
            problems.append(f"{guide} is missing (it should cover {content})")
        elif len(file.read_text().strip()) < MIN_GUIDE_CHARS or not _headings(file):
            problems.append(
                f"{guide} is a stub (fewer than {MIN_GUIDE_CHARS} characters or no heading; it should cover {content})"
            )
    assert not problems, f"{'; '.join(problems)}. Fix: write the named guide(s) in {repo_root / 'docs'}."


def _runbook_target(url: str, root: Path) -> tuple[Path, str] | str:
    """(file, anchor) a runbook_url points at inside this repository, or why it points elsewhere."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.scheme in ("http", "https"):
        blob = BLOB.match(path) if parts.netloc == "github.com" else None
        if blob is None:
            return "points outside this repository, so it cannot be checked or kept with the rules"
        path = blob.group(1)
    if not path.startswith("docs/"):
        return "does not point into docs/"
    if not parts.fragment:
        return "has no #anchor, so it lands at the top of the file instead of the alert's section"
    return root / path, unquote(parts.fragment)


@pytest.mark.validation("documentation", reads="repo")
def test_runbook_urls_resolve(source_checkout: Path) -> None:
    repo_root = source_checkout
    problems = []
    for rule in alert_rules():
        url = (rule.get("annotations") or {}).get("runbook_url")
        name = rule["alert"]
        if not url:
            problems.append(f"alert {name} has no runbook_url annotation")
            continue
        target = _runbook_target(url, repo_root)
        if isinstance(target, str):
            problems.append(f"alert {name}: runbook_url {url!r} {target}")
            continue
        file, anchor = target
        shown = file.relative_to(repo_root)
        if not file.is_file():
            problems.append(f"alert {name}: runbook_url {url!r} names {shown}, which does not exist")
        elif anchor not in anchors(file):
            problems.append(
                f"alert {name}: runbook_url {url!r}: {shown} has no heading with anchor "
                f"#{anchor} (add the section `## {name}`)"
            )
    assert not problems, (
        f"monitoring/{RULES_FILE}: {'; '.join(problems)}. Fix: keep one section per alert "
        "in docs/runbooks.md headed with the alert's name, and runbook_url "
        "docs/runbooks.md#<alert name in lower case>."
    )


def _commands(text: str) -> list[str]:
    """Command lines: fenced code lines (or every line, without fences), continuations joined, prompts cut."""
    lines = text.splitlines()
    if any(FENCE.match(line) for line in lines):
        inside, fenced = [], False
        for line in lines:
            if FENCE.match(line):
                fenced = not fenced
            elif fenced:
                inside.append(line)
        lines = inside
    commands, current = [], ""
    for raw in lines:
        line = raw.strip()
        if not current and (not line or line.startswith(("#", "<!--"))):
            continue
        line = line.removeprefix("$ ")
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        commands.append(" ".join((current + line).split()))
        current = ""
    if current:
        commands.append(" ".join(current.split()))
    return commands


def _normalised_script(text: str) -> str:
    return " ".join(text.replace("\\\n", " ").split())


@pytest.mark.validation("documentation", reads="repo")
def test_readme_commands_are_what_ci_runs(source_checkout: Path) -> None:
    repo_root = source_checkout
    readme, script = repo_root / README, repo_root / CI_SCRIPT
    missing = [str(p.relative_to(repo_root)) for p in (readme, script) if not p.is_file()]
    assert not missing, (
        f"{' and '.join(missing)} missing: the README must document the commands "
        f"{CI_SCRIPT} runs. Fix: add {' and '.join(missing)}."
    )
    text = readme.read_text()
    start, end = text.find(BLOCK_START), text.find(BLOCK_END)
    assert 0 <= start < end, (
        f"{README} has no {BLOCK_START} ... {BLOCK_END} block. Fix: wrap the commands "
        f"users run (the same ones {CI_SCRIPT} runs) in those two comments."
    )
    commands = _commands(text[start + len(BLOCK_START) : end])
    assert commands, f"{README}: the {BLOCK_START} block holds no command. Fix: put them in a code block."
    ci = _normalised_script(script.read_text())
    absent = [c for c in commands if c not in ci]
    shown = "; ".join(f"`{c}`" for c in absent)
    assert not absent, (
        f"{README}: command(s) {shown} of the {BLOCK_START} block do not appear in "
        f"{CI_SCRIPT}, so what users are told to run is not what CI checks. Fix: make them "
        f"identical (change {README} or {CI_SCRIPT})."
    )


def _markdown_files(root: Path) -> list[Path]:
    return sorted((root / "docs").glob("**/*.md")) + ([root / README] if (root / README).is_file() else [])


@pytest.mark.validation("documentation", reads="repo")
def test_docs_relative_links_resolve(source_checkout: Path) -> None:
    repo_root = source_checkout
    problems = []
    for file in _markdown_files(repo_root):
        for number, line in _outside_code(file.read_text().splitlines()):
            for target in MD_LINK.findall(re.sub(r"`[^`]*`", "", line)):
                parts = urlsplit(target)
                if parts.scheme or parts.netloc or target.startswith("mailto:"):
                    continue
                linked = (file.parent / unquote(parts.path)).resolve() if parts.path else file
                where = f"{file.relative_to(repo_root)}:{number}"
                if not linked.exists():
                    problems.append(f"{where}: link {target!r} names a file that does not exist")
                elif parts.fragment and linked.suffix == ".md" and unquote(parts.fragment) not in anchors(linked):
                    problems.append(f"{where}: link {target!r}: {linked.name} has no anchor #{parts.fragment}")
    assert not problems, f"broken links: {'; '.join(problems)}. Fix: point each at an existing file/heading."
