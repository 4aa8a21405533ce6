"""aggregator: a syndication aggregator and feed hub for marketing blogs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("aggregator")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0"

__all__ = ["__version__"]
