"""``attrition train | promote | predict``: the command line over the model code."""

from __future__ import annotations

import argparse
import json
import sys

import pandas as pd

from attrition import config
from attrition.errors import AttritionError
from attrition.signals import Explain


def _train(args: argparse.Namespace) -> int:
    from attrition.release import train_and_register

    release = train_and_register(args.data_dir, quick=args.quick or None, seed=args.seed, trust=args.trust)
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
    from attrition.schema import FEATURES, validate_features
    from attrition.signals import MIN_DRIFT_ROWS

    uri = _model_uri(args)
    frame = pd.read_csv(args.csv, encoding="utf-8-sig")
    bundle = load(uri)
    features = validate_features(frame.loc[:, [c for c in FEATURES if c in frame.columns]])
    out = bundle.score(features)
    if "EmployeeNumber" in frame.columns:
        out.insert(0, "EmployeeNumber", frame["EmployeeNumber"])
    if args.explain != "none":
        out["explanation"] = [json.dumps(e) for e in bundle.explain(features, args.explain)]
    out.to_csv(args.output or sys.stdout, index=False)
    if args.drift and len(features) < MIN_DRIFT_ROWS:
        print(f"batch drift: not tested (needs at least {MIN_DRIFT_ROWS} rows)", file=sys.stderr)
    elif args.drift:
        report = bundle.drift(features)
        print(
            f"batch drift: {report.is_drift} (features: {', '.join(report.drifted) or 'none'})",
            file=sys.stderr,
        )
    return 0


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
        choices=("alibi", "open"),
        default="alibi",
        help="trust backend: alibi/alibi-detect (BSL 1.1, with anchors) or open (scipy, scikit-learn, shap)",
    )
    train.set_defaults(func=_train)

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
    predict.set_defaults(func=_predict)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (AttritionError, LookupError, FileNotFoundError) as exc:  # one line: a traceback is noise here
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
