"""StreamRest keeps one pull in flight while it stores the previous batch (issue 13), on the Pub/Sub emulator:
credentials are refreshed on the calling thread only, and what a pull brought is handed back at once when
storing fails."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import pytest
from google.auth.credentials import Credentials

from tom_pittgoogle.core.store import DatabaseUnavailableError, DjangoAlertStore
from tom_pittgoogle.models import Alert
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

from .unacknowledged import ACK_DEADLINE, assert_nothing_left_unacknowledged

pytestmark = pytest.mark.django_db

COPIES = 20  # 20 x the sample packets: several pulls of at most 100


class ExpiringCredentials(Credentials):
    """A token that expires as soon as it is used: every request refreshes it; each refresh notes its thread."""

    def __init__(self) -> None:
        super().__init__()
        self.refreshed_on: list[str] = []

    def refresh(self, request) -> None:
        self.refreshed_on.append(threading.current_thread().name)
        self.token = f"token-{len(self.refreshed_on)}"
        self.expiry = datetime.utcnow() - timedelta(hours=1)  # already expired: the next request refreshes


def test_credentials_are_refreshed_on_the_calling_thread_while_the_next_pull_is_in_flight(topic_name, publish,
                                                                                           packets):
    credentials = ExpiringCredentials()
    consumer = ConsumerStreamRest(topic_name, credentials=credentials)
    publish(topic_name, packets * COPIES)
    alerts = consumer.pull_alerts(max_results=len(packets) * COPIES, max_wait=2)
    assert len(alerts) == len(packets) * COPIES
    assert len(credentials.refreshed_on) > 3  # touch, the pulls and the acknowledgements
    assert set(credentials.refreshed_on) == {threading.current_thread().name}
    assert consumer.pull() == []


class FailingSecondBatch(DjangoAlertStore):
    def __init__(self) -> None:
        self.batches: list[int] = []

    def save_messages(self, alerts, messages, **kwargs):
        self.batches.append(len(messages))
        if len(self.batches) == 2:
            raise DatabaseUnavailableError("the TOM's database is unavailable (test)")
        return super().save_messages(alerts, messages, **kwargs)


def test_when_storing_fails_the_pull_in_flight_is_handed_back_at_once(topic_name, publish, packets):
    total = len(packets) * COPIES
    store = FailingSecondBatch()
    consumer = ConsumerStreamRest(topic_name, store=store)
    publish(topic_name, packets * COPIES)
    with pytest.raises(DatabaseUnavailableError):
        consumer.pull_alerts(max_results=total, max_wait=2)
    stored, failed = store.batches
    # The prefetched pull (and the rest) come back at once; the batch whose storing failed after its lease, which
    # tells handed back (or left to expire) from acknowledged: listen until all of them are back, with a bound.
    again: list[dict] = []
    consumer = ConsumerStreamRest(topic_name, touch=False)
    deadline = time.monotonic() + ACK_DEADLINE + 50
    while len(again) < total - stored and time.monotonic() < deadline:
        again += consumer.pull_alerts(max_results=total - stored - len(again), max_wait=2)
    assert len(again) == total - stored, (
        f"{total - stored - len(again)} messages never came back within 60 s, more than the {ACK_DEADLINE:g} s "
        f"ack deadline, of the {failed} whose storing failed: StreamRest acknowledged a batch it had not stored"
    )
    assert Alert.objects.count() == len(set(packets)), "each alert stored once"
    assert_nothing_left_unacknowledged(topic_name)
