"""Task states and clocks (pure core)."""

from __future__ import annotations

import itertools

import pytest

from bot.lifecycle import FINAL_STATES, PollSchedule, TaskState, sources_of


def reads(schedule: PollSchedule, until: float) -> list[float]:
    """The moments (seconds after creation) the schedule reads the status, up to `until`."""
    moments: list[float] = []
    now = 0.0
    while True:
        now += schedule.delay_after(now)
        if now > until:
            return moments
        moments.append(round(now, 6))


def test_the_first_look_comes_at_first_then_the_fast_phase() -> None:
    schedule = PollSchedule(first=3, fast=2, fast_until=10, medium=5, medium_until=30, slow=15)
    assert reads(schedule, 45) == [3, 5, 7, 9, 11, 16, 21, 26, 31]


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
