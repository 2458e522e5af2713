"""The line's honest limit, as arithmetic (bot.core.line); test_scheduler.py drives it
through the bot."""

from __future__ import annotations

import pytest

from bot.core.line import (
    LineLoad,
    LineTooLong,
    admit_to_line,
    expected_wait,
    turn_for,
    wait_at_place,
)


def load(waiting: int, running: int, *, created: int = 0, slots: int = 2) -> LineLoad:
    return LineLoad(waiting, running, created, slots=slots, per_hour=100)


def test_a_free_slot_means_no_wait() -> None:
    assert expected_wait(load(0, 1), 20.0) == 0.0


def test_the_tasks_ahead_start_as_slots_free() -> None:
    # Two slots, both busy, three waiting: this one is the sixth, in the third wave.
    assert expected_wait(load(3, 2), 20.0) == pytest.approx(40.0)


def test_the_hourly_caps_hold_the_line_past_the_hour_s_creates() -> None:
    # 100 an hour, 90 made: ten waiting take the rest, this one waits for the window.
    assert expected_wait(load(10, 0, created=90, slots=50), 20.0) == pytest.approx(36.0)


def test_no_account_in_rotation_leaves_it_to_the_outage_wait() -> None:
    assert expected_wait(load(10, 0, slots=0), 20.0) == 0.0


def test_a_place_in_line_waits_for_the_tasks_ahead_of_it_only() -> None:
    # Two slots, both busy; ten wait. The first in line goes as the first slot frees (one
    # task's time, at worst), the fifth in the third wave; the tasks behind do not count.
    line = load(10, 2)
    assert wait_at_place(line, 1, 20.0) == pytest.approx(10.0)
    assert wait_at_place(line, 5, 20.0) == pytest.approx(50.0)
    assert wait_at_place(line, 5, 20.0) == wait_at_place(load(4, 2), 5, 20.0)
    # With a slot free, the first in line waits for nothing.
    assert wait_at_place(load(3, 1), 1, 20.0) == 0.0


def test_refused_only_past_the_limit_and_never_without_one() -> None:
    assert admit_to_line(load(2, 2), 20.0, limit=60) is None  # 40 s
    assert admit_to_line(load(5, 2), 20.0, limit=60) is None  # 60 s: at the limit
    refused = admit_to_line(load(6, 2), 20.0, limit=60)
    assert isinstance(refused, LineTooLong)
    assert refused.wait == pytest.approx(70.0)
    assert admit_to_line(load(500, 2), 20.0, limit=0) is None


def test_chats_take_turns_one_task_a_round_each_in_the_order_asked() -> None:
    # Chat 1 asks three times, then chat 2 twice, then chat 3 once, nothing running yet.
    line: list[tuple[int, int, str]] = []  # (turn, id, name) of the tasks waiting

    def ask(chat: int, name: str) -> None:
        head = min((turn for turn, _, _ in line), default=None)
        mine = [turn for turn, _, n in line if n.startswith(str(chat))]
        latest = line[-1][0] if line else 0
        turn = turn_for(head=head, last_of_chat=max(mine, default=None), latest=latest)
        line.append((turn, len(line), name))

    for chat, count in ((1, 3), (2, 2), (3, 1)):
        for n in range(count):
            ask(chat, f"{chat}{'abc'[n]}")
    assert [name for _, _, name in sorted(line)] == ["1a", "2a", "3a", "1b", "2b", "1c"]
    # The line moved on (the head's turn is 5); a new chat joins the current round.
    assert turn_for(head=5, last_of_chat=None, latest=6) == 5
    assert turn_for(head=None, last_of_chat=None, latest=9) == 9  # nothing waits
