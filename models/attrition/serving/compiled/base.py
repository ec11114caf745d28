"""What the compiled form refuses."""


class Unsupported(ValueError):
    """A fitted estimator (or a setting of one) that the compiled form does not cover."""
