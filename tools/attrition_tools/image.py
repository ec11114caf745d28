"""The serving image (``make image``): both variants of ``runtime/Dockerfile`` built with podman, the
CycloneDX SBOM of each image's Python environment, its licence table, and the run flags of the
production Deployment.

- **Variants**: ``default`` (trust extras ``alibi``: BSL 1.1 code inside) and ``open`` (no extras).
- **Base**: ``public`` is the Dockerfile's default (python:3.11-slim-bookworm by digest); ``local`` is
  made from Debian's own packages (runtime/container/debian-base.sh) for machines that reach no container
  registry, and is kept in podman's store between runs.
- **CA bundle**: where pip's configuration names a ``cert`` (a machine whose registry traffic passes a
  proxy with its own CA), that file is lent to the install step as a build secret, never copied.
- **Engine settings**: runtime/container/containers.conf (``CONTAINERS_CONF``), nothing in /etc.
- **Deployment flags**: ``kubectl kustomize kustomize/overlays/production`` rendered and turned into
  ``podman run`` flags (user, read-only root, capabilities, no-new-privileges, emptyDirs as tmpfs, env,
  resources), so that the container test and the benchmark run the image as the cluster does.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "runtime" / "Dockerfile"
IGNORE_FILE = ROOT / "runtime" / "Dockerfile.dockerignore"
CONTAINERS_CONF = ROOT / "runtime" / "container" / "containers.conf"
DEBIAN_BASE_SCRIPT = ROOT / "runtime" / "container" / "debian-base.sh"
PRODUCTION_OVERLAY = ROOT / "kustomize" / "overlays" / "production"
OUT_DIR = ROOT / "build" / "image"
IMAGE = "localhost/employee-attrition-serving"
LOCAL_BASE = "localhost/attrition-base:bookworm"
#: Variant name -> the Dockerfile's TRUST_EXTRAS build argument.
VARIANTS = {"default": "alibi", "open": ""}
#: Packages the open image must not carry: the BSL-licensed trust stack and what only it brings in.
NOT_IN_OPEN = ("alibi", "alibi-detect", "spacy", "transformers")
INSTALL_HINT = (
    "podman is needed to build and run the serving image: on Debian/Ubuntu "
    "`apt-get install podman buildah runc debootstrap`, on Fedora `dnf install podman`, on macOS "
    "`brew install podman && podman machine init && podman machine start`"
)
#: Build-context paths the Dockerfile copies (runtime/Dockerfile.dockerignore lets the same through),
#: and where a baked model goes in it.
CONTEXT = ("pyproject.toml", "uv.lock", "README.md", "tools/pyproject.toml", "models/attrition", "runtime")
BAKED_MODEL_DIR = "build/model"
BAKED_TAG = f"{IMAGE}:baked"
#: The SBOM generator's own environment (a hashed requirements file of its own).
SBOM_VENV = ROOT / ".venv-sbom"


def tag(variant: str) -> str:
    return f"{IMAGE}:{variant}"


def sbom_path(variant: str) -> Path:
    return OUT_DIR / f"{variant}.cdx.json"


def engine_env() -> dict[str, str]:
    """The environment of every podman call: the project's engine settings, not /etc's."""
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, check: bool = True, capture: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["podman", *args], env=engine_env(), check=check, capture_output=capture, text=True, **kwargs
    )


def available() -> bool:
    return shutil.which("podman") is not None


def ca_bundle() -> Path | None:
    """The CA bundle pip's configuration names (``cert``; ``PIP_CERT`` first), if it exists. Asked of
    the base interpreter's pip: a uv-made virtualenv has none."""
    if os.environ.get("PIP_CERT") and Path(os.environ["PIP_CERT"]).is_file():
        return Path(os.environ["PIP_CERT"])
    python = Path(sys.base_prefix) / "bin" / "python3"
    listed = subprocess.run(
        [str(python), "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    ).stdout
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        if key.endswith(".cert") and Path(value.strip("'\" ")).is_file():
            return Path(value.strip("'\" "))
    return None


def ensure_local_base(progress=print) -> str:
    """The Debian-packages base in podman's store, made once (debootstrap) and kept between runs."""
    if podman("image", "exists", LOCAL_BASE, check=False).returncode != 0:
        progress(f"image: making the base {LOCAL_BASE} from Debian bookworm's packages (debootstrap) ...")
        subprocess.run(["sh", str(DEBIAN_BASE_SCRIPT), LOCAL_BASE], env=engine_env(), check=True)
    return LOCAL_BASE


def build_args(variant: str, base: str | None, model_dir: str | None = None) -> list[str]:
    """``podman build`` arguments for one variant (the GitHub workflow passes the same build args)."""
    args = ["--file", str(DOCKERFILE), "--ignorefile", str(IGNORE_FILE), "--layers", "--tag", tag(variant)]
    args += ["--build-arg", f"TRUST_EXTRAS={VARIANTS[variant]}"]
    if base:
        args += ["--build-arg", f"PYTHON_IMAGE={base}"]
    if model_dir:
        args += ["--build-arg", f"MODEL_DIR={model_dir}"]
    cert = ca_bundle()
    if cert:
        args += ["--secret", f"id=ca-bundle,src={cert}"]
    return args


def build(
    variant: str, base: str | None, context: Path = ROOT, model_dir: str | None = None, image: str = ""
) -> float:
    """Build one variant; returns the wall time in seconds. ``image`` overrides the tag."""
    args = build_args(variant, base, model_dir)
    if image:
        args[args.index("--tag") + 1] = image
    began = time.monotonic()
    podman("build", *args, str(context), capture=False)
    return time.monotonic() - began


def exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


def build_baked(model: Path, workdir: Path, image: str = BAKED_TAG) -> str:
    """The default variant with ``model`` baked in (build arg MODEL_DIR) from a context holding the
    repository's files and the model: every layer but the model's comes from the layer cache."""
    context = workdir / "context"
    for name in CONTEXT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__", "tests"))
        else:
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, context / name)
    shutil.copytree(model, context / BAKED_MODEL_DIR)
    build("default", LOCAL_BASE if exists(LOCAL_BASE) else None, context, BAKED_MODEL_DIR, image)
    return image


def inspect(image: str) -> dict:
    return json.loads(podman("image", "inspect", image).stdout)[0]


def figures(variant: str) -> dict:
    """Uncompressed size and layer count, as podman's store reports them."""
    info = inspect(tag(variant))
    return {"size_mb": round(info["Size"] / 1e6, 1), "layers": len(info["RootFS"]["Layers"])}


def sbom(variant: str) -> Path:
    """The CycloneDX SBOM (JSON) of the image's Python environment. The distributions' metadata
    (``*.dist-info``) is copied out of the mounted image into a throw-away virtualenv of this
    interpreter's Python (the same minor), which cyclonedx-py reads like any environment: no SBOM tool
    enters the image, and nothing but metadata is copied."""
    out = sbom_path(variant)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="attrition-sbom-") as tmp:
        env = Path(tmp) / "env"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
        (site,) = env.glob("lib/python3.*/site-packages")
        root = Path(podman("image", "mount", tag(variant)).stdout.strip())
        try:
            for info in (root / "opt" / "venv" / site.relative_to(env)).glob("*.dist-info"):
                shutil.copytree(info, site / info.name)
        finally:
            podman("image", "unmount", tag(variant), check=False)
        subprocess.run(
            [str(SBOM_VENV / "bin" / "cyclonedx-py"), "environment", "--output-format", "JSON",
             "--output-file", str(out), str(env / "bin" / "python")],
            check=True,
        )  # fmt: skip
    return out


