"""The trust-backend interface and its registry: how a bundle's trust signals are fitted at build
time, what the bundle then needs installed, and what it can explain. Serving computes the signals the
same way whichever backend fitted them (attrition.serving); a backend only differs in what it fits and
saves beside them. The one place that maps a backend's name to its implementation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from attrition.contract.errors import BundleError, InvalidInput
from attrition.contract.trust import Explain


@dataclass(frozen=True)
class FittedOutliers:
    """The fitted scikit-learn IsolationForest and its flag threshold (a training-score percentile)."""

    forest: Any
    threshold: float


class TrustBackend(ABC):
    """One way of fitting the trust signals. Implementations register themselves with
    :func:`register` under their ``name`` (the value ``bundle.json`` records)."""

    name: ClassVar[str]
    #: Distributions a bundle of this backend needs beyond the bundle's own requirements.
    requirements: ClassVar[tuple[str, ...]] = ()
    #: The explanation modes its bundles answer.
    explains: ClassVar[frozenset[Explain]] = frozenset({Explain.NONE, Explain.ATTRIBUTIONS})

    @abstractmethod
    def fit(
        self, folder: Path, classifier, codes: np.ndarray, background: np.ndarray, threshold: float, seed: int
    ) -> FittedOutliers:
        """Fit on the training codes, save what this backend owns under ``folder``, and return the
        outlier forest the bundle serves."""

    def check_installed(self) -> None:
        """Raise :class:`~attrition.contract.errors.BundleError` when a bundle of this backend cannot be
        served here (its packages are missing). The default needs nothing beyond the bundle's own."""
        return None

    def load_anchors(self, folder: Path, classifier, threshold: float):
        """The anchor explainer of a bundle (only backends whose ``explains`` holds anchors have one)."""
        raise InvalidInput(
            "parameters.explain",
            f"anchors: this bundle has no anchor explainer; it was trained with the {self.name} trust "
            "backend (alibi's AnchorTabular is BSL-licensed). Ask for attributions (explain: true).",
        )

    def anchors(self, explainer, codes: np.ndarray, budget_s: float) -> list[dict]:
        """Anchor rules for each row, within ``budget_s`` (with the explainer of :meth:`load_anchors`)."""
        raise NotImplementedError(f"the {self.name} trust backend has no anchors")

    def reference(self, folder: Path, classifier, threshold: float):
        """The reference implementation's fitted objects, where the backend has one."""
        raise BundleError(
            f"this bundle was trained with the {self.name} trust backend: it has no alibi objects"
        )


_BACKENDS: dict[str, TrustBackend] = {}


def register(cls: type[TrustBackend]) -> type[TrustBackend]:
    """Class decorator: make ``cls`` the backend called ``cls.name``."""
    _BACKENDS[cls.name] = cls()
    return cls


def names() -> tuple[str, ...]:
    return tuple(_BACKENDS)


def get(name: str) -> TrustBackend:
    """The backend called ``name``; a ValueError naming the choices otherwise."""
    try:
        return _BACKENDS[name]
    except KeyError:
        raise ValueError(f"trust backend must be one of {list(_BACKENDS)}, got {name!r}") from None
