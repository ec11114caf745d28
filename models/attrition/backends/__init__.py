"""Trust backends: one :class:`TrustBackend` interface, a registry of implementations (``open``:
scipy and scikit-learn; ``alibi``: the optional alibi/alibi-detect reference), chosen when a bundle is
trained and recorded in its ``bundle.json``."""

from attrition.backends.alibi import AlibiBackend
from attrition.backends.base import FittedOutliers, TrustBackend, get, names, register
from attrition.backends.open import OpenBackend

#: What ``attrition train`` fits unless told otherwise (what the book teaches).
DEFAULT = AlibiBackend.name

__all__ = [
    "DEFAULT",
    "AlibiBackend",
    "FittedOutliers",
    "OpenBackend",
    "TrustBackend",
    "get",
    "names",
    "register",
]
