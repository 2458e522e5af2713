"""A circuit breaker for one upstream account, as plain arithmetic on the times it is given.

Closed: the account takes tasks. It opens at once when the upstream says the account
itself cannot work (bad key, no credits, maintenance, a feature switched off), or after
`threshold` creates in a row failed for other reasons. Open: it takes nothing until
`cooldown` seconds have passed. Then it is half-open: exactly one task goes through as the
probe; if the upstream takes it the breaker closes, if not it opens for another cool-down.
Where the upstream has a check that costs nothing (an account's balance), that check runs
while the breaker is open: a good answer ends the cool-down at once (`checked`: the next
task is the probe), a bad one starts it again, so no task is spent probing an account that
is surely still down. The outage itself (`down_since`) ends only when the account takes a
task again: one whose check answers well but whose creates are still refused stays in one
outage (one alert each way, and tasks waiting for it wait no longer than they would have).

Libraries such as pybreaker wrap a call and decide around it; here the decision is needed
earlier, when the line picks an account for a task, so the states are kept by hand.

Every replica's breaker of an account is one: its state is an `AccountState` row in the
database, moved under the account's lock (`load`, a move, `dump`), so three failures in
all (not three per replica) take it out, one probe goes out for the cluster, and one
outage is news once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"  # in rotation
    OPEN = "open"  # out of rotation until the cool-down ends
    HALF_OPEN = "half_open"  # one probe decides


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    threshold: int = 3  # failed creates in a row that take an account out of rotation
    cooldown: float = 15.0  # seconds out of rotation before one probe is let through
    # A probe not heard of for this long was lost with its process: another may go.
    probe_timeout: float = 180.0


@dataclass(frozen=True, slots=True)
class AccountState:
    """What every replica shares of an upstream account: its breaker, a 429's pause, its
    balance when it ran dry, and when it was last checked (by any replica)."""

    failures: int = 0
    opened_at: float | None = None
    probe_sent_at: float | None = None
    reason: str | None = None
    down_since: float | None = None
    successes: int = 0
    paused_until: float = 0.0
    balance_when_empty: float | None = None
    checked_at: float = 0.0

    def but(self, **changes: object) -> AccountState:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


class Breaker:
    def __init__(self, policy: BreakerPolicy) -> None:
        self._policy = policy
        self._failures = 0  # failed creates in a row
        self._opened_at: float | None = None
        self._probe_sent_at: float | None = None  # the half-open probe is on its way
        self.reason: str | None = None  # why it opened last, for operators
        self.down_since: float | None = None  # when the outage began; None: none is on
        self.successes = 0  # creates it took: one after a task's refusal lifts the refusal

    def load(self, state: AccountState) -> None:
        """Take the breaker's part of the shared state."""
        self._failures, self._opened_at = state.failures, state.opened_at
        self._probe_sent_at, self.reason = state.probe_sent_at, state.reason
        self.down_since, self.successes = state.down_since, state.successes

    def dump(self, into: AccountState) -> AccountState:
        """The shared state with this breaker's part in it."""
        return into.but(
            failures=self._failures,
            opened_at=self._opened_at,
            probe_sent_at=self._probe_sent_at,
            reason=self.reason,
            down_since=self.down_since,
            successes=self.successes,
        )

    def _probing(self, now: float) -> bool:
        sent = self._probe_sent_at
        return sent is not None and now - sent < self._policy.probe_timeout

    def state(self, now: float) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if now - self._opened_at < self._policy.cooldown:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def reopens_at(self) -> float | None:
        """When an open breaker lets its probe through; None if it is not open."""
        return None if self._opened_at is None else self._opened_at + self._policy.cooldown

    def room(self, now: float) -> int | None:
        """How many tasks it lets through now: None for no limit of its own (closed), 1 for
        the half-open probe not yet sent, 0 otherwise."""
        state = self.state(now)
        if state is BreakerState.CLOSED:
            return None
        return 1 if state is BreakerState.HALF_OPEN and not self._probing(now) else 0

    def sending(self, now: float) -> None:
        """A create request is about to go to the account (in half-open: the probe)."""
        if self.state(now) is BreakerState.HALF_OPEN:
            self._probe_sent_at = now

    @property
    def out(self) -> bool:
        """Out of rotation (open or half-open)."""
        return self._opened_at is not None

    def succeeded(self) -> bool:
        """The account took a task; True if that ended an outage."""
        self.successes += 1
        ended = self.down_since is not None
        self._failures = 0
        self._opened_at = None
        self._probe_sent_at = None
        self.reason = None
        self.down_since = None
        return ended

    def checked(self, now: float, healthy: bool, reason: str | None = None) -> bool:
        """A check that costs nothing answered while the account was out of rotation: a good
        answer ends the cool-down (True: the next task is the probe, if none is on its way);
        a bad one starts it again. A breaker in rotation is left as it is."""
        if self._opened_at is None or self.state(now) is BreakerState.HALF_OPEN:
            return False
        if healthy:
            self._opened_at = now - self._policy.cooldown
            return True
        self._opened_at = now
        if reason:
            self.reason = reason
        return False

    def failed(self, now: float, reason: str, *, account_down: bool) -> bool:
        """A create failed (`account_down`: the upstream said the account cannot work); True
        if that took a closed account out of rotation (the start of an outage)."""
        self._failures += 1
        state = self.state(now)
        if state is BreakerState.OPEN:
            return False
        if state is BreakerState.HALF_OPEN:
            # The probe failed: another cool-down. The outage goes on; it is not news.
            self._opened_at, self._probe_sent_at, self.reason = now, None, reason
            return False
        if account_down or self._failures >= self._policy.threshold:
            # Back out after a check put it back too soon: the same outage, not news.
            news = self.down_since is None
            self._opened_at, self.reason = now, reason
            if news:
                self.down_since = now
            return news
        return False

    def abandoned(self) -> None:
        """The probe never reached the account (the task was cancelled): another may go."""
        self._probe_sent_at = None
