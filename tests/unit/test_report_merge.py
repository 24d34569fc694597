"""`mnops report merge`: the JSON and JUnit of real pytest runs of fake drills, merged into one game day."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_mnops.cli import main
from tests.unit.test_plugin_reports import DRILLS, PROVED_ONLY


def run(pytester: pytest.Pytester, source: str, namespace: str) -> Path:
    """One app's run (its own directory): drills.json and junit.xml."""
    directory = pytester.mkdir(namespace)
    pytester.makepyfile(**{f"test_{namespace}": source})
    pytester.runpytest(
        f"test_{namespace}.py",
        f"--mnops-namespace={namespace}",
        f"--junitxml={directory / 'junit.xml'}",
        f"--mnops-report-json={directory / 'drills.json'}",
    )
    return directory


@pytest.fixture
def runs(mnops_pytester: pytest.Pytester) -> tuple[Path, Path]:
    """Run ``shop``: pod-failure proved (100). Run ``pay``: pod-failure proved, high-latency not recovered (40)."""
    return run(mnops_pytester, PROVED_ONLY, "shop"), run(mnops_pytester, DRILLS, "pay")


def merge(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    code = main(["report", "merge", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_json_and_junit_runs_merge_into_one_score_gated_like_one_run(
    runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shop, pay = runs
    page, merged = tmp_path / "gameday.html", tmp_path / "gameday.json"
    code, out = merge(capsys, shop / "drills.json", pay / "junit.xml", "--html", page, "--json", merged)
    assert code == 0, out
    assert "resilience score: 80/100 over 3 drills in 3 runs" not in out
    assert "resilience score: 80/100 over 3 drills in 2 runs" in out, out
    assert "current context: pay/machine-native-ops: 70/100 over 2 drills, validation 1 passed" in out
    payload = json.loads(merged.read_text())
    assert payload["resilience_score"] == 80.0 and payload["gate_failures"] == []
    assert sorted((d["run"], d["drill"], d["score"]) for d in payload["drills"]) == [
        ("current context: pay/machine-native-ops", "high-latency", 40.0),
        ("current context: pay/machine-native-ops", "pod-failure", 100.0),
        ("current context: shop/machine-native-ops", "pod-failure", 100.0),
    ]
    text = page.read_text()
    assert text.count("class='mnops-drill-row'") == 3 and text.count("class='mnops-run-row'") == 2
    assert "no gate set" in text and "data-category='monitoring'" in text
    # The merged JSON is a run's report JSON again: it merges, with the same score.
    code, out = merge(capsys, merged)
    assert code == 0 and "resilience score: 80/100 over 3 drills in 1 runs" in out, out


def test_the_gate_fails_below_the_score_naming_the_weakest_drill_and_its_run(
    runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shop, pay = runs
    page = tmp_path / "gameday.html"
    code, out = merge(capsys, shop / "junit.xml", pay / "drills.json", "--fail-under", "80", "--html", page)
    assert code == 0 and "gate: --fail-under 80" in out, out
    code, out = merge(capsys, shop / "junit.xml", pay / "drills.json", "--fail-under", "81", "--html", page)
    assert code == 1, out
    assert (
        "mnops: resilience score 80 is below --fail-under 81; weakest drill: high-latency of "
        "current context: pay/machine-native-ops (40, failed)"
    ) in out
    assert "gate --fail-under 81: FAILED — resilience score 80" in page.read_text()
    code, out = merge(capsys, shop / "drills.json", "--expect", "2", "--html", page)
    assert code == 1 and "1 run(s) merged, 2 expected (--expect)" in out, out
    code, out = merge(capsys, shop / "drills.json", pay / "drills.json", "--expect", "2", "--html", page)
    assert code == 0 and "(gate: --expect 2)" in out and "gate --expect 2: passed" in page.read_text(), out


def test_the_same_run_given_twice_is_refused(runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    shop, _ = runs
    code, out = merge(capsys, shop / "drills.json", shop / "junit.xml")
    assert code == 2 and "current context: shop/machine-native-ops is in more than one of the runs given" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a pytest-mnops report JSON"),
        ('{"drills": [{"drill": "pod-failure"}]}', "not a pytest-mnops report JSON (KeyError: 'verdict')"),
        ("<html><body/></html>", "XML, but not JUnit (root <html>)"),
        ("just text", "neither report JSON nor JUnit XML"),
        ('{"drills": [], "validation": []}', "holds no drill or validation result"),
        (
            "<testsuites><testsuite><testcase name='t'><properties><property name='drill' value='x'/>"
            "</properties></testcase></testsuite></testsuites>",
            "a drill test case lacks its verdict or score property",
        ),
    ],
)
def test_unreadable_input_names_the_file_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    bad = tmp_path / "run.out"
    bad.write_text(content)
    code, out = merge(capsys, bad)
    assert code == 2 and f"mnops: error: {bad}" in out and message in out and "Fix:" in out, out


def test_a_missing_file_and_a_bad_gate_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = merge(capsys, tmp_path / "absent.json")
    assert code == 2 and "absent.json: cannot be read" in out
    with pytest.raises(SystemExit):
        main(["report", "merge", str(tmp_path / "absent.json"), "--fail-under", "101"])
    assert "must be in [0, 100]" in capsys.readouterr().err
