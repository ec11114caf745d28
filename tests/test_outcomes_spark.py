"""The outcomes report on local Spark gives the same numbers as the local command on the same Delta
log and outcomes file (the join and CBPE per month on the executors, the realised metrics on the
driver, all with the same code); its errors name what they could not read."""

from __future__ import annotations

import json

import pytest
from test_outcomes import SECRET, log_and_outcomes, run_cli, scored  # noqa: F401  (fixtures)

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark():
    """One local session for the module: the command uses the active session and leaves it running."""
    pytest.importorskip("pyspark", reason="needs the spark extra: pip install -e '.[spark]'")
    from attrition.batch import local_spark

    session = local_spark()
    yield session
    session.stop()


def _without_run(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "mlflow_run_id"}


def test_spark_report_equals_the_local_report(spark, log_and_outcomes, capsys):  # noqa: F811
    location, path = log_and_outcomes
    args = ["--log", location, "--outcomes", str(path), "--resamples", "100", "--json"]
    code, local, err = run_cli(capsys, *args)
    assert code == 0, err
    code, on_spark, err = run_cli(capsys, *args, "--spark")
    assert code == 0, err
    local, on_spark = _without_run(json.loads(local)), _without_run(json.loads(on_spark))
    assert on_spark["rows_joined"] == local["rows_joined"] > 0
    assert on_spark["unjoined"] == local["unjoined"] == 3
    assert _close(on_spark, local)


def _close(a, b, path="report") -> bool:
    """Equal, floats to 1e-12 (sums over the same rows in another order)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        return all(_close(a[k], b[k], f"{path}.{k}") for k in a)
    if isinstance(a, list):
        assert len(a) == len(b), path
        return all(_close(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b, strict=True)))
    if isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, abs=1e-12), path
        return True
    assert a == b, path
    return True


def test_a_log_that_is_not_there_is_named_not_read_file_by_file(spark, tmp_path, capsys, monkeypatch):
    """Local Spark has no Delta data source, so it reads the log's snapshot through delta-rs; a
    location with no table gets one line naming it, from that reader."""
    monkeypatch.setenv("ATTRITION_ENTITY_KEY", SECRET)
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_text("employee_id,left,date\n1,Yes,2025-06-01\n")
    missing = str(tmp_path / "no-log-here")
    code, out, err = run_cli(capsys, "--log", missing, "--outcomes", str(outcomes), "--spark")
    assert (code, out) == (2, "")
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: cannot read the inference log at {missing}: "), line
    assert "does not exist" in line and "parquet" not in line.lower()


def test_with_the_data_source_there_its_own_error_is_raised_naming_the_location(spark, tmp_path, monkeypatch):
    """Where Spark has the log's data source (Databricks has Delta), a failed read (no table, access
    denied) is raised as it is, naming the location: nothing falls back to reading the files one by
    one. Local Spark has no Delta, so Parquet, a data source it has, stands in for it."""
    from pyspark.errors import AnalysisException

    from attrition.outcomes import spark as on_spark

    monkeypatch.setattr(on_spark, "LOG_FORMAT", "parquet")
    missing = str(tmp_path / "no-log-here")
    with pytest.raises(LookupError) as caught:
        on_spark.read_log(spark, missing)
    assert str(caught.value).startswith(f"cannot read the inference log at {missing}: [PATH_NOT_FOUND]")
    assert isinstance(caught.value.__cause__, AnalysisException)


def test_storage_options_are_refused_with_spark_in_one_line(tmp_path, capsys):
    """delta-rs options mean nothing to Spark, which reads storage with the cluster's credentials:
    refused before any session starts, rather than silently ignored."""
    args = ["--log", "abfss://logs@account.dfs.core.windows.net/inference_log", "--outcomes", "o.csv"]
    code, out, err = run_cli(capsys, *args, "--spark", "--storage-option", "azure_storage_account_key=k")
    assert (code, out) == (2, "")
    (line,) = err.strip().splitlines()
    assert (
        line.startswith("error: --storage-option ") and "--spark" in line and "cluster's credentials" in line
    )


def test_the_monthly_databricks_job_runs_the_spark_report():
    from helpers import ROOT
    from test_batch import bundle_spec, entry_point, resolve

    from attrition.cli import parser

    spec = bundle_spec()
    job = spec["resources"]["jobs"]["attrition_outcomes"]
    (task,) = job["tasks"]
    module = entry_point(ROOT / task["spark_python_task"]["python_file"])
    args = module.parser().parse_args([resolve(p, spec) for p in task["spark_python_task"]["parameters"]])
    parsed = parser().parse_args(module.attrition_command(args))
    assert (parsed.command, parsed.action, parsed.spark) == ("outcomes", "report", True)
    assert (parsed.log, parsed.outcomes) == ("main.hr.inference_log", "main.hr.attrition_outcomes")
    assert job["schedule"]["quartz_cron_expression"].split()[3:] == ["1", "*", "?"]  # monthly
    (cluster,) = job["job_clusters"]
    assert "{{secrets/" in cluster["new_cluster"]["spark_env_vars"]["ATTRITION_ENTITY_KEY"]
