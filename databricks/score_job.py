"""Databricks job entry point: score a Unity Catalog table with the registered bundle by alias, i.e.
``attrition score-table``, on the job's cluster, with MLflow on Databricks. Job
``attrition_batch_score`` in ``databricks.yml`` runs this file (``spark_python_task``) monthly.

    python databricks/score_job.py --table main.hr.employees \\
        --model-name main.hr.employee_attrition --alias production --mode append
"""

from __future__ import annotations

import argparse
import sys

from attrition.databricks_env import run_on_cluster


def parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(description="attrition score-table as a Databricks job")
    command.add_argument("--table", required=True, help="catalog.schema.table (or a Parquet/Delta path)")
    command.add_argument("--model-name", required=True, help="Unity Catalog name: catalog.schema.model")
    command.add_argument("--alias", default="production", help="registry alias (default: %(default)s)")
    command.add_argument("--output", help="scored rows (default: <table>_scored)")
    command.add_argument("--rejects", help="rejected rows (default: <table>_rejects)")
    command.add_argument("--mode", choices=("overwrite", "append"), default="append")
    command.add_argument("--drift-sample-rows", type=int, help="default: attrition.batch's")
    command.add_argument("--experiment", help="workspace path of the MLflow experiment")
    return command


def attrition_command(args: argparse.Namespace) -> list[str]:
    """The ``attrition`` command line this job runs."""
    command = ["score-table", args.table, "--alias", args.alias, "--mode", args.mode]
    command += ["--run-name", "score-table-job"]
    for flag, value in (
        ("--output", args.output),
        ("--rejects", args.rejects),
        ("--drift-sample-rows", args.drift_sample_rows),
    ):
        command += [flag, str(value)] if value is not None else []
    return command


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run_on_cluster(args.model_name, args.experiment, attrition_command(args))


if __name__ == "__main__":
    sys.exit(main())
