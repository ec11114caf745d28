"""Training, the bundle and the registry, as `attrition train` leaves them."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.types.schema import AnyType, DataType

from attrition import bundle, config, registry
from attrition.contract.errors import InvalidInput
from attrition.contract.outputs import ROW_OUTPUTS
from attrition.contract.schema import CATEGORICAL, FEATURES, NUMERIC, validate_features
from attrition.training import data
from attrition.training.search import CV_METRIC, search_space

pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def loaded(release) -> bundle.TrustBundle:
    return bundle.load(config.model_uri(config.PRODUCTION))


def test_search_logs_nested_trials_and_the_winner(release):
    client = MlflowClient()
    parent = client.get_run(release.run_id)
    assert parent.data.metrics[CV_METRIC] == pytest.approx(release.cv_roc_auc)
    for metric in ("test_roc_auc", "test_pr_auc", "test_brier"):
        assert 0 < parent.data.metrics[metric] < 1
    assert "plots/holdout_roc_pr_calibration.png" in [
        a.path for a in client.list_artifacts(release.run_id, "plots")
    ]
    children = mlflow.search_runs(
        experiment_ids=[parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{release.run_id}'",
    )
    assert len(children) == len(search_space(quick=True))
    assert set(children["params.family"]) == {"logistic_regression", "random_forest"}
    assert children[f"metrics.{CV_METRIC}"].notna().all()
    assert release.cv_roc_auc > 0.8


def test_first_version_gets_staging_and_production(release):
    assert release.aliases == [config.STAGING, config.PRODUCTION]
    version = MlflowClient().get_model_version(config.MODEL_NAME, release.version)
    assert MlflowClient().get_run(version.run_id).data.metrics[CV_METRIC] == pytest.approx(release.cv_roc_auc)


def test_signature_is_typed_per_column(release):
    info = mlflow.models.get_model_info(config.model_uri(config.PRODUCTION))
    types = {c.name: c.type for c in info.signature.inputs.inputs}
    assert list(types) == list(FEATURES)
    # Categoricals are strings; numerics take integers or floats (the bundle checks their values).
    assert {name for name, t in types.items() if isinstance(t, AnyType)} == set(NUMERIC)
    assert {name for name, t in types.items() if t == DataType.string} == set(CATEGORICAL)
    assert {p.name for p in info.signature.params.params} == {"explain", "drift", "anchor_budget_s"}


def test_a_users_first_pyfunc_call_takes_the_csv_as_it_is(release):
    csv = data.fetch()
    assert (pd.read_csv(csv).dtypes[list(NUMERIC)] == np.int64).all()  # what every HR export holds
    out = mlflow.pyfunc.load_model("models:/employee_attrition@staging").predict(pd.read_csv(csv))
    assert len(out) == data.EXPECTED_ROWS and list(out.columns) == [o.name for o in ROW_OUTPUTS]
    expected = bundle.load(config.model_uri(config.STAGING)).score(validate_features(data.load()[0]))
    np.testing.assert_allclose(out["probability"], expected["probability"], rtol=0, atol=1e-12)
    assert out["prediction"].tolist() == expected["prediction"].tolist()


def test_mlflows_scoring_server_takes_json_and_refuses_csv_as_the_model_page_says(release):
    """``mlflow models serve``'s handler: JSON bodies score; text/csv is refused by MLflow itself
    (it parses CSV with the signature's pandas types, and ``Any`` has none)."""
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server

    model = mlflow.pyfunc.load_model("models:/employee_attrition@staging")
    schema, rows = model.metadata.get_input_schema(), data.load()[0].head(3)
    body = json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split"))})
    answer = scoring_server.invocations(body, "application/json", model, schema)
    assert answer.status == 200
    expected = bundle.load(config.model_uri(config.STAGING)).score(validate_features(rows))
    got = [p["probability"] for p in json.loads(answer.response)["predictions"]]
    np.testing.assert_allclose(got, expected["probability"], rtol=0, atol=1e-12)
    with pytest.raises(MlflowException, match="Failed to get pandas types"):
        scoring_server.invocations(rows.to_csv(index=False), "text/csv", model, schema)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("Age", 150, "Age: 150 is out of range; expected 14 to 100"),
        ("MonthlyIncome", "a lot", "MonthlyIncome: expected a number, got 'a lot'"),
        ("OverTime", "Sometimes", "OverTime: unknown category 'Sometimes'"),
    ],
)
def test_the_pyfunc_still_refuses_values_outside_the_schema(release, column, value, message):
    rows = pd.read_csv(data.fetch()).head(3)
    rows[column] = rows[column].astype(object)
    rows.loc[1, column] = value
    model = mlflow.pyfunc.load_model(config.model_uri(config.STAGING))
    with pytest.raises(InvalidInput, match=re.escape(message)):
        model.predict(rows)


