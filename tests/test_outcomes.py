"""attrition outcomes report: outcomes joined to a real Delta inference log built from real
predictions on the held-out rows, realised metrics equal to scikit-learn's on the joined rows,
CBPE beside them, bad outcome files refused in one line naming the column and the row."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

pytestmark = pytest.mark.train

SECRET = "outcomes-test-secret"
START = pd.Timestamp("2025-01-01", tz="UTC")


@pytest.fixture(scope="module")
def scored(release):
    """The held-out rows scored by the released bundle, with their employee numbers and labels."""
    from attrition import bundle
    from attrition.training import data

    result = release.result
    raw = data.load_raw()
    scores = bundle.load(release.model_uri).score(result.X_test)
    return scores.assign(
        employee_id=raw.loc[result.X_test.index, "EmployeeNumber"].to_numpy(),
        left=result.y_test.to_numpy(),
        version=release.version,
    )


@pytest.fixture
def log_and_outcomes(scored, tmp_path, monkeypatch):
    """A Delta log of two commits (predictions spread over 2025, an earlier prediction for every
    fifth employee) and an outcomes CSV (each outcome 90 to 300 days after the latest prediction),
    plus three outcomes that must not join: unknown employee, before any prediction, past the horizon."""
    from attrition import inference_log
    from attrition.outcomes.simulate import log_rows

    monkeypatch.setenv("ATTRITION_ENTITY_KEY", SECRET)
    rng = np.random.default_rng(1)
    when = START + pd.to_timedelta(rng.integers(30, 330, len(scored)), unit="D")
    earlier = scored.iloc[::5]
    location = str(tmp_path / "log")
    inference_log.append(
        location,
        log_rows(
            earlier, earlier["employee_id"], when[::5] - pd.Timedelta(days=20), scored["version"].iloc[0]
        ),
    )
    inference_log.append(location, log_rows(scored, scored["employee_id"], when, scored["version"].iloc[0]))
    later = when + pd.to_timedelta(rng.integers(90, 300, len(scored)), unit="D")
    outcomes = pd.DataFrame(
        {
            "employee_id": scored["employee_id"],
            "left": np.where(scored["left"] == 1, "Yes", "No"),
            "date": later.strftime("%Y-%m-%d"),
        }
    )
    first = scored.iloc[0]
    strays = pd.DataFrame(
        {
            "employee_id": [999999, first["employee_id"], scored.iloc[1]["employee_id"]],
            "left": ["1", "0", "No"],
            "date": [
                "2026-01-01",
                (when[0] - pd.Timedelta(days=40)).strftime("%Y-%m-%d"),
                (when[1] + pd.Timedelta(days=400)).strftime("%Y-%m-%d"),
            ],
        }
    )
    path = tmp_path / "outcomes.csv"
    pd.concat([outcomes, strays]).to_csv(path, index=False)
    return location, path


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    from attrition.cli import main

    code = main(["outcomes", "report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_report_realised_equals_scikit_learn_on_the_joined_rows(log_and_outcomes, scored, capsys):
    location, path = log_and_outcomes
    code, out, err = run_cli(capsys, "--log", location, "--outcomes", str(path), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["rows_joined"] == len(scored) and report["unjoined"] == 3
    assert report["outcomes"] == len(scored) + 3
    # Every employee's latest prediction is the one in the second commit: the scores themselves.
    y, p = scored["left"].to_numpy(), scored["probability"].to_numpy()
    realised = report["realised"]
    assert realised["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert realised["pr_auc"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert realised["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert realised["roc_auc_low"] < realised["roc_auc"] < realised["roc_auc_high"]
    assert 0.5 < report["estimated"]["roc_auc"] < 1
    assert sum(row["rows"] for row in report["calibration"]) == len(scored)
    months = report["months"]
    assert sum(m["rows_joined"] for m in months) == len(scored)
    assert sum(m["rows_logged"] for m in months) == len(scored) + len(scored.iloc[::5])
    assert all(m["baseline_roc_auc"] is not None for m in months)
    assert report["mlflow_run_id"]


def test_report_logs_a_monitoring_run_with_plots(log_and_outcomes, capsys):
    import mlflow

    location, path = log_and_outcomes
    code, out, err = run_cli(capsys, "--log", location, "--outcomes", str(path), "--resamples", "50")
    assert code == 0, err
    assert "joined" in out and "unjoined 3" in out
    run_id = out.strip().splitlines()[-1].split()[-1]
    run = mlflow.get_run(run_id)
    assert run.data.tags["monitoring"] == "outcomes"
    assert run.data.metrics["unjoined"] == 3
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "plots")}
    assert artifacts == {"plots/realised_vs_estimated.png", "plots/calibration.png"}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("employee_id,left\n1,Yes\n", "missing column 'date'"),
        ("employee_id,left,date\n1,Yes,2025-01-01\n2,maybe,2025-01-01\n", "column 'left', row 2: 'maybe'"),
        ("employee_id,left,date\n1,Yes,2025-01-01\n2,No,2025-13-45\n", "column 'date', row 2: '2025-13-45'"),
        ("employee_id,left,date\n,Yes,2025-01-01\n", "column 'employee_id', row 1"),
        ("employee_id,left,date\n1,No,2025-01-01\n1,Yes,2025-01-01\n", "row 2 repeats row 1's employee_id"),
    ],
)
def test_bad_outcome_files_get_one_line_naming_column_and_row(
    content, expected, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("ATTRITION_ENTITY_KEY", SECRET)
    path = tmp_path / "outcomes.csv"
    path.write_text(content)
    code, _, err = run_cli(capsys, "--log", str(tmp_path / "none"), "--outcomes", str(path))
    assert code == 2
    assert err.count("\n") == 1 and expected in err, err


def test_a_missing_log_gets_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ATTRITION_ENTITY_KEY", SECRET)
    path = tmp_path / "outcomes.csv"
    path.write_text("employee_id,left,date\n1,Yes,2025-01-01\n")
    code, _, err = run_cli(capsys, "--log", str(tmp_path / "no-log"), "--outcomes", str(path))
    assert code == 2 and err.count("\n") == 1 and "cannot read the inference log" in err, err


def test_the_latest_prediction_before_the_date_within_the_horizon_is_joined():
    from attrition.outcomes.join import join_outcomes

    ts = pd.to_datetime(["2025-01-10", "2025-03-01", "2025-06-01", "2025-02-01"], utc=True)
    log = pd.DataFrame(
        {
            "entity_key": ["a", "a", "a", "b"],
            "request_id": ["r1", "r2", "r3", "r4"],
            "row_index": [0, 0, 0, 0],
            "model_name": "m",
            "model_version": ["1", "1", "2", "1"],
            "timestamp": ts.astype("datetime64[us, UTC]"),
            "probability": [0.1, 0.2, 0.3, 0.4],
            "prediction": "No",
        }
    )
    outcomes = pd.DataFrame(
        {
            "entity_key": ["a", "a", "b", "c"],
            "left": [1, 0, 1, 1],
            "date": pd.to_datetime(["2025-06-01", "2025-03-02", "2026-03-01", "2025-03-01"], utc=True),
        }
    )
    joined = join_outcomes(log, outcomes, horizon_days=365)
    # a on 06-01: the 06-01 prediction is not before its date, so 03-01's; a on 03-02: 03-01's;
    # b: its only prediction is 393 days old; c: never scored.
    assert sorted(joined.rows["probability"]) == [0.2, 0.2]
    assert joined.unjoined == 2


def test_the_bundle_records_its_held_out_calibration(release, scored):
    from attrition import bundle
    from attrition.outcomes.metrics import calibration_table, expected_calibration_error

    record = bundle.load(release.model_uri).info.calibration
    table = calibration_table(scored["left"].to_numpy(), scored["probability"].to_numpy())
    assert sum(record["test_reliability"]["rows"]) == len(scored)
    assert record["test_ece"] == pytest.approx(expected_calibration_error(table), abs=1e-6)
    assert record["needs_calibration"] == (record["oof_ece"] > record["tolerance"])
