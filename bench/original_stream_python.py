"""The original tom_pittgoogle StreamPython design, rebuilt as the benchmark's baseline (c).

As the proof of concept did it: the streaming pull's callback decodes each packet with ``fastavro.reader``
(parsing its 20-27 KB writer schema every time), flattens it, "saves" it into a Python list, and hands the
main thread one message at a time through a ``queue.Queue``, waiting with ``queue.join()`` until the main
thread has counted it. Only the bench imports this module.
"""

from __future__ import annotations

import io
import queue
from typing import Any

import fastavro


class OriginalConsumerStreamPython:
    """One message at a time, a list for a database."""

    def __init__(self, client: Any, subscription_path: str) -> None:
        self.client = client
        self.subscription_path = subscription_path
        self.queue: queue.Queue = queue.Queue()
        self.database_list: list[dict] = []

    def stream_alerts(self, max_results: int, timeout: float = 30) -> list[dict]:
        future = self.client.subscribe(self.subscription_path, self.callback)
        count = 0
        try:
            while count < max_results:
                try:
                    count += self.queue.get(block=True, timeout=timeout)
                except queue.Empty:
                    break
                self.queue.task_done()
        finally:
            future.cancel()
            try:
                future.result(timeout=30)
            except Exception:  # noqa: BLE001 - the baseline only counts
                pass
        return self.database_list

    def callback(self, message) -> None:
        with io.BytesIO(message.data) as fin:
            alert_dict = next(iter(fastavro.reader(fin)))
        alert_dict = self._lighten_alert(alert_dict)
        self.save_alert(alert_dict)
        self.queue.put(1)
        self.queue.join()  # one message at a time: wait for the main thread to count this one
        message.ack()

    @staticmethod
    def _lighten_alert(alert_dict: dict) -> dict:
        keep = ["objectId", "candid"]
        candidate_keep = ["jd", "ra", "dec", "magpsf", "classtar"]
        flat = {key: alert_dict[key] for key in keep}
        flat.update({key: alert_dict["candidate"][key] for key in candidate_keep})
        return flat

    def save_alert(self, alert: dict) -> None:
        self.database_list.append(alert)
