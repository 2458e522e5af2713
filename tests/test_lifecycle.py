"""Task states and clocks (pure core)."""

from __future__ import annotations

import itertools

import pytest

from bot.core.lifecycle import FINAL_STATES, PollSchedule, RecentDurations, TaskState, sources_of


def reads(schedule: PollSchedule, until: float, quickest: float | None = None) -> list[float]:
    """The moments (seconds after creation) the schedule reads the status, up to `until`."""
    moments: list[float] = []
    now = 0.0
    while True:
        now += schedule.delay_after(now, quickest=quickest)
        if now > until:
            return moments
        moments.append(round(now, 6))


def test_the_first_look_comes_at_first_then_the_fast_phase() -> None:
    schedule = PollSchedule(first=3, fast=2, fast_until=10, medium=5, medium_until=30, slow=15)
    assert reads(schedule, 45) == [3, 5, 7, 9, 11, 16, 21, 26, 31]


def test_the_first_look_waits_for_the_quickest_recent_tasks() -> None:
    schedule = PollSchedule(first=2, fast=2, fast_until=30, medium=6, medium_until=120, slow=15)
    assert reads(schedule, 16, quickest=6.0) == [6, 8, 10, 12, 14, 16]
    assert reads(schedule, 7, quickest=1.0) == [2, 4, 6]  # never earlier than `first`
    assert reads(schedule, 40, quickest=500.0)[0] == 30  # nor past the fast phase


def test_recent_durations_know_nothing_until_enough_tasks_ended() -> None:
    durations = RecentDurations(keep=50, enough=10)
    for seconds in range(5, 14):  # 9 tasks
        durations.add(seconds - 1, seconds + 1)
        assert durations.quickest() is None
    durations.add(14, 16)
    assert durations.quickest() == 6  # the 2nd quickest of 10: the midpoint of (5, 7)
    for _ in range(50):
        durations.add(99, 101)  # only the last 50 count
    assert durations.quickest() == 100


def test_a_look_resumed_mid_way_keeps_to_the_phase() -> None:
    schedule = PollSchedule(first=20, fast=10, fast_until=120, medium=20, medium_until=300, slow=30)
    assert schedule.delay_after(0.001) == pytest.approx(19.999)  # callback net: first look late
    assert schedule.delay_after(50) == 10
    assert schedule.delay_after(200) == 20
    assert schedule.delay_after(400) == 30


def test_default_schedule_follows_the_upstream_advice() -> None:
    schedule = PollSchedule()
    moments = reads(schedule, 15 * 60)
    assert moments[0] == 2
    gaps = [(at, later - at) for at, later in itertools.pairwise(moments)]
    assert all(2 <= gap <= 3 for at, gap in gaps if at < 30)
    assert all(5 <= gap <= 10 for at, gap in gaps if 30 <= at < 120)
    assert all(15 <= gap <= 30 for at, gap in gaps if at >= 120)
    assert schedule.timed_out(15 * 60)


def test_every_state_but_the_final_ones_leads_somewhere() -> None:
    assert {TaskState.DELIVERED, TaskState.REPORTED} == FINAL_STATES
    assert sources_of(TaskState.DELIVERING) == {TaskState.SUCCEEDED}
    assert TaskState.PENDING not in sources_of(TaskState.DELIVERED)
