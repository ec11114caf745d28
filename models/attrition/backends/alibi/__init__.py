"""The optional alibi trust backend (BSL 1.1). Importing this package imports no alibi code: the
detectors and explainers (``detectors``, ``explain``) import alibi and alibi-detect themselves."""

from attrition.backends.alibi.backend import AlibiBackend, AlibiReference

__all__ = ["AlibiBackend", "AlibiReference"]
