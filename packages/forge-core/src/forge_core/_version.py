"""forge-core's version (one place: the package root and telemetry read it from here)."""

__version__ = "0.1.0"
