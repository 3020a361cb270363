"""The spread benchmark's reading of finished runs and its summary, on hand-made run folders."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `benchmarks` and `examples` are not installed packages
    sys.path.insert(0, str(ROOT))

from benchmarks.main_job_spread import figures, format_table, run_overrides, summarise  # noqa: E402

SC, VOTING = "self-consistency (majority)", "DiVeRSe voting verifier"


def _entry(accuracy: float) -> dict[str, float]:
    return {"accuracy": accuracy, "low": accuracy - 0.05, "high": accuracy + 0.05, "n": 100}


def _write_run(run_dir: Path, greedy: float, sc_low: float, label_model: list[int]) -> None:
    """A finished run: the report's results.json and the ama stage's yesno.json (4 questions)."""
    (run_dir / "report").mkdir(parents=True)
    (run_dir / "ama").mkdir()
    results = {
        "arithmetic": {
            "methods": {
                "greedy": _entry(greedy),
                SC: _entry(greedy + 0.1),
                VOTING: _entry(greedy + 0.2),
                "best path (verifier)": _entry(greedy + 0.25),
            },
            "differences": {
                f"{SC} - greedy": {"difference": 0.1, "low": sc_low, "high": 0.15},
                f"{VOTING} - {SC}": {"difference": 0.1, "low": 0.05, "high": 0.15},
            },
        },
        "yes_no": {"majority": _entry(0.5), "label model": _entry(0.75)},
        "stage_seconds": {"data": {"wall": 1.0, "cpu": 1.0}, "reasoner": {"wall": 99.0, "cpu": 1}},
    }
    (run_dir / "report" / "results.json").write_text(json.dumps(results))
    yesno = {
        "labels": [1, 0, 1, 0],
        "predictions": {"majority": [1, 1, 0, 0], "label model": label_model},
    }
    (run_dir / "ama" / "yesno.json").write_text(json.dumps(yesno))


def test_runs_are_summarised_as_mean_range_and_intervals_above_zero(tmp_path: Path) -> None:
    _write_run(tmp_path / "a", greedy=0.4, sc_low=0.02, label_model=[1, 0, 1, 0])
    _write_run(tmp_path / "b", greedy=0.5, sc_low=-0.01, label_model=[1, 1, 0, 0])
    runs = {name: figures(tmp_path / name) for name in ("a", "b")}
    assert runs["a"]["accuracy"]["greedy"] == pytest.approx(40.0)
    assert runs["a"]["differences"]["label model - majority"]["difference"] == pytest.approx(50.0)
    assert runs["b"]["differences"]["label model - majority"]["difference"] == 0.0
    assert runs["a"]["stage_seconds"] == {"data": 1.0, "reasoner": 99.0}

    summary = summarise(runs)
    assert summary["greedy"]["mean"] == pytest.approx(45.0)
    assert (summary["greedy"]["min"], summary["greedy"]["max"]) == pytest.approx((40.0, 50.0))
    assert summary["greedy"]["runs"] == {"a": pytest.approx(40.0), "b": pytest.approx(50.0)}
    assert summary["SC - greedy"]["interval_above_zero"] == 1  # b's interval starts below zero
    assert summary["voting - SC"]["interval_above_zero"] == 2
    table = format_table(runs, summary)
    assert "paired 95% interval > 0 in 1/2 runs" in table
    assert "paired 95% interval > 0 in 2/2 runs" in table


def test_each_run_has_its_own_folder_and_seed() -> None:
    overrides = run_overrides(Path("/out/seed1-avx2"), 1)
    assert "seed.value=1" in overrides
    assert "run_dir=/out/seed1-avx2" in overrides
