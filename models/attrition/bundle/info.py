"""What a bundle says about itself (``bundle.json``) and what it needs installed."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

from attrition import backends
from attrition.contract import trust

#: Distributions pinned in the model's requirements so that it loads the same anywhere (a trust
#: backend adds its own).
REQUIREMENTS = ("mlflow", "scikit-learn", "pandas", "numpy", "scipy", "joblib", "shap")
#: Pickles (the pipeline, the isolation forest) load faithfully only in the version that wrote them.
MUST_MATCH = ("scikit-learn", "numpy")
#: Training rows scored at build time and again at load: a bundle that answers differently is refused.
SELF_CHECK_ROWS = 2


@dataclass(frozen=True)
class BundleInfo:
    """What a bundle says about itself (saved as ``bundle.json``)."""

    model_family: str
    decision_threshold: float
    cv_roc_auc: float
    trust_backend: str = backends.DEFAULT
    drift_min_rows: int = trust.MIN_DRIFT_ROWS
    drift_p_value: float = trust.DRIFT_P_VALUE
    drift_correction: str = trust.DRIFT_CORRECTION
    outlier_percentile: float = trust.OUTLIER_PERCENTILE
    outlier_threshold: float = float("nan")
    #: Versions of the packages the bundle was built with.
    versions: dict[str, str] = field(default_factory=dict)
    #: None when the compiled scoring path was built; otherwise why not (scikit-learn then scores).
    not_compiled: str | None = None
    #: Validated codes of a few training rows and what the bundle answered for them.
    self_check: dict[str, list] = field(default_factory=dict)
    #: Held-out reliability table and ECE (``attrition.training.calibration``): CBPE trusts the
    #: probabilities only as far as these say.
    calibration: dict = field(default_factory=dict)


def installed_versions(names: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for name in names:
        with contextlib.suppress(PackageNotFoundError):  # an extra that is not installed
            out[name] = version(name)
    return out


def requirements(trust_backend: str) -> tuple[str, ...]:
    return REQUIREMENTS + backends.get(trust_backend).requirements


def pip_requirements(trust_backend: str = backends.DEFAULT) -> list[str]:
    return [f"{name}=={v}" for name, v in installed_versions(requirements(trust_backend)).items()]
