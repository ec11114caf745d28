"""``attrition train | promote | export | predict | score-table | outcomes``: the command line."""

from __future__ import annotations

import argparse
import json
import sys

import pandas as pd

from attrition import backends, config
from attrition.contract.errors import AttritionError
from attrition.contract.trust import Explain
from attrition.serving.compiled.calibration import SETTINGS

LOG_HELP = (
    "also append the scores to the inference log at this location (a folder or abfss:// URL); "
    "employee ids (an employee_id or EmployeeNumber column) are stored as keys hashed with "
    "$ATTRITION_ENTITY_KEY"
)


def _train(args: argparse.Namespace) -> int:
    from attrition.training.release import train_and_register

    release = train_and_register(
        args.data_dir,
        quick=args.quick or None,
        seed=args.seed,
        trust=args.trust,
        calibration=args.calibration,
    )
    print(
        f"cv_roc_auc={release.cv_roc_auc:.4f} model={release.name} version={release.version} "
        f"aliases={','.join(release.aliases)} run_id={release.run_id}"
    )
    return 0


def _promote(args: argparse.Namespace) -> int:
    from attrition.registry import promote

    version = promote(args.version)
    print(f"{config.MODEL_NAME} version {version} is now @{config.PRODUCTION}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from attrition.bundle import export

    uri = _model_uri(args)
    print(export(uri, args.output))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from attrition.bundle import load
    from attrition.contract.outputs import ROW_OUTPUTS
    from attrition.contract.schema import FEATURES, frame_codes
    from attrition.contract.trust import MIN_DRIFT_ROWS

    uri = _model_uri(args)
    frame = pd.read_csv(args.csv, encoding="utf-8-sig")
    bundle = load(uri)
    codes = frame_codes(frame.loc[:, [name for name in FEATURES if name in frame.columns]])
    scores = bundle.score_codes(codes)
    from attrition.inference_log.offline import entity_column

    out = pd.DataFrame({output.name: scores[output.name] for output in ROW_OUTPUTS})
    entity = entity_column(frame)
    if entity:
        out.insert(0, entity, frame[entity])
    if args.explain != "none":
        out["explanation"] = [json.dumps(e) for e in bundle.explain_codes(codes, args.explain)]
    out.to_csv(args.output or sys.stdout, index=False)
    report = None
    if args.drift and len(codes) < MIN_DRIFT_ROWS:
        print(f"batch drift: not tested (needs at least {MIN_DRIFT_ROWS} rows)", file=sys.stderr)
    elif args.drift:
        report = bundle.drift_codes(codes)
        print(
            f"batch drift: {report.is_drift} (features: {', '.join(report.drifted) or 'none'})",
            file=sys.stderr,
        )
    if args.log:
        _append_to_log(
            args.log, out, frame[entity] if entity else None, uri, bundle.info.trust_backend, report
        )
    return 0


def _append_to_log(location: str, scores: pd.DataFrame, entities, uri: str, trust: str, report=None) -> None:
    """One commit of a CLI run's scores to the inference log (stderr says where)."""
    from attrition import registry
    from attrition.inference_log.offline import append_scores

    version = registry.version_of(uri) or uri
    is_drift = None if report is None else bool(report.is_drift)
    entities = None if entities is None else entities.tolist()
    rows = append_scores(location, scores, entities, version, trust, is_drift=is_drift)
    print(f"inference log: {rows} rows appended to {location}", file=sys.stderr)


def _score_table(args: argparse.Namespace) -> int:
    from attrition import batch

    try:
        from pyspark.sql import SparkSession
    except ImportError:
        print(f"error: score-table needs Spark: {batch.SPARK_EXTRA_HINT}", file=sys.stderr)
        return 2
    uri = _model_uri(args)
    spark = SparkSession.getActiveSession()
    started = spark is None
    spark = spark or batch.local_spark(cores=args.cores)
    try:
        report = batch.score_table(
            spark,
            args.source,
            uri,
            args.output,
            args.rejects,
            format=args.format,
            mode=args.mode,
            drift_sample_rows=args.drift_sample_rows,
            seed=args.seed,
            run_name=args.run_name,
        )
        if args.log:
            from attrition.inference_log.offline import append_scored_table

            rows = append_scored_table(args.log, spark, report)
            print(f"inference log: {rows} rows appended to {args.log}", file=sys.stderr)
    finally:
        if started:
            spark.stop()
    print(report.summary())
    return 0


def _log_compact(args: argparse.Namespace) -> int:
    from attrition.inference_log.retention import retention_warning
    from attrition.inference_log.table import compact, storage_options
    from attrition_runtime.settings import RuntimeSettings, env_name

    settings = RuntimeSettings()
    location = args.log or settings.inference_log
    if args.retention_days is not None:
        retention, source = args.retention_days, "--retention-days"
    else:
        retention = settings.inference_log_retention_days
        source = env_name("inference_log_retention_days")
    warning = retention_warning(retention, source)
    if warning:
        print(warning, file=sys.stderr)
    options = storage_options(location, settings.inference_log_storage_options)
    summary = compact(location, retention, args.vacuum_hours, options).summary()
    print(f"{location}: {summary}" + (f"; {warning}" if warning else ""))
    return 0


def _log_commands(sub) -> None:
    from attrition.inference_log.retention import min_retention_days
    from attrition.inference_log.table import VACUUM_RETENTION_HOURS

    log = sub.add_parser("log", help="maintain the inference log (a Delta table)")
    log_sub = log.add_subparsers(dest="log_command", required=True)
    compact = log_sub.add_parser(
        "compact",
        help="delete days past retention, rewrite small files into few, vacuum",
        description="The server commits small files every few seconds per worker: compaction keeps "
        "reads fast and storage bounded. The AKS overlays run it daily (the CronJob "
        "employee-attrition-log-compaction); wherever else the log lives, schedule it daily yourself.",
    )
    compact.add_argument(
        "--log", help="table location (default: $ATTRITION_INFERENCE_LOG or the local folder)"
    )
    compact.add_argument(
        "--retention-days",
        type=int,
        help="delete whole days older than this "
        "(default: $ATTRITION_INFERENCE_LOG_RETENTION_DAYS; unset: keep all); under "
        f"{min_retention_days()} (the outcomes report's horizon + a month) the monthly report loses "
        "predictions, and this warns",
    )
    compact.add_argument(
        "--vacuum-hours",
        type=int,
        default=VACUUM_RETENTION_HOURS,
        help="remove files that left the table longer ago than this (default: %(default)s, Delta's own; "
        "less breaks readers of older versions)",
    )
    compact.set_defaults(func=_log_compact)


def _model_choice(command: argparse.ArgumentParser) -> None:
    command.add_argument("--alias", default=config.PRODUCTION, help="registry alias (default: %(default)s)")
    command.add_argument("--model-uri", help="any MLflow model URI instead of the alias")


def _model_uri(args: argparse.Namespace) -> str:
    config.configure_mlflow()
    return args.model_uri or config.model_uri(args.alias)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="attrition", description="Employee attrition model: train, promote, export, predict."
    )
    sub = root.add_subparsers(dest="command", required=True)
    _add_train(sub)
    promote = sub.add_parser(
        "promote", help=f"move @{config.PRODUCTION} (default: to the @{config.STAGING} version)"
    )
    promote.add_argument("--version", help="the model version to promote")
    promote.set_defaults(func=_promote)

    export = sub.add_parser("export", help="copy a registered bundle into a folder (to bake into an image)")
    export.add_argument("output", help="destination folder (created; must not exist or be empty)")
    _model_choice(export)
    export.set_defaults(func=_export)

    predict = sub.add_parser("predict", help="score a CSV of employees with the registered bundle")
    predict.add_argument("csv", help="CSV with the 30 feature columns (extra columns are ignored)")
    _model_choice(predict)
    predict.add_argument("--output", "-o", help="output CSV (default: stdout)")
    predict.add_argument("--explain", choices=[str(mode) for mode in Explain], default=str(Explain.NONE))
    predict.add_argument("--drift", action="store_true", help="also test the whole file for drift (stderr)")
    predict.add_argument("--log", help=LOG_HELP)
    predict.set_defaults(func=_predict)
    _add_score_table(sub)
    from attrition.outcomes.command import add_parser as add_outcomes

    add_outcomes(sub)
    _log_commands(sub)
    return root


