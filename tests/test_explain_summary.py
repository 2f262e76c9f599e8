"""bench/explain_summary.py: one table from explain reports; a report lacking its verdicts is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parent.parent / "bench" / "explain_summary.py"


def verdict(name: str, pct: float, ci: tuple[float, float] | None = None, detail: str = "") -> dict:
    low, high = ci or (None, None)
    return {"verdict": name, "overhead_pct": pct, "ci_low": low, "ci_high": high, "detail": detail}


def report(model_pct: float, measured_pct: float) -> dict:
    return {
        "base": "a", "candidate": "se_a", "setting": "cpu",
        "op_classes": [
            {"op_class": "conv", "error_pp": -0.5}, {"op_class": "se_fc", "error_pp": 0.25},
            {"op_class": "total", "error_pp": -3.0},
        ],
        "verdicts": [
            verdict("FLOPs predict", 0.1), verdict("machine model predicts", model_pct),
            verdict("measured (paired)", measured_pct, (measured_pct - 1, measured_pct + 1), "40 pairs, m"),
            verdict("in-model SE time share", 4.0, (3.5, 4.5)),
        ],
    }  # fmt: skip


def run(folder: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCRIPT), "--folder", str(folder)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_one_row_per_report_with_errors_and_goal(tmp_path: Path) -> None:
    (tmp_path / "a-b1.json").write_text(json.dumps(report(5.0, 4.0)))
    (tmp_path / "a-b8.json").write_text(json.dumps(report(5.0, 2.5)))
    done = run(tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [line for line in (tmp_path / "summary.md").read_text().splitlines() if line.startswith("| `a`")]
    assert len(rows) == 2
    assert (
        "| 1 | +0.10 | +5.00 | +4.00 [+3.00, +5.00], 40 pairs | +1.00 | -3.90 | yes | conv -0.50 |" in rows[0]
    )
    assert "se_fc +0.25" in rows[0] and "not measured" in rows[0]  # no training-pass line in this report
    assert "| 8 |" in rows[1] and "| +2.50 | -2.40 | no |" in rows[1]


def test_a_report_without_measurements_is_refused(tmp_path: Path) -> None:
    partial = report(5.0, 4.0)
    partial["verdicts"] = partial["verdicts"][:2]  # what --no-measure writes
    (tmp_path / "a-b1.json").write_text(json.dumps(partial))
    done = run(tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert not (tmp_path / "summary.md").exists()