def test_loads_by_alias_in_a_fresh_process_with_equal_predictions(release, loaded, tmp_path):
    rows = release.result.X_test.head(25)
    expected = loaded.score(validate_features(rows))
    rows.to_csv(tmp_path / "rows.csv", index=False)
    script = (
        "import sys, mlflow, pandas as pd\n"
        f"model = mlflow.pyfunc.load_model({config.model_uri(config.PRODUCTION)!r})\n"
        f"out = model.predict(pd.read_csv({str(tmp_path / 'rows.csv')!r}))\n"
        f"out.to_pickle({str(tmp_path / 'out.pkl')!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    # The pyfunc's predict carries the type hint MLflow asks for: loading it prints no warning.
    assert "Add type hints" not in done.stderr
    fresh = pd.read_pickle(tmp_path / "out.pkl")
    np.testing.assert_allclose(fresh["probability"], expected["probability"], rtol=1e-12)
    np.testing.assert_allclose(fresh["outlier_score"], expected["outlier_score"], rtol=1e-12)
    assert list(fresh["prediction"]) == list(expected["prediction"])
    assert list(fresh["is_outlier"]) == list(expected["is_outlier"])


def test_shifted_batch_drifts_and_a_training_sample_does_not(release, loaded):
    sample = validate_features(release.result.X_train.sample(200, random_state=3))
    assert not loaded.drift(sample).is_drift
    shifted = sample.assign(MonthlyIncome=sample["MonthlyIncome"] * 3, OverTime="Yes")
    report = loaded.drift(shifted)
    assert report.is_drift and {"MonthlyIncome", "OverTime"} <= set(report.drifted)
    with pytest.raises(ValueError, match="at least"):
        loaded.drift(sample.head(5))


def test_absurd_row_is_an_outlier_and_typical_rows_mostly_are_not(release, loaded):
    typical = loaded.score(validate_features(release.result.X_test))
    assert typical["is_outlier"].mean() < 0.05
    absurd = release.result.X_test.head(1).assign(
        Age=18.0, TotalWorkingYears=40.0, YearsAtCompany=40.0, YearsInCurrentRole=18.0,
        YearsWithCurrManager=17.0, MonthlyIncome=19999.0, NumCompaniesWorked=9.0, DistanceFromHome=29.0,
    )  # fmt: skip
    scored = loaded.score(validate_features(absurd))
    assert scored["is_outlier"].item()
    assert scored["outlier_score"].item() > np.quantile(typical["outlier_score"], 0.95)


def test_pyfunc_params_switch_on_explanations_and_drift(release):
    model = mlflow.pyfunc.load_model(config.model_uri(config.PRODUCTION))
    rows = release.result.X_test.head(40)
    out = model.predict(rows, params={"explain": "attributions", "drift": True})
    explanation = json.loads(out["explanation"].iloc[0])
    assert set(explanation["attributions"]) == set(rows.columns)
    assert out["batch_is_drift"].dtype == bool
    plain = model.predict(rows)
    assert list(plain.columns) == [o.name for o in ROW_OUTPUTS]


def test_attributions_add_up_to_the_log_odds(release, loaded):
    rows = validate_features(release.result.X_test.head(3))
    probability = loaded.score(rows)["probability"].to_numpy()
    for explanation, p in zip(loaded.explain(rows), probability, strict=True):
        total = explanation["base_value"] + sum(explanation["attributions"].values())
        assert total == pytest.approx(np.log(p / (1 - p)), abs=1e-3)


def test_anchor_within_budget_and_timeout_marker(release, loaded):
    rows = validate_features(release.result.X_test.head(1))
    anchored = loaded.explain(rows, "anchors", anchor_budget_s=30)[0]["anchor"]
    assert anchored["anchor"] and anchored["precision"] >= 0.9
    hurried = loaded.explain(rows, "anchors", anchor_budget_s=0.001)[0]["anchor"]
    assert hurried == {"anchor": None, "timed_out": True, "budget_s": 0.001}


def test_promote_moves_production(release):
    second = registry.promote(release.version)
    assert second == release.version == registry.alias_version(config.PRODUCTION)
    with pytest.raises(Exception, match="not found|RESOURCE_DOES_NOT_EXIST|does not exist"):
        registry.promote("999")
