"""What a subscription left unacknowledged, read over the emulator's REST API by a client of this module's own.

Silence proves nothing: a listener that receives nothing for some seconds may be listening where the messages
are not. The Pub/Sub emulator keeps a message that a streaming pull received and did not acknowledge for that
stream after the stream ended, out of a REST pull's reach, for up to minutes (288 s measured), whatever its ack
deadline. Seeking the subscription to a snapshot of itself makes every message unacknowledged at that moment
deliverable at once, leased ones included, and leaves the acknowledged ones acknowledged (Pub/Sub's seek
semantics): a stronger check than waiting out the ack deadline. Then a marker is published, and REST pulls collect
everything until the marker comes back: what came before it is what was left unacknowledged. Some seeks' messages
go to the ended stream once more, for about a lease, the marker with them or not: the check seeks three times.
(tests/test_unacknowledged_check.py shows that this finds messages left by a REST pull and by a streaming pull.)
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
#: Seconds for acknowledgements a route sent as it ended to reach the emulator before the snapshot.
SETTLE = 1.0
#: Seeks, each followed by pulls up to a marker: the emulator lets a seek's messages reach a REST pull at once,
#: or sends them to the ended stream again for about one lease first (measured); a next round gets them then.
ROUNDS = 3
#: How long a marker may take to come back: the emulator sends a subscription's messages, new ones too, to a
#: streaming pull that ended for anything from no time to minutes (a marker after a run that acknowledged
#: everything was once held over 60 s; held messages came back after 288 s once).
MARKER_BOUND = 300.0


def _url(path: str) -> str:
    return f"http://{os.environ['PUBSUB_EMULATOR_HOST']}/v1/{path}"


def _post(path: str, body: dict) -> dict:
    response = requests.post(_url(path), json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def left_unacknowledged(subscription: str, *, project: str = USER_PROJECT, rounds: int = ROUNDS,
                        bound: float = MARKER_BOUND) -> list[dict]:
    """The messages ``subscription`` has not acknowledged, leased ones included, each pulled and acknowledged now.

    Returns REST's ``message`` objects (data still base64). Fails when a marker does not come back within
    ``bound`` seconds.
    """
    path = f"projects/{project}/subscriptions/{subscription}"
    topic = requests.get(_url(path), timeout=30).json()["topic"]
    time.sleep(SETTLE)
    delivered: list[dict] = []
    for _ in range(rounds):
        delivered += _seek_and_pull_to_a_marker(path, topic, project, bound)
    return delivered


def _seek_and_pull_to_a_marker(path: str, topic: str, project: str, bound: float) -> list[dict]:
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
            attributes = item["message"].get("attributes", {})
            if attributes.get("unacknowledged_marker") == marker:
                marker_seen = True
            elif "unacknowledged_marker" not in attributes:  # an earlier check's marker is not the run's
                delivered.append(item["message"])
    assert marker_seen, (
        f"a marker published to {topic} did not reach a REST pull of {path} within {bound:g} s after a seek: the "
        "emulator still sends this subscription's messages to a streaming pull that ended (it may for minutes), "
        "so what the subscription left unacknowledged cannot be read"
    )
    return delivered


def assert_nothing_left_unacknowledged(*subscriptions: str, project: str = USER_PROJECT) -> None:
    """Every message of each subscription was acknowledged: a seek to a snapshot brings back none of them."""
    for subscription in subscriptions:
        left = left_unacknowledged(subscription, project=project)
        assert not left, (
            f"{len(left)} message(s) of {subscription} were left unacknowledged: ids "
            f"{[message.get('messageId') for message in left][:10]}, data "
            f"{[base64.b64decode(message.get('data', ''))[:40] for message in left][:5]}"
        )