def licence_of(component: dict) -> str:
    """One short licence string per component: its SPDX ids or expression where the package declares
    them, else its trove classifiers' names (``License :: OSI Approved :: MIT License`` -> ``MIT
    License``)."""
    spdx, declared = [], []
    for entry in component.get("licenses", []):
        if "expression" in entry:
            spdx.append(entry["expression"])
        elif "id" in entry.get("license", {}):
            spdx.append(entry["license"]["id"])
        elif name := entry.get("license", {}).get("name", ""):
            declared.append(name.removeprefix("License :: ").removeprefix("OSI Approved :: "))
    names = spdx or [n if len(n) <= 60 else "licence text in the package" for n in declared]
    return " AND ".join(sorted(set(names))) or "not declared"


def licences() -> dict[str, dict[str, str]]:
    """Variant -> package -> licence, from the SBOMs."""
    per_variant = {}
    for variant in VARIANTS:
        components = json.loads(sbom_path(variant).read_text()).get("components", [])
        per_variant[variant] = {c["name"].lower(): licence_of(c) for c in components}
    return per_variant


def licence_table() -> str:
    """Markdown: each licence with the packages of each image that carry it; licences of a single
    package in both images share the last row."""
    per_variant = licences()
    rows, single = [], [[] for _ in per_variant]
    for licence in sorted({lic for packages in per_variant.values() for lic in packages.values()}):
        names = [
            sorted(n for n, lic in packages.items() if lic == licence) for packages in per_variant.values()
        ]
        if max(len(n) for n in names) == 1:
            for found, where in zip(names, single, strict=True):
                where.extend(f"{name} ({licence})" for name in found)
            continue
        cells = [", ".join(n) if len(n) <= 6 else f"{len(n)} packages" for n in names]
        rows.append(f"| {licence} | {cells[0] or '-'} | {cells[1] or '-'} |")
    rows.append(f"| one package each | {', '.join(single[0])} | {', '.join(single[1])} |")
    return "\n".join(["| Licence | Default image | Open image |", "| --- | --- | --- |", *rows]) + "\n"


