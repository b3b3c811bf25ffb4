"""Spreading requests over server replicas: least outstanding requests, a bound per replica, failover.

Pure Python (threads and a condition variable), so it is testable without any server. The OpenAI engine
(openai_engine.py) asks the pool for a replica before each HTTP request and gives it back after.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["NoReplicaError", "Replica", "ReplicaPool"]


class NoReplicaError(ConnectionError):
    """Every replica is marked down (the message names each one and why)."""


@dataclass
class Replica:
    """One server: its base URL and what the pool knows about it (read under the pool's lock)."""

    url: str
    outstanding: int = 0  # requests sent and not yet answered
    sent: int = 0  # requests sent over the pool's lifetime (for tests and benchmarks)
    failures: int = 0  # failed requests (timeouts, connection errors, 5xx answers)
    down_until: float = 0.0  # time.monotonic() before which no request goes here
    down_reason: str = ""


class ReplicaPool:
    """Hands out the live replica with the fewest outstanding requests, at most `max_in_flight` each.

    A replica marked down (its connection failed) gets no requests for `revive_after_s` seconds, then one
    request may try it again. `acquire` blocks while every live replica is full; it raises NoReplicaError
    when every replica is down and none revives within `wait_s`.

    Args:
        urls: the replicas' base URLs (at least one).
        max_in_flight: requests outstanding at once per replica (>= 1).
        revive_after_s: seconds a down replica rests before it is tried again.
    """

    def __init__(self, urls: Sequence[str], max_in_flight: int, revive_after_s: float = 30.0) -> None:
        if not urls:
            raise ValueError("at least one replica URL is needed")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        self.replicas = tuple(Replica(url) for url in urls)
        self.max_in_flight = max_in_flight
        self.revive_after_s = revive_after_s
        self._changed = threading.Condition()

    def acquire(self, avoid: Replica | None = None, wait_s: float = 60.0) -> Replica:
        """The live replica with the fewest outstanding requests (ties: the one sent the least), counted as
        holding one more request. `avoid` (the replica that just failed this request) is chosen only when no
        other live replica exists.

        Raises:
            NoReplicaError: every replica stayed down for `wait_s` seconds.
        """
        deadline = time.monotonic() + wait_s
        with self._changed:
            while True:
                now = time.monotonic()
                live = [replica for replica in self.replicas if replica.down_until <= now]
                preferred = [replica for replica in live if replica is not avoid] or live
                free = [replica for replica in preferred if replica.outstanding < self.max_in_flight]
                if free:
                    chosen = min(free, key=lambda replica: (replica.outstanding, replica.sent))
                    chosen.outstanding += 1
                    chosen.sent += 1
                    return chosen
                if not live:
                    if now >= deadline:
                        reasons = "; ".join(f"{replica.url}: {replica.down_reason}" for replica in self.replicas)
                        raise NoReplicaError(f"every server replica is down ({reasons})")
                    revive = min(replica.down_until for replica in self.replicas)
                    self._changed.wait(timeout=max(0.0, min(revive, deadline) - now))
                else:  # all live replicas are full: wait for an answer
                    self._changed.wait(timeout=1.0)

    def release(self, replica: Replica, *, failed: bool = False) -> None:
        """Give back a replica `acquire` handed out (once per acquire), counting a failure if the request failed."""
        with self._changed:
            replica.outstanding -= 1
            replica.failures += int(failed)
            self._changed.notify_all()

    def mark_down(self, replica: Replica, reason: str) -> None:
        """Send nothing to `replica` for `revive_after_s` seconds (its connection failed)."""
        with self._changed:
            replica.down_until = time.monotonic() + self.revive_after_s
            replica.down_reason = reason
            self._changed.notify_all()

    def mark_up(self, replica: Replica) -> None:
        """`replica` answered: it is live again."""
        with self._changed:
            if replica.down_until:
                replica.down_until, replica.down_reason = 0.0, ""
                self._changed.notify_all()

    def live_count(self) -> int:
        """How many replicas are not marked down now."""
        with self._changed:
            now = time.monotonic()
            return sum(replica.down_until <= now for replica in self.replicas)
