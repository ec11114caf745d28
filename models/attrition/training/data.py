"""Getting the IBM HR Attrition CSV: a local folder first, then Kaggle (with credentials), then a
pinned download, always checked against the pinned SHA-256."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import pooch

from attrition.contract.errors import AttritionError
from attrition.contract.schema import DROPPED_COLUMNS, FEATURES, RAW_COLUMNS, TARGET

FILENAME = "WA_Fn-UseC_-HR-Employee-Attrition.csv"
SHA256 = "a5c31e38bd7fafc9bc333884eb181b06b41b8e5e488e8f7ccb27199fb3be7659"
#: IBM's copy of the Kaggle file at a fixed commit: the same bytes as the Kaggle download.
URL = (
    "https://raw.githubusercontent.com/IBM/employee-attrition-aif360/"
    "13287d5f717dc978eda249aef4665e04c7cec8b0/data/emp_attrition.csv"
)
KAGGLE_DATASET = "pavansubhasht/ibm-hr-analytics-attrition-dataset"
DATA_DIR_ENV = "ATTRITION_DATA_DIR"
EXPECTED_ROWS = 1470


class DataError(AttritionError, RuntimeError):
    """The data set could not be had, or is not the one we expect."""


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The folder holding the CSV: the argument, else ``$ATTRITION_DATA_DIR``, else a user cache."""
    if path is not None:
        return Path(path).expanduser()
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    return Path(pooch.os_cache("employee-attrition"))


def fetch(path: str | os.PathLike | None = None) -> Path:
    """Return the path of a verified copy of the CSV, downloading it into the data folder if absent."""
    folder = data_dir(path)
    target = folder / FILENAME
    if not target.exists():
        _download(folder)
    _verify(target)
    return target


def load_raw(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """All 35 columns of the CSV, checked for the expected columns and row count."""
    csv = fetch(path)
    frame = pd.read_csv(csv, encoding="utf-8-sig")  # the file starts with a BOM
    missing = [c for c in RAW_COLUMNS if c not in frame.columns]
    extra = [c for c in frame.columns if c not in RAW_COLUMNS]
    if missing or extra:
        raise DataError(f"{csv} has unexpected columns: missing {missing}, unexpected {extra}")
    if len(frame) != EXPECTED_ROWS:
        raise DataError(f"{csv} has {len(frame)} rows; expected {EXPECTED_ROWS}")
    return frame


def load(path: str | os.PathLike | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """Features (numerics as float64) and the binary target (1 = left)."""
    raw = load_raw(path)
    features = raw.loc[:, list(FEATURES)].copy()
    for name in features.columns:
        if features[name].dtype != object:
            features[name] = features[name].astype("float64")
    target = (raw[TARGET] == "Yes").astype(int).rename(TARGET)
    assert set(raw.columns) - set(FEATURES) - {TARGET} == set(DROPPED_COLUMNS)
    return features, target


def _verify(target: Path) -> None:
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    if digest != SHA256:
        raise DataError(
            f"{target} has SHA-256 {digest}, expected {SHA256}: it is not the IBM HR Attrition file "
            f"(or it was altered). Delete it to download it again, or replace it with the original."
        )


def _download(folder: Path) -> None:
    errors = []
    if _kaggle_credentials():
        try:
            _download_kaggle(folder)
            return
        except Exception as exc:  # any Kaggle failure falls back to the pinned URL
            errors.append(f"Kaggle: {exc}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        pooch.retrieve(URL, known_hash=f"sha256:{SHA256}", fname=FILENAME, path=folder, progressbar=False)
        return
    except Exception as exc:  # network down, proxy, read-only folder, ...
        errors.append(f"{URL}: {exc}")
    raise DataError(
        f"{FILENAME} is not in {folder} and could not be downloaded ({'; '.join(errors)}).\n"
        f"Put the file there, or set {DATA_DIR_ENV} to the folder that holds it (get it from Kaggle: "
        f"{KAGGLE_DATASET}, or from {URL})."
    )


def _kaggle_credentials() -> bool:
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return True
    config = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    return (config / "kaggle.json").exists()


def _download_kaggle(folder: Path) -> None:
    from kaggle.api.kaggle_api_extended import KaggleApi  # optional extra: pip install ...[kaggle]

    api = KaggleApi()
    api.authenticate()
    api.dataset_download_files(KAGGLE_DATASET, path=str(folder), unzip=True, quiet=True)
    if not (folder / FILENAME).exists():
        raise DataError(f"the Kaggle dataset {KAGGLE_DATASET} did not contain {FILENAME}")
