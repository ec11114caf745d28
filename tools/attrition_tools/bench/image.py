"""The serving images' figures (part of ``make bench``): size uncompressed and compressed (gzip layers,
as a registry stores them) and layer count of both variants, cold and warm build time, and container
start to ready beside ``make serve``'s server start on the same exported model, measured side by side.

Cold builds (``--cold``: no layer cache, the base kept) take minutes on a shared machine; without it
the build times are those ``make image`` recorded last (build/image/figures.json) and a warm rebuild.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from attrition import bundle, config
from attrition_tools import image
from attrition_tools.bench.run import OUT_DIR, model_uri
from attrition_tools.bench.schema import QUICK
from attrition_tools.container import Container, production_deployment
from attrition_tools.serve import Server, free_ports


def compressed_mb(tag: str) -> float:
    """Sum of the gzip-compressed layers: the image pushed to an OCI layout, as to a registry."""
    with tempfile.TemporaryDirectory(prefix="attrition-oci-") as tmp:
        image.podman("push", "--compression-format", "gzip", tag, f"oci:{tmp}/layout")
        index = json.loads(Path(tmp, "layout", "index.json").read_text())
        digest = index["manifests"][0]["digest"].split(":", 1)[1]
        manifest = json.loads(Path(tmp, "layout", "blobs", "sha256", digest).read_text())
        return round(sum(layer["size"] for layer in manifest["layers"]) / 1e6, 1)


def builds(cold: bool) -> dict:
    base = image.LOCAL_BASE if image.exists(image.LOCAL_BASE) else None
    times = {}
    for variant in image.VARIANTS:
        args = image.build_args(variant, base) + (["--no-cache"] if cold else [])
        began = time.monotonic()
        image.podman("build", *args, str(image.ROOT))
        times[variant] = round(time.monotonic() - began, 1)
    return times


def start_to_ready(model_uri: str) -> dict:
    """Seconds to the readiness probe's 200: the default image with the model baked in (podman run)
    and ``make serve``'s server on the same folder, one after the other."""
    with tempfile.TemporaryDirectory(prefix="attrition-bench-image-") as tmp:
        model = bundle.export(model_uri, Path(tmp) / "model")
        tag = image.build_baked(model, Path(tmp))
        container = Container(tag, production_deployment(), free_ports(), env={"ATTRITION_MODEL_ALIAS": None})
        try:
            container_s = container.start()
        finally:
            container.remove()
            image.podman("rmi", "--force", tag, check=False)
        server = Server(str(model), ports=free_ports(), log_path=Path(tmp) / "serve.log").start()
        try:
            serve_s = server.wait_ready()
        finally:
            server.stop()
    return {"container_s": round(container_s, 1), "make_serve_s": round(serve_s, 1)}


def markdown(report: dict) -> str:
    lines = [
        "| Image | Uncompressed MB | Compressed MB | Layers | Cold build s | Warm build s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for variant, f in report["variants"].items():
        cells = [f["size_mb"], f["compressed_mb"], f["layers"], f.get("cold_build_s", "-"), f["warm_build_s"]]
        lines.append(f"| {variant} | " + " | ".join(str(c) for c in cells) + " |")
    ready = report["start_to_ready"]
    lines.append("")
    lines.append(
        f"Open/default size: {report['open_over_default']:.2f} uncompressed, "
        f"{report['open_over_default_compressed']:.2f} compressed. Start to ready: container "
        f"{ready['container_s']} s, make serve {ready['make_serve_s']} s (same model, one after the other)."
    )
    return "\n".join(lines) + "\n"


def run(cold: bool, progress=print) -> dict:
    if not image.available():
        raise SystemExit(image.INSTALL_HINT)
    progress("bench image: builds (cold: no layer cache) ..." if cold else "bench image: warm builds ...")
    cold_times = builds(cold=True) if cold else {}
    warm_times = builds(cold=False)
    variants = {}
    for variant in image.VARIANTS:
        progress(f"bench image: compressing {image.tag(variant)} ...")
        variants[variant] = {**image.figures(variant), "compressed_mb": compressed_mb(image.tag(variant))}
        variants[variant]["warm_build_s"] = warm_times[variant]
        if variant in cold_times:
            variants[variant]["cold_build_s"] = cold_times[variant]
    progress("bench image: start to ready, container and make serve ...")
    config.configure_mlflow()
    report = {
        "variants": variants,
        "open_over_default": round(variants["open"]["size_mb"] / variants["default"]["size_mb"], 3),
        "open_over_default_compressed": round(
            variants["open"]["compressed_mb"] / variants["default"]["compressed_mb"], 3
        ),
        # The registered model, else a quick one in a scratch store (as `make bench --quick` does).
        "start_to_ready": start_to_ready(model_uri(QUICK, progress)),
    }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attrition-bench-image", description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="also time builds without the layer cache")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (default %(default)s)")
    args = parser.parse_args(argv)
    report = run(args.cold)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "image.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "image.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
