"""qqavatar: a self-hosted, YesApi-compatible QQ avatar API."""

__version__ = "0.1.0"
