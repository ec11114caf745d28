"""Batch scoring on local Spark: `attrition score-table` gives exactly the numbers of `attrition predict`
and of the V2 server, sends bad rows to the rejects output with their reasons, and logs a batch report
whose drift test flags a shifted table only. The Databricks bundle is checked offline."""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
import yaml

from attrition import batch, cli, config, registry
from attrition.contract.errors import InvalidInput
from attrition.contract.schema import CATEGORICAL, FEATURES
from attrition.training import data

pytestmark = [pytest.mark.spark, pytest.mark.train]

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = list(batch.OUTPUTS)


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark", reason="needs the spark extra: pip install -e '.[spark]'")
    session = batch.local_spark()
    yield session
    session.stop()


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return data.load_raw()


def training_rows(raw: pd.DataFrame, release, n: int, seed: int) -> pd.DataFrame:
    """Raw rows (EmployeeNumber included) of the bundle's training split."""
    return raw.loc[release.result.X_train.index].sample(n, random_state=seed)


def logged_report(run_id: str) -> dict:
    return mlflow.artifacts.load_dict(f"runs:/{run_id}/batch_report.json")


def assert_same_scores(batch_scores: pd.DataFrame, other: pd.DataFrame) -> None:
    assert list(batch_scores.index) == list(other.index)
    for name in ("probability", "outlier_score"):
        np.testing.assert_allclose(batch_scores[name], other[name].astype(float), rtol=0, atol=1e-12)
    assert list(batch_scores["prediction"]) == list(other["prediction"])
    assert list(batch_scores["is_outlier"].astype(bool)) == list(other["is_outlier"].astype(bool))


def v2_scores(server, raw: pd.DataFrame) -> pd.DataFrame:
    from attrition_runtime.client import v2_request
    from attrition_tools.serve import SERVED_MODEL_NAME

    url = f"{server.http_url}/v2/models/{SERVED_MODEL_NAME}/infer"
    frames = []
    for start in range(0, len(raw), 500):  # the server takes at most 1,000 rows a request
        rows = raw.iloc[start : start + 500][list(FEATURES)].to_dict(orient="records")
        answer = requests.post(url, json=v2_request(rows, {"drift": False}), timeout=120)
        assert answer.status_code == 200, answer.text
        outputs = {o["name"]: o["data"] for o in answer.json()["outputs"]}
        frames.append(pd.DataFrame({name: outputs[name] for name in OUTPUTS}))
    return pd.concat(frames, ignore_index=True).set_index(raw["EmployeeNumber"])


@pytest.mark.server
def test_score_table_gives_the_numbers_of_predict_and_of_the_v2_server(
    spark, release, server, raw, tmp_path, capsys
):
    raw.to_parquet(tmp_path / "employees.parquet", index=False)
    raw.to_csv(tmp_path / "employees.csv", index=False)

    assert cli.main(["score-table", str(tmp_path / "employees.parquet")]) == 0
    run_id = re.search(r"run_id=(\w+)", capsys.readouterr().out)[1]
    scored = pd.read_parquet(tmp_path / "employees_scored.parquet").set_index("EmployeeNumber")
    assert len(scored) == data.EXPECTED_ROWS
    scored = scored.loc[raw["EmployeeNumber"]]

    assert cli.main(["predict", str(tmp_path / "employees.csv"), "-o", str(tmp_path / "predicted.csv")]) == 0
    predicted = pd.read_csv(tmp_path / "predicted.csv").set_index("EmployeeNumber")
    assert_same_scores(scored, predicted)
    assert_same_scores(scored, v2_scores(server, raw))

    # Provenance: the version the alias pointed at, and the batch's MLflow run.
    version = registry.alias_version(config.PRODUCTION)
    assert set(scored["model_version"]) == {version}
    assert set(scored["model_uri"]) == {f"models:/{config.MODEL_NAME}/{version}"}
    assert set(scored["run_id"]) == {run_id}
    report = logged_report(run_id)
    assert report["rows_read"] == report["rows_scored"] == data.EXPECTED_ROWS
    assert report["rows_rejected"] == 0
    assert report["predicted_leavers"] == int((scored["prediction"] == "Yes").sum())
    assert report["outlier_rate"] == pytest.approx(scored["is_outlier"].mean())
    assert report["drift"]["method"] == "exact" and report["drift"]["rows"] == data.EXPECTED_ROWS
    from attrition.outcomes import cbpe

    expected = cbpe.estimate(scored["probability"].to_numpy(), (scored["prediction"] == "Yes").to_numpy())
    for name in cbpe.ESTIMATED:  # CBPE over the table, beside the counts
        assert report["estimated"][name] == pytest.approx(expected[name], abs=1e-9)


