"""Shared test set-up: the shared data folder, a throw-away MLflow store, quick training, a real
MLServer per test module that asks for one, on free ports (always stopped)."""

from __future__ import annotations

import os
import tempfile

import pytest
from helpers import ANCHOR_BUDGET_S, SHARED_DATA

# Set before the project is imported (and inherited by notebook kernels run by nbval).
if not os.environ.get("ATTRITION_DATA_DIR") and SHARED_DATA.exists():
    os.environ["ATTRITION_DATA_DIR"] = str(SHARED_DATA)
_STORE = tempfile.mkdtemp(prefix="attrition-tests-mlflow-")
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_STORE}/mlflow.db"
os.environ.setdefault("ATTRITION_QUICK", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The book's notebooks (collected by nbval) are the ``book`` level."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.book)


@pytest.fixture(scope="session")
def release():
    """One quick-trained bundle, registered (staging + production) in the session's store."""
    from attrition.training.release import train_and_register

    return train_and_register(quick=True, progress=lambda _: None)


@pytest.fixture(scope="module")
def server(release, tmp_path_factory):
    """The real MLServer with our runtime, serving the registered bundle by alias."""
    from attrition import config
    from attrition_tools.serve import Server, free_ports

    log = tmp_path_factory.mktemp("server") / "mlserver.log"
    # Window tests as soon as they are due (no 1 s spacing), so that tests see each one.
    env = {
        "ATTRITION_ANCHOR_BUDGET_S": str(ANCHOR_BUDGET_S),
        "ATTRITION_DRIFT_MIN_INTERVAL_S": "0",
        # The inference log in a throw-away folder, never in the checkout.
        "ATTRITION_INFERENCE_LOG": str(tmp_path_factory.mktemp("inference-log")),
    }
    with Server(config.model_uri(config.PRODUCTION), ports=free_ports(), env=env, log_path=log) as running:
        yield running
