"""The outcomes report on local Spark gives the same numbers as the local command on the same Delta
log and outcomes file (the join on Spark, the metrics on the driver with the same code)."""

from __future__ import annotations

import json

import pytest
from test_outcomes import log_and_outcomes, run_cli, scored  # noqa: F401  (fixtures)

pytestmark = pytest.mark.spark


def _without_run(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "mlflow_run_id"}


def test_spark_report_equals_the_local_report(log_and_outcomes, capsys):  # noqa: F811
    pytest.importorskip("pyspark", reason="needs the spark extra: pip install -e '.[spark]'")
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
