"""What both Pub/Sub routes share: names, the emulator-safe gRPC clients, and turning a message into an alert.

Turning a message into an alert is the same whatever carried it (REST or gRPC): decode once, lighten,
filter. :func:`unpack_message` returns what happened so that each route acknowledges the right messages.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import conf
from .alerts import decode_alert, lighten_alert
from .alerts.surveys import SURVEYS, detect_survey
from .exceptions import ConfigurationError, DecodeError

logger = logging.getLogger(__name__)

# Pub/Sub's own rule for subscription and topic ids.
_RESOURCE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$")

#: A filter in the original's callback contract: the alert if it passes, else None.
AlertCallback = Callable[..., Mapping | None]


def validate_resource_id(name: str, kind: str = "subscription") -> str:
    """Return ``name`` if it is a valid Pub/Sub id, else raise :class:`ConfigurationError`."""
    if not isinstance(name, str) or not _RESOURCE_ID.match(name) or name.lower().startswith("goog"):
        raise ConfigurationError(
            f"{name!r} is not a valid Pub/Sub {kind} name: 3-255 characters, starting with a letter, "
            "of letters, digits and - _ . ~ + %"
        )
    return name


def subscription_path(name: str, project: str | None = None) -> str:
    return f"projects/{project or conf.user_project()}/subscriptions/{validate_resource_id(name)}"


def topic_path(name: str, project: str | None = None, survey: str | None = None) -> str:
    """Pitt-Google's topic ``name``: in ``project`` if given, else in the project serving ``survey`` (ZTF's)."""
    return f"projects/{project or conf.survey_project(survey)}/topics/{validate_resource_id(name, 'topic')}"


def survey_of_topic(topic: str | None) -> str | None:
    """The survey a topic's name announces (``lsst-alerts`` -> ``lsst``), or None."""
    name = (topic or "").rsplit("/", 1)[-1].lower()
    for survey in SURVEYS:
        if name.startswith(survey):
            return survey
    return None


@dataclass
class Unpacked:
    """What became of one message: an alert that passed, an alert filtered out, or a rejection."""

    alert: dict | None = None
    filtered_out: bool = False
    rejected_reason: str | None = None


def unpack_message(
    data: bytes,
    *,
    lighten_alerts: bool = True,
    callback: AlertCallback | None = None,
    callback_kwargs: Mapping[str, Any] | None = None,
    topic: str | None = None,
) -> Unpacked:
    """Decode, optionally lighten, and filter one message's data.

    ``topic`` (where the message came from) names the survey to try first and appears in error messages; the
    bytes decide the format. The callback sees the lightened alert (or the full record when ``lighten_alerts``
    is False); an error in it is the caller's bug and propagates.
    """
    try:
        record = decode_alert(data, topic)
        lightened = lighten_alert(record, detect_survey(record, hint=survey_of_topic(topic)))
    except DecodeError as error:
        return Unpacked(rejected_reason=str(error))
    alert = lightened if lighten_alerts else record
    if callback is not None:
        result = callback(alert, **(callback_kwargs or {}))
        if result is None:
            return Unpacked(filtered_out=True)
    return Unpacked(alert=alert)


def _emulator_channel(host: str):
    import grpc

    # google-cloud-pubsub opens the emulator's channel with gRPC's 4 MiB receive cap; the emulator packs ~100
    # messages in one response, so real-size (60 KB) alerts exceed it and the streaming pull silently
    # reconnects forever. Against Google the library already lifts the cap.
    return grpc.insecure_channel(
        host, options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
    )


def subscriber_client(credentials=None):
    """A ``SubscriberClient`` for Google or, with ``PUBSUB_EMULATOR_HOST``, the emulator (no credentials)."""
    from google.cloud import pubsub_v1
    from google.pubsub_v1.services.subscriber.transports.grpc import SubscriberGrpcTransport

    from .credentials import get_credentials

    host = conf.pubsub_emulator_host()
    if host:
        return pubsub_v1.SubscriberClient(transport=SubscriberGrpcTransport(channel=_emulator_channel(host)))
    return pubsub_v1.SubscriberClient(credentials=credentials or get_credentials("pubsub"))


def close_client(client) -> None:
    """Close a Pub/Sub client's channel (the next client opens a new one).

    Closing the channel ends the streaming RPC on the server too; the Pub/Sub emulator otherwise keeps routing
    the subscription's messages, redeliveries included, to a stream that was cancelled.
    """
    client.close()


def publisher_client(credentials=None):
    """A ``PublisherClient`` built like :func:`subscriber_client` (the demo and tests publish with it)."""
    from google.cloud import pubsub_v1
    from google.pubsub_v1.services.publisher.transports.grpc import PublisherGrpcTransport

    from .credentials import get_credentials

    host = conf.pubsub_emulator_host()
    if host:
        return pubsub_v1.PublisherClient(transport=PublisherGrpcTransport(channel=_emulator_channel(host)))
    return pubsub_v1.PublisherClient(credentials=credentials or get_credentials("pubsub"))
