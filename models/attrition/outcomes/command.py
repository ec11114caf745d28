"""``attrition outcomes report``: the command line over the report."""

from __future__ import annotations

import argparse
import json

from attrition import inference_log
from attrition.contract.errors import AttritionError
from attrition.outcomes.join import DEFAULT_HORIZON_DAYS


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``outcomes`` command group and its ``report`` subcommand."""
    outcomes = sub.add_parser("outcomes", help="join outcomes to the inference log: realised performance")
    actions = outcomes.add_subparsers(dest="action", required=True)
    report = actions.add_parser(
        "report",
        help="realised (with bootstrap intervals) and estimated performance per model version and month",
        description="Each outcome joins the latest prediction logged for that employee before the "
        "outcome's date, within the horizon. Employee ids are hashed with $ATTRITION_ENTITY_KEY, the "
        "secret the server logged with. The report is logged to MLflow as a monitoring run.",
    )
    report.add_argument("--log", required=True, help="the inference log's Delta table (folder or URI)")
    report.add_argument("--outcomes", required=True, help="CSV or Parquet: employee_id, left, date")
    report.add_argument("--horizon-days", type=int, default=DEFAULT_HORIZON_DAYS)
    report.add_argument("--margin", type=float, help="flag margin below training CV ROC AUC")
    report.add_argument("--resamples", type=int, help="bootstrap resamples per window")
    report.add_argument(
        "--storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="delta-rs object-store option for the log (e.g. for ADLS), repeatable; not with --spark, "
        "which reads storage with the cluster's credentials",
    )
    report.add_argument(
        "--spark",
        action="store_true",
        help="join on Spark (a workforce-sized log); --log and --outcomes may then be catalog tables",
    )
    report.add_argument("--json", action="store_true", help="print the whole report as JSON")
    report.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from attrition.outcomes.mlflow_run import log_monitoring_run, training_baselines
    from attrition.outcomes.outcomes_file import keyed, read_outcomes
    from attrition.outcomes.report import Settings, build_report

    given = {"margin": args.margin, "resamples": args.resamples}
    settings = Settings(horizon_days=args.horizon_days, **{k: v for k, v in given.items() if v is not None})
    if args.spark:
        report = _on_spark(args, settings)
    else:
        outcomes = keyed(read_outcomes(args.outcomes))
        options = dict(option.split("=", 1) for option in args.storage_option) or None
        log = _read_log(args.log, options)
        report = build_report(log, outcomes, settings, training_baselines(log))
    report["mlflow_run_id"] = log_monitoring_run(report)
    print(json.dumps(report, indent=2) if args.json else summary(report))
    return 0


def _read_log(location: str, options: dict[str, str] | None):
    from deltalake.exceptions import DeltaError

    try:
        return inference_log.read(location, storage_options=options)
    except DeltaError as exc:  # no table there, or storage refused: one line, not a traceback
        first = str(exc).strip().splitlines()[0]
        raise LookupError(f"cannot read the inference log at {location}: {first}") from exc


#: Why ``--storage-option`` and ``--spark`` do not go together, in the one line the user sees.
SPARK_STORAGE = (
    "--storage-option configures the local reader (delta-rs) and is not used with --spark: Spark reads "
    "storage with the cluster's credentials (a Unity Catalog external location or the cluster's Spark "
    "configuration); drop --storage-option"
)


def _on_spark(args: argparse.Namespace, settings) -> dict:
    """The active Spark session (Databricks), else a local one, stopped afterwards. delta-rs
    options are refused rather than translated to Hadoop ones: on Databricks, Unity Catalog governs
    access to the log, and local Spark has no Azure file system to give them to."""
    if args.storage_option:
        raise AttritionError(SPARK_STORAGE)
    from pyspark.sql import SparkSession

    from attrition.batch import local_spark
    from attrition.outcomes.spark import report_on_spark

    spark = SparkSession.getActiveSession()
    started = spark is None
    spark = spark or local_spark()
    try:
        return report_on_spark(spark, args.log, args.outcomes, settings)
    finally:
        if started:
            spark.stop()


def summary(report: dict) -> str:
    """A few lines for people: totals, then one line per model version and month."""
    realised, estimated = report["realised"], report["estimated"]
    lines = [
        f"outcomes {report['outcomes']}: joined {report['rows_joined']}, unjoined {report['unjoined']} "
        f"(horizon {report['horizon_days']} days)",
        f"realised ROC AUC {_fmt(realised['roc_auc'])} [{_fmt(realised['roc_auc_low'])}, "
        f"{_fmt(realised['roc_auc_high'])}], estimated {_fmt(estimated['roc_auc'])}",
    ]
    for entry in report["months"]:
        lines.append(
            f"  v{entry['model_version']} {entry['month']}: logged {entry['rows_logged']}, joined "
            f"{entry['rows_joined']}, realised ROC AUC {_fmt(entry['realised']['roc_auc'])}, estimated "
            f"{_fmt(entry['estimated']['roc_auc'])}{'  FLAGGED' if entry['flagged'] else ''}"
        )
    lines.append(f"mlflow run {report['mlflow_run_id']}")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
