"""One exception tree for the whole project.

    AggregatorError                 base; str(e) is a message a user can act on
     ├── ConfigError                config.toml is missing, unreadable or invalid
     ├── StorageError               the database cannot be opened or migrated
     ├── FetchError                 one fetch failed (network, HTTP status, limits)
     │    ├── BlockedURLError       the URL's scheme or address is not allowed
     │    ├── ResponseTooLargeError the decoded body exceeded [fetch] max_bytes
     │    ├── FetchTimeoutError     a connect/read timeout or the total deadline
     │    ├── TooManyRedirectsError more hops than [fetch] max_redirects
     │    └── HTTPStatusError       the server answered with an error status
     ├── ParseError                 the body is not a feed we can read
     └── PublishError               an output could not be written

Errors for one source never stop a batch: the pipeline records them against
that source and goes on.
"""

from __future__ import annotations


class AggregatorError(Exception):
    """Base of every error the project raises on purpose."""


class ConfigError(AggregatorError):
    """config.toml is invalid; the message names the key and what to do."""


class StorageError(AggregatorError):
    """The database cannot be used."""


class FetchError(AggregatorError):
    """A fetch failed. ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class BlockedURLError(FetchError):
    """The URL's scheme, host or resolved address is not allowed."""


class ResponseTooLargeError(FetchError):
    """The decoded body was larger than ``[fetch] max_bytes``."""


class FetchTimeoutError(FetchError):
    """A timeout, or the total per-fetch deadline, ran out."""


class TooManyRedirectsError(FetchError):
    """More redirect hops than ``[fetch] max_redirects``."""


class HTTPStatusError(FetchError):
    """The server answered with a status we treat as an error."""


class ParseError(AggregatorError):
    """The body could not be read as RSS, Atom or JSON Feed."""


class PublishError(AggregatorError):
    """An output file could not be written."""
