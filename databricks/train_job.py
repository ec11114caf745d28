"""Databricks job entry point: train, bundle and register, i.e. ``attrition train``, against MLflow on
Databricks and a Unity Catalog model. Job ``attrition_train`` in ``databricks.yml`` runs this file
(``spark_python_task``) on a cluster that has the project's wheel installed.

    python databricks/train_job.py --model-name main.hr.employee_attrition --data-dir /Volumes/main/hr/raw
"""

from __future__ import annotations

import argparse
import sys

from attrition.databricks_env import use_databricks
from attrition.serving.compiled.calibration import SETTINGS


def parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(description="attrition train as a Databricks job")
    command.add_argument("--model-name", required=True, help="Unity Catalog name: catalog.schema.model")
    command.add_argument("--data-dir", help="folder with the CSV, e.g. a volume (/Volumes/<c>/<s>/<v>)")
    command.add_argument("--experiment", help="workspace path of the MLflow experiment")
    command.add_argument("--quick", action="store_true", help="small search and 3-fold CV")
    command.add_argument("--seed", type=int, default=0)
    command.add_argument(
        "--calibration", choices=SETTINGS, default="auto", help="as attrition train's (default: %(default)s)"
    )
    return command


def attrition_command(args: argparse.Namespace) -> list[str]:
    """The ``attrition`` command line this job runs."""
    command = ["train", "--seed", str(args.seed), "--calibration", args.calibration]
    command += ["--data-dir", args.data_dir] if args.data_dir else []
    command += ["--quick"] if args.quick else []
    return command


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    use_databricks(args.model_name, args.experiment)
    from attrition import cli

    return cli.main(attrition_command(args))


if __name__ == "__main__":
    sys.exit(main())
