"""Telegram's flood limits as the Telegram test server enforces them, on any clock.

Telegram documents them loosely: "avoid sending more than one message per second" in a
chat ("short bursts" over it are allowed), "no more than 20 messages per minute" in a group,
"about 30 messages per second" overall. Modelled here as:
- a private chat: one a second, with a burst of 3 (a generic cell rate algorithm);
- a group: at most 20 in any 60 s; overall: at most 30 in any 1 s (sliding windows).
Messages sent and edited count; every other call is free. `slack` seconds are forgiven on
each window and on the private pace, for the jitter of requests travelling over loopback
(a request that left on time may arrive a moment late and its successor on time).
"""

from __future__ import annotations

import math
from collections import Counter, deque

PRIVATE_BURST = 3
PRIVATE_INTERVAL = 1.0  # seconds between messages, once the burst is spent
GROUP_WINDOW = (60.0, 20)
OVERALL_WINDOW = (1.0, 30)


class FloodModel:
    def __init__(self, *, slack: float = 0.05) -> None:
        self._slack = slack
        self._windows: dict[int, deque[float]] = {}
        self._overall: deque[float] = deque()
        self._private_due: dict[int, float] = {}  # GCRA's theoretical arrival time
        self.refused = 0
        self.refused_by: Counter[str] = Counter()  # by the limit broken: overall, group, chat

    def admit(self, chat_id: int, now: float) -> int | None:
        """Count a message to `chat_id` at `now`; or, past a limit, the retry_after
        (whole seconds) that Telegram would answer, counting nothing."""
        waits = {"overall": self._window_wait(self._overall, OVERALL_WINDOW, now)}
        if chat_id < 0:
            group = self._windows.setdefault(chat_id, deque())
            waits["group"] = self._window_wait(group, GROUP_WINDOW, now)
        else:
            due = max(self._private_due.get(chat_id, now), now)
            # A burst of B is allowed: the theoretical time may run (B - 1) intervals ahead.
            ahead = due - now - (PRIVATE_BURST - 1) * PRIVATE_INTERVAL - self._slack
            waits["chat"] = max(0.0, ahead)
        wait = max(waits.values())
        if wait > 0:
            self.refused += 1
            self.refused_by.update(limit for limit, late in waits.items() if late > 0)
            return max(1, math.ceil(wait))
        self._overall.append(now)
        if chat_id < 0:
            self._windows[chat_id].append(now)
        else:
            due = max(self._private_due.get(chat_id, now), now)
            self._private_due[chat_id] = due + PRIVATE_INTERVAL
        return None

    def _window_wait(self, sent: deque[float], window: tuple[float, int], now: float) -> float:
        span, limit = window
        while sent and sent[0] <= now - (span - self._slack):
            sent.popleft()
        if len(sent) < limit:
            return 0.0
        return sent[0] + span - self._slack - now