def test_bad_rows_go_to_rejects_with_their_reasons_and_the_rest_is_scored(spark, release, raw):
    from pyspark.sql import functions as F

    rows = training_rows(raw, release, 300, seed=3)
    ids = [int(i) for i in rows["EmployeeNumber"].iloc[:6]]
    employee = F.col("EmployeeNumber")
    table = (
        spark.createDataFrame(rows)
        .withColumn(
            "Age",
            F.when(employee == ids[0], F.lit(float("nan")))
            .when(employee == ids[1], F.lit(150.0))
            .when(employee == ids[5], F.lit(-1.0))
            .otherwise(F.col("Age").cast("double")),
        )
        .withColumn("Department", F.when(employee == ids[2], "Marketing").otherwise(F.col("Department")))
        .withColumn("MonthlyIncome", F.when(employee != ids[3], F.col("MonthlyIncome")))
        .withColumn("JobRole", F.when(employee != ids[4], F.col("JobRole")))
        .withColumn("Gender", F.when(employee == ids[5], "F").otherwise(F.col("Gender")))
    )
    table.write.mode("overwrite").saveAsTable("employees_with_errors")

    report = batch.score_table(spark, "employees_with_errors", config.model_uri(config.PRODUCTION))

    rejects = spark.table("employees_with_errors_rejects").toPandas().set_index("EmployeeNumber")
    reasons = rejects["reject_reason"].to_dict()
    assert reasons == {
        ids[0]: "Age: expected a finite number, got NaN or infinity",
        ids[1]: "Age: 150.0 is out of range, expected 14 to 100",
        ids[2]: "Department: unknown category 'Marketing', expected one of "
        "['Human Resources', 'Research & Development', 'Sales']",
        ids[3]: "MonthlyIncome: missing, expected a number from 0 to 1e+07",
        ids[4]: f"JobRole: missing, expected one of {list(CATEGORICAL['JobRole'])}",
        ids[5]: "Age: -1.0 is out of range, expected 14 to 100; "
        "Gender: unknown category 'F', expected one of ['Female', 'Male']",
    }
    assert set(rejects["run_id"]) == {report.run_id}
    assert math.isnan(rejects.loc[ids[0], "Age"])  # rejected rows keep their values as they came

    scored = spark.table("employees_with_errors_scored").toPandas()
    assert sorted(scored["EmployeeNumber"]) == sorted(set(rows["EmployeeNumber"]) - set(ids))
    assert scored[OUTPUTS].notna().all().all()
    assert (report.rows_read, report.rows_scored, report.rows_rejected) == (300, 294, 6)
    assert report.rejects_by_field == {
        "Age": 3,
        "Department": 1,
        "Gender": 1,
        "JobRole": 1,
        "MonthlyIncome": 1,
    }

    # The valid rows are training rows: the batch report finds no drift.
    assert report.drift.tested and report.drift.method == "exact" and report.drift.rows == 294
    assert report.drift.is_drift is False and report.drift.drifted == []
    logged = logged_report(report.run_id)
    assert logged["drift"]["is_drift"] is False and logged["rows_rejected"] == 6
    metrics = mlflow.MlflowClient().get_run(report.run_id).data.metrics
    assert metrics["drift_is_drift"] == 0 and metrics["rows_rejected"] == 6
    assert {f"drift_p_value_{name}" for name in FEATURES} <= set(metrics)


def test_the_batch_report_flags_drift_for_a_shifted_table_also_on_a_sample(spark, release, raw, tmp_path):
    rows = training_rows(raw, release, 200, seed=11)
    shifted = rows.assign(MonthlyIncome=rows["MonthlyIncome"] * 3, OverTime="Yes")
    shifted.to_parquet(tmp_path / "shifted.parquet", index=False)

    report = batch.score_table(spark, str(tmp_path / "shifted.parquet"), drift_sample_rows=100, seed=7)

    assert report.rows_scored == 200 and report.rows_rejected == 0
    assert report.drift.method == "sample" and report.drift.rows == 100 and report.drift.seed == 7
    assert report.drift.is_drift is True and {"MonthlyIncome", "OverTime"} <= set(report.drift.drifted)
    logged = logged_report(report.run_id)
    assert logged["drift"]["is_drift"] is True and logged["drift"]["sample_rows"] == 100
    metrics = mlflow.MlflowClient().get_run(report.run_id).data.metrics
    assert metrics["drift_is_drift"] == 1
    assert metrics["drift_p_value_MonthlyIncome"] < metrics["drift_threshold"]


def test_a_missing_column_or_table_fails_before_anything_is_written(spark, release, raw, tmp_path, capsys):
    raw.drop(columns=["Age"]).head(50).to_parquet(tmp_path / "no_age.parquet", index=False)
    with pytest.raises(InvalidInput, match="Age"):
        batch.score_table(spark, str(tmp_path / "no_age.parquet"))
    assert cli.main(["score-table", str(tmp_path / "missing.parquet")]) == 2
    assert "error: cannot read parquet:" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["no_age.parquet"]