def _add_train(sub) -> None:
    train = sub.add_parser("train", help="search, train, bundle the trust signals and register a new version")
    train.add_argument(
        "--quick", action="store_true", help="small search and 3-fold CV (also: ATTRITION_QUICK=1)"
    )
    train.add_argument(
        "--data-dir", help="folder holding the CSV (default: $ATTRITION_DATA_DIR or a user cache)"
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--trust",
        choices=backends.names(),
        default=backends.DEFAULT,
        help="trust backend: alibi/alibi-detect (BSL 1.1, with anchors) or open (scipy, scikit-learn, shap)",
    )
    train.add_argument(
        "--calibration",
        choices=SETTINGS,
        default="auto",
        help="calibrate the probabilities with scikit-learn's CalibratedClassifierCV: auto (sigmoid when the "
        "out-of-fold ECE is above the tolerance), always with a method, or off (default: %(default)s)",
    )
    train.set_defaults(func=_train)


def _add_score_table(sub) -> None:
    from attrition.batch import DRIFT_SAMPLE_ROWS, FORMATS, WRITE_MODES

    score = sub.add_parser(
        "score-table",
        help="score a Spark table or Parquet/Delta path on Spark; scored and rejected rows go beside it",
        description="Score every row of a table with the registered bundle through mlflow.pyfunc.spark_udf. "
        "Rows that do not fit the schema go to the rejects output with a reason; one MLflow run records "
        "the batch (counts, outlier rate, drift with per-feature p-values). Without an active Spark "
        "session, a local one is started (local[2]).",
    )
    score.add_argument("source", help="catalog table (catalog.schema.table) or a Parquet/Delta path")
    _model_choice(score)
    score.add_argument("--output", "-o", help="scored rows (default: the source name + _scored)")
    score.add_argument("--rejects", help="rejected rows (default: the source name + _rejects)")
    score.add_argument("--format", choices=FORMATS, help="of a path (default: delta if it has a _delta_log)")
    score.add_argument("--mode", choices=WRITE_MODES, default="overwrite", help="for both outputs")
    score.add_argument(
        "--drift-sample-rows",
        type=int,
        default=DRIFT_SAMPLE_ROWS,
        help="drift test exact up to this many rows, else on a uniform sample of this many "
        "(default: %(default)s)",
    )
    score.add_argument("--seed", type=int, default=0, help="of the drift sample")
    score.add_argument("--run-name", default="score-table", help="MLflow run name")
    score.add_argument("--cores", type=int, default=2, help="of the local Spark session, if one is started")
    score.add_argument("--log", help=LOG_HELP)
    score.set_defaults(func=_score_table)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (AttritionError, LookupError, FileNotFoundError) as exc:  # one line: a traceback is noise here
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
