"""envship: take one immutable image digest to an environment."""

__version__ = "0.1.0"