def build_all(base: str, progress=print) -> dict:
    """Both variants, their SBOMs, licence table and figures (build/image/)."""
    if not available():
        raise SystemExit(INSTALL_HINT)
    base_image = ensure_local_base(progress) if base == "local" else None
    report: dict = {"base": base_image or "public (the Dockerfile's default)", "variants": {}}
    for variant in VARIANTS:
        progress(f"image: building {tag(variant)} ...")
        seconds = build(variant, base_image)
        report["variants"][variant] = {"build_s": round(seconds, 1), **figures(variant)}
        progress(f"image: SBOM of {tag(variant)} -> {sbom(variant)}")
    return _summarise(report)


def load_all(folder: Path, progress=print) -> dict:
    """Images built elsewhere (CI's BuildKit OCI archives ``<variant>.oci.tar``) into podman's store
    under the tags ``make image`` gives, with their SBOMs, licence table and figures."""
    report: dict = {"base": f"OCI archives in {folder}", "variants": {}}
    for variant in VARIANTS:
        pulled = podman("pull", f"oci-archive:{folder / f'{variant}.oci.tar'}").stdout
        loaded = pulled.strip().splitlines()[-1]  # the image ID
        podman("tag", loaded, tag(variant))
        report["variants"][variant] = figures(variant)
        progress(f"image: SBOM of {tag(variant)} -> {sbom(variant)}")
    return _summarise(report)


def _summarise(report: dict) -> dict:
    sizes = {v: f["size_mb"] for v, f in report["variants"].items()}
    report["open_over_default"] = round(sizes["open"] / sizes["default"], 3)
    (OUT_DIR / "licences.md").write_text(licence_table())
    (OUT_DIR / "figures.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attrition-image", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base",
        choices=("local", "public"),
        default=os.environ.get("ATTRITION_IMAGE_BASE", "local"),
        help="local: Debian's packages (no container registry needed); public: the Dockerfile's default",
    )
    parser.add_argument("--licences", action="store_true", help="print the licence table of the SBOMs")
    parser.add_argument("--load", type=Path, metavar="DIR", help="load <variant>.oci.tar from DIR, no build")
    args = parser.parse_args(argv)
    if args.licences:
        print(licence_table(), end="")
        return 0
    report = load_all(args.load) if args.load else build_all(args.base)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
