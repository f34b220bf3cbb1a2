"""Which subscription a page's or command's stream query reads: the one it names (or the survey's default), or a
subscription of its own on the same topic when one of this TOM's ingesters reads that one."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from tom_pittgoogle import conf

logger = logging.getLogger(__name__)


def subscription_and_survey(parameters: Mapping[str, Any]) -> tuple[str, str]:
    """The subscription a stream query reads and its survey (saved queries from before the survey field: ZTF)."""
    survey = parameters.get("survey") or "ztf"
    return parameters.get("subscription_name") or conf.survey_default_subscription(survey), survey


def own_subscription_name(name: str, user: Any = None) -> str:
    """The subscription a query reads instead of ``name`` when an ingester reads ``name``: one per TOM user
    (``ztf-loop-page-u7``; ``ztf-loop-page`` for a command that runs as nobody), on the same topic."""
    pk = getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None
    return f"{name[:230]}-page" + (f"-u{pk}" if pk is not None else "")


def open_query_consumer(consumer_class: type, parameters: Mapping[str, Any], user: Any = None, **options: Any):
    """The consumer (``ConsumerStreamRest`` or ``ConsumerStreamPython``) a query pulls through, and a notice for
    the user (or None). ``options`` (the topic, the server-side filter) go to the consumer.

    A query never pulls from a subscription one of this TOM's ingesters reads (the heartbeat table and
    ``PITTGOOGLE_STREAMS`` say which): every message a query pulls is acknowledged, so the alerts its filter
    drops would be lost to the ingester. It reads a subscription of its own on the same topic instead
    (:func:`own_subscription_name`), which gets its own copy of every alert published from its creation on.
    """
    from tom_pittgoogle.core.heartbeat import subscriptions_ingesters_use
    from tom_pittgoogle.core.subscription import Subscription

    name, survey = subscription_and_survey(parameters)
    used_by = subscriptions_ingesters_use().get(name)
    if used_by is None:
        return consumer_class(name, survey=survey, **options), None
    own = own_subscription_name(name, user)
    # The ingester's subscription names the topic (it may be attached to another than the one of its name).
    shared = Subscription(name, survey=survey, transport="rest", topic=options.get("topic"))
    shared.touch()
    consumer = consumer_class(own, survey=survey, touch=False, **options)
    consumer.subscription.topic_path = shared.topic_path
    consumer.touch_subscription()
    notice = (
        f"Subscription {name} is read by this TOM's ingester ({used_by}): this query read {own}, a subscription of "
        f"its own on the same topic, so that the ingester loses none of its alerts. A new subscription receives "
        "the alerts published after it was created; the stored route shows what the ingester stored."
    )
    logger.info("%s", notice)
    return consumer, notice
