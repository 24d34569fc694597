"""``--mnops-report-json``: the drill results for machines."""

from __future__ import annotations

import json
import time
from pathlib import Path

from pytest_mnops.reporting.results import DrillResult
from pytest_mnops.reporting.scorecard import overall_score


def write_json(path: Path, results: list[DrillResult], validation: list[tuple[str, str, str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "generated_at": time.time(),
        "resilience_score": round(overall_score(results), 1) if results else None,
        "drills": [r.as_dict() for r in results],
        "validation": [{"test": t, "category": c, "reads": r, "outcome": o} for t, c, r, o in validation],
    }
    path.write_text(json.dumps(payload, indent=2, sort_keys=True))
