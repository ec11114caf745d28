"""The outcomes report's rules on small frames whose answers are known by construction: which month
is flagged, and how an outcomes file's ids and repeats are read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from attrition.inference_log.keys import entity_hasher, entity_text
from attrition.outcomes.outcomes_file import OutcomesError, check_outcomes, read_outcomes
from attrition.outcomes.report import ROC_AUC_MARGIN, Settings, build_report

pytestmark = pytest.mark.unit

ROWS_PER_MONTH = 200
#: The training CV ROC AUC of version 1 (version 2 has none: never flagged).
BASELINE = 0.85


def _month(version: str, month: str, ranks_well: bool, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A month of predictions and their outcomes: half the employees leave; the probabilities rank
    leavers first (realised ROC AUC 1) or last (ROC AUC 0)."""
    rng = np.random.default_rng(seed)
    left = np.repeat([1, 0], ROWS_PER_MONTH // 2)
    probability = np.where(left == 1, 0.6, 0.2) + rng.uniform(0, 0.1, ROWS_PER_MONTH)
    if not ranks_well:
        probability = 0.9 - probability
    keys = [f"{version}-{month}-{i}" for i in range(ROWS_PER_MONTH)]
    when = pd.Timestamp(f"{month}-10", tz="UTC").as_unit("us")
    log = pd.DataFrame(
        {
            "entity_key": keys,
            "request_id": [f"r-{key}" for key in keys],
            "row_index": 0,
            "model_name": "employee_attrition",
            "model_version": version,
            "timestamp": when,
            "probability": probability,
            "prediction": np.where(probability >= 0.5, "Yes", "No"),
        }
    )
    outcomes = pd.DataFrame({"entity_key": keys, "left": left, "date": when + pd.Timedelta(days=90)})
    return log, outcomes


def _report(settings: Settings) -> dict:
    parts = [
        _month("1", "2025-01", ranks_well=True, seed=1),
        _month("1", "2025-02", ranks_well=False, seed=2),
        _month("2", "2025-03", ranks_well=False, seed=3),
    ]
    log = pd.concat([p[0] for p in parts], ignore_index=True)
    outcomes = pd.concat([p[1] for p in parts], ignore_index=True)
    return build_report(log, outcomes, settings, {"1": BASELINE})


def test_a_month_whose_whole_interval_lies_below_training_minus_the_margin_is_flagged():
    report = _report(Settings(resamples=50))
    months = {(m["model_version"], m["month"]): m for m in report["months"]}
    assert months["1", "2025-01"]["realised"]["roc_auc"] == 1.0
    assert not months["1", "2025-01"]["flagged"]
    bad = months["1", "2025-02"]
    assert bad["realised"]["roc_auc"] == 0.0 and bad["flagged"]
    assert not months["2", "2025-03"]["flagged"]  # as bad, but its version has no training baseline
    assert report["flagged"] == [
        {
            "model_version": "1",
            "month": "2025-02",
            "baseline_roc_auc": BASELINE,
            "roc_auc_high": bad["realised"]["roc_auc_high"],
        }
    ]
    assert report["margin"] == ROC_AUC_MARGIN


def test_the_margin_decides_what_is_clearly_worse():
    assert _report(Settings(resamples=50, margin=BASELINE))["flagged"] == []  # baseline - margin = 0


def test_float_ids_are_the_same_employees_as_integer_ids(tmp_path):
    assert [entity_text(v) for v in (42, "42", b"42", 42.0, np.float32(42.0), np.int64(42), " 42 ")] == [
        "42"
    ] * 7
    assert entity_text(42.5) == "42.5"
    # A Parquet column of employee numbers with a gap in it is read as floats.
    path = tmp_path / "outcomes.parquet"
    pd.DataFrame({"employee_id": [42.0, 43.0], "left": ["Yes", "No"], "date": ["2025-05-01"] * 2}).to_parquet(
        path
    )
    hash_one = entity_hasher("secret")
    assert [hash_one(i) for i in read_outcomes(path)["employee_id"]] == [hash_one(42), hash_one(43)]


def test_a_repeated_outcome_is_refused_naming_both_rows():
    raw = pd.DataFrame(
        {
            "employee_id": ["1", "2", "1"],
            "left": ["No", "No", "Yes"],
            "date": ["2025-01-01", "2025-01-01", "2025-01-01"],
        }
    )
    with pytest.raises(
        OutcomesError, match=r"row 3 repeats row 1's employee_id and date \('1', 2025-01-01\)"
    ):
        check_outcomes(raw, "outcomes.csv")
    # The same employee on another day is another outcome.
    assert len(check_outcomes(raw.assign(date=["2025-01-01", "2025-01-01", "2025-06-30"]))) == 3