def test_outputs_are_named_beside_the_source():
    def names(location: batch.Location) -> tuple[str, str]:
        return location.sibling("_scored").name, location.sibling("_rejects").name

    assert names(batch.Location("main.hr.employees")) == (
        "main.hr.employees_scored",
        "main.hr.employees_rejects",
    )
    assert names(batch.Location("main.hr.`my table`")) == (
        "main.hr.`my table_scored`",
        "main.hr.`my table_rejects`",
    )
    assert batch.Location("/data/employees.parquet", "parquet").sibling("_scored").name == (
        "/data/employees_scored.parquet"
    )
    assert batch.Location("dbfs:/hr/employees/", "delta").sibling("_scored") == batch.Location(
        "dbfs:/hr/employees_scored", "delta"
    )


# --- The Databricks Asset Bundle, offline ---------------------------------------------------------


def bundle_spec() -> dict:
    return yaml.safe_load((ROOT / "databricks.yml").read_text())


def resolve(value: str, spec: dict, target: str = "dev") -> str:
    """Substitute ${var.*} with the variables' defaults and ${bundle.*} as the CLI would."""
    names = {f"var.{k}": str(v["default"]) for k, v in spec["variables"].items()}
    names |= {"bundle.name": spec["bundle"]["name"], "bundle.target": target}
    return re.sub(r"\$\{([\w.]+)\}", lambda m: names[m[1]], value)


def entry_point(path: Path):
    module_spec = importlib.util.spec_from_file_location(f"databricks_job_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def test_databricks_bundle_has_both_jobs_and_every_file_they_reference():
    spec = bundle_spec()
    assert spec["bundle"]["name"]
    assert {"catalog", "schema"} <= set(spec["variables"])
    assert all("default" in v for v in spec["variables"].values())
    assert spec["targets"]["dev"]["mode"] == "development" and spec["targets"]["dev"].get("default")
    assert spec["targets"]["prod"]["mode"] == "production"
    # Every ${...} refers to a declared variable or to the bundle.
    text = (ROOT / "databricks.yml").read_text()
    for reference in re.findall(r"\$\{([\w.]+)\}", text):
        assert (
            reference in {"bundle.name", "bundle.target"}
            or reference.removeprefix("var.") in spec["variables"]
        ), reference
    # The wheel the tasks install is the one the artifact builds, from this project.
    (artifact,) = spec["artifacts"].values()
    assert artifact["type"] == "whl" and (ROOT / artifact["path"] / "pyproject.toml").exists()
    assert "--wheel-dir build/dist" in artifact["build"]

    jobs = spec["resources"]["jobs"]
    assert set(jobs) == {"attrition_train", "attrition_batch_score", "attrition_outcomes"}
    for job in jobs.values():
        clusters = {c["job_cluster_key"]: c["new_cluster"] for c in job["job_clusters"]}
        for task in job["tasks"]:
            assert (ROOT / task["spark_python_task"]["python_file"]).is_file()
            assert task["libraries"] == [{"whl": "./build/dist/*.whl"}]
            cluster = clusters[task["job_cluster_key"]]
            assert cluster["data_security_mode"] == "SINGLE_USER"  # Unity Catalog access
            assert cluster["spark_env_vars"]["MLFLOW_TRACKING_URI"] == "databricks"
            assert (
                resolve(cluster["spark_env_vars"]["ATTRITION_MODEL_NAME"], spec)
                == "main.hr.employee_attrition"
            )
            assert resolve(cluster["spark_version"], spec).startswith("15.4.")  # Python 3.11, Spark 3.5

    schedule = jobs["attrition_batch_score"]["schedule"]
    seconds, minutes, hours, day_of_month, month, day_of_week = schedule["quartz_cron_expression"].split()
    assert day_of_month == "1" and month == "*" and day_of_week == "?"  # monthly
    assert "schedule" not in jobs["attrition_train"]


def test_databricks_entry_points_import_and_run_the_attrition_commands():
    spec = bundle_spec()
    jobs = spec["resources"]["jobs"]
    commands = {}
    for key in ("attrition_train", "attrition_batch_score"):
        (task,) = jobs[key]["tasks"]
        module = entry_point(ROOT / task["spark_python_task"]["python_file"])
        args = module.parser().parse_args([resolve(p, spec) for p in task["spark_python_task"]["parameters"]])
        assert args.model_name == "main.hr.employee_attrition"
        commands[key] = module.attrition_command(args)
        cli.parser().parse_args(commands[key])  # the command line the job runs is a valid one
    assert commands["attrition_train"][:1] == ["train"]
    assert "--data-dir" in commands["attrition_train"]
    assert cli.parser().parse_args(commands["attrition_train"]).calibration == "auto"
    score = cli.parser().parse_args(commands["attrition_batch_score"])
    assert (score.command, score.source, score.alias, score.mode) == (
        "score-table",
        "main.hr.employees",
        "production",
        "append",
    )
