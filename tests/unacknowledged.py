"""What a subscription left unacknowledged, read after the ack deadline over the emulator's REST API.

Silence proves nothing: a listener that receives nothing for some seconds may be listening where the messages
are not. The Pub/Sub emulator keeps a message that a streaming pull received and did not acknowledge for that
stream, after the stream ended, for anything from seconds to minutes: a REST pull past the ack deadline does not
see it (measured: tests/test_unacknowledged_check.py). Seeking the subscription to a snapshot of itself makes
every message unacknowledged at that moment deliverable at once, leased ones included, and leaves the
acknowledged ones acknowledged (Pub/Sub's seek semantics; the emulator does the same for a stream that used the
product's 10 s lease, PITTGOOGLE_STREAM_LEASE_SECONDS; one left with the client library's default 60 s lease it
still holds 12 s after the stream ended, seek or not). Then a marker is
published, and REST pulls from a client of this module's own (not the product's) collect everything until the
marker comes back: what came before it is what was left unacknowledged.
"""

from __future__ import annotations

import base64
import os
import time
import uuid

import requests

from .conftest import USER_PROJECT

#: The subscriptions' ack deadline on the emulator (the default, as the product creates them).
ACK_DEADLINE = 10.0
#: What is added to it before the first pull: a message's lease ends at the deadline, give or take.
MARGIN = 2.0


def _url(path: str) -> str:
    return f"http://{os.environ['PUBSUB_EMULATOR_HOST']}/v1/{path}"


def _post(path: str, body: dict) -> dict:
    response = requests.post(_url(path), json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def pull_after_ack_deadline(
    subscription: str, *, project: str = USER_PROJECT, since: float | None = None, bound: float = 60.0
) -> list[dict]:
    """The messages ``subscription`` had not acknowledged once its ack deadline (counted from ``since``, a
    ``time.monotonic`` reading, default now) has passed, pulled until a marker published then comes back; each is
    acknowledged.

    Returns the messages other than the marker (REST's ``message`` objects, data still base64). Fails when the
    marker does not come back within ``bound`` seconds after the deadline.
    """
    path = f"projects/{project}/subscriptions/{subscription}"
    topic = requests.get(_url(path), timeout=30).json()["topic"]
    wait = (time.monotonic() if since is None else since) + ACK_DEADLINE + MARGIN - time.monotonic()
    if wait > 0:
        time.sleep(wait)  # every acknowledgement sent before ``since`` has been applied by now
    snapshot = f"projects/{project}/snapshots/unacknowledged-{uuid.uuid4().hex[:12]}"
    requests.put(_url(snapshot), json={"subscription": path}, timeout=30).raise_for_status()
    try:
        _post(f"{path}:seek", {"snapshot": snapshot})  # leased messages too become deliverable now
    finally:
        requests.delete(_url(snapshot), timeout=30)
    # Published after the seek, so that whatever the run left is back in the subscription before it.
    marker = uuid.uuid4().hex
    _post(f"{topic}:publish", {"messages": [{"data": base64.b64encode(b"marker").decode(),
                                             "attributes": {"unacknowledged_marker": marker}}]})
    delivered, marker_seen = [], False
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        received = _post(f"{path}:pull", {"maxMessages": 100, "returnImmediately": True}).get("receivedMessages", [])
        if not received:
            if marker_seen:
                break  # the marker and everything delivered with it
            time.sleep(0.2)
            continue
        _post(f"{path}:acknowledge", {"ackIds": [item["ackId"] for item in received]})
        for item in received:
            if item["message"].get("attributes", {}).get("unacknowledged_marker") == marker:
                marker_seen = True
            else:
                delivered.append(item["message"])
    assert marker_seen, (
        f"a marker published to {topic} did not reach a REST pull of {path} within {bound:g} s after the ack "
        "deadline and a seek: what the subscription left unacknowledged cannot be read"
    )
    return delivered


def assert_nothing_left_unacknowledged(*subscriptions: str, project: str = USER_PROJECT,
                                       since: float | None = None) -> None:
    """Every message of each subscription was acknowledged: after the ack deadline, only the marker comes."""
    since = time.monotonic() if since is None else since
    for subscription in subscriptions:
        left = pull_after_ack_deadline(subscription, project=project, since=since)
        assert not left, (
            f"{len(left)} message(s) of {subscription} were left unacknowledged and came back after the ack "
            f"deadline: ids {[message.get('messageId') for message in left][:10]}"
        )
