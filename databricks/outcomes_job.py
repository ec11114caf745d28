"""Databricks job entry point: the monthly outcomes report, i.e. ``attrition outcomes report --spark``,
on the job's cluster: the inference log's Delta table (a path in ADLS or a Unity Catalog table) joined
to an outcomes table by name, the report logged to MLflow on Databricks. Job ``attrition_outcomes`` in
``databricks.yml`` runs this file (``spark_python_task``) monthly; the entity-key secret comes from a
Databricks secret scope through the cluster's environment (``ATTRITION_ENTITY_KEY``).

    python databricks/outcomes_job.py --log main.hr.inference_log --outcomes main.hr.attrition_outcomes \\
        --model-name main.hr.employee_attrition
"""

from __future__ import annotations

import argparse
import sys

from attrition.databricks_env import run_on_cluster
from attrition.outcomes.join import DEFAULT_HORIZON_DAYS


def parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(description="attrition outcomes report as a Databricks job")
    command.add_argument(
        "--log", required=True, help="the inference log: catalog.schema.table or a Delta path"
    )
    command.add_argument("--outcomes", required=True, help="outcomes table: catalog.schema.table")
    command.add_argument("--model-name", required=True, help="Unity Catalog name: catalog.schema.model")
    command.add_argument("--horizon-days", type=int, default=DEFAULT_HORIZON_DAYS)
    command.add_argument("--experiment", help="workspace path of the MLflow experiment")
    return command


def attrition_command(args: argparse.Namespace) -> list[str]:
    """The ``attrition`` command line this job runs."""
    return [
        "outcomes",
        "report",
        "--spark",
        "--log",
        args.log,
        "--outcomes",
        args.outcomes,
        "--horizon-days",
        str(args.horizon_days),
    ]


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run_on_cluster(args.model_name, args.experiment, attrition_command(args))


if __name__ == "__main__":
    sys.exit(main())
