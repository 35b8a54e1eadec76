"""jobyard: a self-hosted job server."""

__version__ = "0.1.0"
