"""Every clock the engine runs on; tests pass a fast one."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.core.breaker import BreakerPolicy
from bot.core.lifecycle import PollSchedule, StatusCadence


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4
    initial: float = 1.0
    maximum: float = 20.0


@dataclass(frozen=True, slots=True)
class Timing:
    """Every clock the engine runs on; tests pass a fast one."""

    poll: PollSchedule = field(default_factory=PollSchedule)
    # With callbacks the poll is only a net for a callback that never comes: sparse.
    callback_net: PollSchedule = field(
        default_factory=lambda: PollSchedule(
            first=20.0, fast=10.0, fast_until=120.0, medium=20.0, medium_until=300.0, slow=30.0
        )
    )
    status: StatusCadence = field(default_factory=StatusCadence)
    create_retry: RetryPolicy = field(default_factory=RetryPolicy)
    step_retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(5, 2.0, 60.0))
    not_found_grace: float = 60.0  # how long a 404 right after creation is waited out
    # Status reads, as a leaky bucket (capacity, seconds to drain it): the upstream allows
    # about 10 a second per key, and 2 + 8/s never puts more than 10 in any second.
    status_reads: tuple[float, float] = (2, 0.25)
    # A claim on a task lasts this long and is renewed every third of it; a task whose
    # claim ran out (its process died) is picked up by another within a third of it.
    # 20 s: a replica killed with -9 has its tasks taken over within 27 s.
    lease: float = 20.0
    # A call about a task leaves only while this process still holds the task's claim: a
    # look at the database, trusted for this long after (so a message booked to leave in a
    # moment does not wait for the database as its moment comes), and never closer than a
    # quarter of the lease to the end of the process's heartbeat, before which nobody may
    # take its tasks over (the replicas' clocks may differ by that much).
    claim_trust: float = 3.0
    # Another process's tasks fill an account (its caps are counted in the database): the
    # line looks at that account again after this long.
    full_elsewhere: float = 1.0
    # A process that frees a slot while another process's task has an earlier turn passes
    # it on (a notice), and gives the account nothing itself for this long meanwhile.
    baton: float = 1.0
    # When an upstream account leaves the rotation, and when one probe tries it again.
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    # While an account is out of rotation, how often (a random pick in this range) a call
    # that costs nothing (its balance) checks whether it is back.
    account_checks: tuple[float, float] = (10.0, 15.0)
    # How long a task waits in line while every account that could do it is out of rotation
    # (OUTAGE_WAIT) before it is refunded.
    outage_wait: float = 120.0
    # With several replicas, how often the places in the whole line are read (while tasks
    # wait).
    places: float = 3.0
