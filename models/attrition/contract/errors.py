"""The errors of the model package: one base class, so that the command line (and any caller) catches
one type, and an invalid-input error that carries the field it refuses."""

from __future__ import annotations


class AttritionError(Exception):
    """Base of every error this package raises on purpose (bad data, bad input, a bundle that must
    not be served)."""


class InvalidInput(AttritionError, ValueError):
    """Input that does not fit the contract. ``field`` names the offending input (or ``inputs`` /
    ``parameters.<name>`` for the request as a whole); the message starts with it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class BundleError(AttritionError):
    """A bundle that must not be served here (wrong package versions, a missing extra, a failed
    self-check)."""
