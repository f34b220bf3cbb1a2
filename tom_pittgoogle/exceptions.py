"""Errors the Consumers raise. Each message says what went wrong and what to do, and holds no secret."""


class PittGoogleError(Exception):
    """Base class of every error raised by tom_pittgoogle."""


class ConfigurationError(PittGoogleError):
    """A setting is missing or invalid."""


class CredentialsError(PittGoogleError):
    """No usable Google credentials, or Google refused them.

    ``link``, when set, is a URL the message quotes (the page where a TOM user connects a Google account); the
    results page shows it as a link.
    """

    def __init__(self, message: str = "", *, link: str | None = None) -> None:
        super().__init__(message)
        self.link = link


class PermissionDeniedError(CredentialsError):
    """The credentials are valid but may not use the resource."""


class NotFoundError(PittGoogleError):
    """A subscription, topic, dataset or table does not exist."""


class SubscriptionNotFoundError(NotFoundError):
    pass


class TopicNotFoundError(NotFoundError):
    pass


class TableNotFoundError(NotFoundError):
    pass


class EndpointError(PittGoogleError):
    """The service could not be reached or answered with an unexpected error."""


class DecodeError(PittGoogleError):
    """A message's bytes are not an alert packet this app can read."""


class QueryTooLargeError(PittGoogleError):
    """A BigQuery search would scan more bytes than ``PITTGOOGLE_BIGQUERY_MAX_BYTES`` allows; nothing was run."""

    def __init__(self, message: str, *, estimated_bytes: int | None = None, max_bytes: int | None = None) -> None:
        super().__init__(message)
        self.estimated_bytes = estimated_bytes
        self.max_bytes = max_bytes


class FilterNotSupportedError(ConfigurationError):
    """A filter the route cannot apply (e.g. a classifier's output on an alerts table that has none)."""


class SubscriptionFilterError(ConfigurationError):
    """A subscription exists with another server-side filter than the one asked for (Pub/Sub cannot change it)."""
