"""One benchmark run: measure (measure.py), then report (report.py), then write both files."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from attrition import bundle as bundle_module
from attrition import config, registry
from attrition.contract.outputs import ROW_OUTPUTS
from attrition_runtime.settings import INFERENCE_LOG_ENV, RuntimeSettings
from attrition_tools.bench import binary, inference_log
from attrition_tools.bench.measure import (
    Workload,
    bare_settings_folder,
    export_classifier,
    in_process,
    machine,
    run_server,
)
from attrition_tools.bench.report import markdown, ratios, targets
from attrition_tools.bench.schema import FULL, QUICK, SCHEMA, BenchSettings, Report
from attrition_tools.serve import SERVER_DIR, Server, ensure_model, free_ports, mlserver_command

OUT_DIR = config.project_home() / "book" / "benchmark"
QUICK_ENV = "ATTRITION_BENCH_QUICK"


def model_uri(settings: BenchSettings, progress=print) -> str:
    """``ensure_model()``; a quick run with nothing registered trains a quick bundle in a scratch store
    instead of a full search in the project's own."""
    runtime = RuntimeSettings()
    if settings.quick and not runtime.model_uri and registry.alias_version(runtime.model_alias) is None:
        scratch = tempfile.mkdtemp(prefix="attrition-bench-mlflow-")
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{scratch}/mlflow.db"
        os.environ["ATTRITION_QUICK"] = "1"
        config.configure_mlflow()
    return ensure_model(progress)


def run(settings: BenchSettings, out_dir: Path, progress=print) -> Report:
    """The whole benchmark; writes ``latest.json`` and ``latest.md`` into ``out_dir``."""
    begun = time.monotonic()
    report: Report = {  # type: ignore[typeddict-item]  (filled in below)
        "schema": SCHEMA,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": settings.quick,
        "machine": machine(),
    }
    config.configure_mlflow()
    uri = model_uri(settings, progress)
    progress(f"bench: model {uri}; loading the bundle in-process ...")
    trust_bundle = bundle_module.load(uri)
    server_settings = json.loads((SERVER_DIR / "settings.json").read_text())
    workers = max(int(server_settings.get("parallel_workers", 1)), 1)
    report["settings"] = _settings(settings, server_settings, uri, trust_bundle)
    workload = Workload.build(settings)
    progress("bench: where a one-row request's time goes in our runtime ...")
    profiled = subprocess.run(
        [sys.executable, "-m", "attrition_tools.bench.profile", uri],
        capture_output=True,
        text=True,
        check=True,
    )
    report["profile"] = json.loads(profiled.stdout.strip().splitlines()[-1])
    progress("bench: in-process scoring ...")
    local_rows, local_drift, local_explain = in_process(trust_bundle, settings, workload)
    bare, ours = _servers(trust_bundle, uri, settings, workload, workers, progress)
    del trust_bundle
    report["inference_log"] = inference_log.measure(uri, settings, workload.rows[1], progress)
    report["batch"] = None
    if not settings.quick:  # Spark's start alone takes longer than a whole quick run
        from attrition_tools.bench import spark

        progress(f"bench: batch scoring of {settings.batch_rows:,} rows on local Spark and with pandas ...")
        report["batch"] = spark.measure(rows=settings.batch_rows)
    report["rows"] = local_rows + bare["rows"] + ours["rows"]
    report["explain"] = {"server": ours["explain"], "in_process": local_explain}
    report["drift"] = local_drift
    report["startup"] = {"ours": {"ready_s": ours["ready_s"]}, "bare": {"ready_s": bare["ready_s"]}}
    report["memory"] = {"ours": ours["memory"], "bare": bare["memory"]}
    report["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    report["ratios"] = ratios(report, settings)
    report["targets"] = targets(report, settings)
    report["binary"] = binary.section(report, settings)
    report["duration_s"] = round(time.monotonic() - begun, 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "latest.md").write_text(markdown(report) + binary.markdown(report))
    return report


def _settings(settings: BenchSettings, server_settings: dict, uri: str, trust_bundle) -> dict:
    """What the run measured with: its own settings, the server's, the model and the clients."""
    return {
        **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()},
        "server": server_settings,
        "model": {
            "uri": uri,
            "family": trust_bundle.info.model_family,
            "version": registry.version_of(uri),
            "scoring": trust_bundle.scoring,
        },
        "clients": {
            "rest": f"aiohttp {version('aiohttp')} (JSON)",
            "grpc": f"tritonclient {version('tritonclient')} (grpc.aio)",
        },
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }


def _servers(trust_bundle, uri: str, settings: BenchSettings, workload, workers: int, progress):
    """Bare MLServer (the stock MLflowRuntime serving the classifier alone), then ours, one after
    the other on free ports."""
    with tempfile.TemporaryDirectory(prefix="attrition-bench-") as tmp:
        tmp = Path(tmp)
        model_dir = export_classifier(trust_bundle, tmp / "classifier")
        progress("bench: bare MLServer (stock MLflowRuntime, classifier only) ...")
        # Server's own command with the bare settings folder instead of SERVER_DIR.
        bare_folder = bare_settings_folder(model_dir, tmp / "bare")
        stock = mlserver_command(bare_folder, stock=True)
        bare = run_server(
            Server("", ports=free_ports(), log_path=tmp / "bare.log", command=stock),
            "bare", settings, workload, None, workers,
        )  # fmt: skip
        progress("bench: our server (bundle: probability, outliers, drift, explanations) ...")
        logged = {INFERENCE_LOG_ENV: str(tmp / "inference-log")}  # as served: the log on
        ours = run_server(
            Server(uri, ports=free_ports(), env=logged, log_path=tmp / "ours.log"),
            "ours", settings, workload, ROW_OUTPUTS[0].name, workers,  # probability
        )  # fmt: skip
    return bare, ours


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attrition-bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        default=config.env_flag(QUICK_ENV),
        help=f"smoke run: a few requests per cell (also {QUICK_ENV}=1)",
    )
    parser.add_argument("--out", type=Path, help=f"output folder (default {OUT_DIR}; quick: a temp folder)")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    out = args.out or (Path(tempfile.gettempdir()) / "attrition-bench-quick" if args.quick else OUT_DIR)
    report = run(settings, out)
    print("\n" + markdown(report) + binary.markdown(report))
    print(f"written: {out / 'latest.json'}, {out / 'latest.md'} in {report['duration_s']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
