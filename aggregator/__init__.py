"""aggregator: a syndication aggregator and feed hub for marketing blogs."""

# The one place the version is written (pyproject.toml reads it from here):
# asking importlib.metadata instead costs every command a scan of sys.path.
__version__ = "0.1.0"

__all__ = ["__version__"]
