"""Admission to the upstream: the line in front of the pool's accounts, fair across chats.

Each account takes at most its own `max_concurrent` tasks at once and `max_tasks_per_hour`
per rolling hour; which account a task goes to is the pool's choice (`pool.py`). The queue
itself is in the database (tasks in `pending`); this is its in-memory order, rebuilt at
start-up from the rows. Chats take turns (round robin), each chat's tasks in the order
asked, so one chat sending fifty prompts does not starve the others: each task has its turn
(`bot.core.line.turn_for`), given when it is recorded over every replica's line, and chats
go in the order of their next task's turn. With several replicas, the places shown are
the whole line's (`show_places`), read from the database. A task waits only
while no fitting account has room. While every account that could do it is out of
rotation (an outage), it waits too, at most `outage_wait` seconds from when it joined the
line or the outage began, whichever is later; then, or at once if no account could ever do
it, it leaves the line (`NoAccount`) to be refunded.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Iterable
from itertools import count

from bot.core.line import turn_for
from bot.engine.pool import Account, Need, Pool


class Withdrawn(Exception):
    """The task left the line before its turn (it was cancelled)."""


class NoAccount(Exception):
    """No account can do this task: none ever could, or every one that could has been out of
    rotation for longer than the task may wait."""


class Scheduler:
    def __init__(self, pool: Pool, *, outage_wait: float = 120.0) -> None:
        self._pool = pool  # its clock is the line's too
        self._outage_wait = outage_wait
        self._joined: dict[int, float] = {}  # waiting task → when it joined the line
        # Waiting tasks that every account able to do them is out of rotation for:
        # task → (its chat, when to look at it again: it leaves the line then unless an
        # account came back, or a refusal that kept it from one ran out).
        self._stranded: dict[int, tuple[int, float]] = {}
        self._holding: dict[int, Account] = {}  # task → the account whose slot it holds
        self._waiting: OrderedDict[int, deque[int]] = OrderedDict()  # chat → its task ids
        self._turns: dict[int, tuple[int, int]] = {}  # waiting task → (its turn, its id)
        self._latest_turn = 0
        # The places of every replica's waiting tasks, as the database last told them (None:
        # this line is the whole line, one process).
        self._cluster_places: dict[int, int] | None = None
        self._needs: dict[int, Need] = {}
        self._admitted: dict[int, asyncio.Future[Account]] = {}
        self._wake: asyncio.TimerHandle | None = None
        self._changed = asyncio.Event()
        # Every waiting task's place, worked out once per change of the line: each waiting
        # task shows its place, and a fresh count for each would cost line × line.
        self._places: dict[int, int] | None = None
        # Chats whose next task has not been looked at since the rotation last changed.
        self._unlooked: set[int] = set()
        self._looked_under: frozenset[str] | None = None

    @property
    def pool(self) -> Pool:
        return self._pool

    # --- what the engine tells it ------------------------------------------------------------

    def restore(self, *, running: dict[int, str], created_at: Iterable[tuple[str, float]]) -> None:
        """Start-up: tasks already with an account (by its name), and when this hour's
        creates went to each account."""
        for task_id, name in running.items():
            self.hold(task_id, name)
        now = self._pool.now()
        for name, moment in sorted(created_at, key=lambda pair: pair[1]):
            account = self._pool.find(name)
            if account is not None and moment > now - 3600:
                account.created.append(moment)

    def hold(self, task_id: int, account_name: str) -> None:
        """A task the upstream may be working on (found after a restart) holds a slot."""
        account = self._pool.find(account_name)
        if account is not None and task_id not in self._holding:
            self._holding[task_id] = account
            account.running.add(task_id)

    async def admit(
        self, task_id: int, chat_id: int, need: Need, *, turn: int | None = None
    ) -> Account:
        """Wait for this task's turn (`turn`: as recorded; None: given here, over this
        line); on return it holds a slot of the returned account. Raises `NoAccount` if no
        account in rotation can take it."""
        future = self.enter(task_id, chat_id, need, turn=turn)
        try:
            return await future
        except asyncio.CancelledError:
            self.leave(task_id, chat_id)
            raise

    def enter(
        self, task_id: int, chat_id: int, need: Need, *, turn: int | None = None
    ) -> asyncio.Future[Account]:
        """The task joins the line, nothing waiting on it (`admit` without the wait): the
        future is done at its turn, with the account whose slot it then holds, or with
        `NoAccount` or `Withdrawn`."""
        if task_id in self._holding:
            done: asyncio.Future[Account] = asyncio.get_running_loop().create_future()
            done.set_result(self._holding[task_id])
            return done
        if turn is None:
            queue = self._waiting.get(chat_id)
            turn = turn_for(
                head=min((t for t, _ in self._turns.values()), default=None),
                last_of_chat=self._turns[queue[-1]][0] if queue else None,
                latest=self._latest_turn,
            )
        self._latest_turn = max(self._latest_turn, turn)
        future: asyncio.Future[Account] = asyncio.get_running_loop().create_future()
        self._admitted[task_id] = future
        self._needs[task_id] = need
        self._turns[task_id] = (turn, task_id)
        self._joined[task_id] = need.queued_since or self._pool.now()
        queue = self._waiting.setdefault(chat_id, deque())
        queue.append(task_id)
        # Keep each chat's queue in its turns' order, also when a restart enqueues them in
        # whatever order their workers start.
        self._waiting[chat_id] = deque(sorted(queue, key=self._turns.__getitem__))
        self._places = None
        self._unlooked.add(chat_id)
        self._dispatch()
        return future

    def leave(self, task_id: int, chat_id: int) -> None:
        """The task leaves the line unadmitted (this process lets it go, or stops): its
        future is cancelled."""
        future = self._admitted.get(task_id)
        self._forget(task_id, chat_id)
        if future is not None and not future.done():
            future.cancel()
        self._dispatch()

    def release(self, task_id: int) -> None:
        """The upstream is done with this task (or never took it): its slot is free."""
        account = self._holding.pop(task_id, None)
        if account is not None:
            account.running.discard(task_id)
        self._dispatch()

    def withdraw(self, task_id: int, chat_id: int) -> bool:
        """Take a waiting task out of the line (cancelled); True if it was waiting."""
        future = self._admitted.get(task_id)
        if future is None or future.done():
            return False
        self._forget(task_id, chat_id)
        future.set_exception(Withdrawn())
        self._dispatch()
        return True

    def look_again(self) -> None:
        """Look at the line now: an account may have come back into rotation (a check found
        it well), or a waiting task's time run out, by a clock the line's timer does not
        follow (a test's)."""
        self._dispatch()

    async def slow_down(self, account: Account, seconds: float) -> None:
        """The account's upstream said too many requests: it takes nothing from any process
        for `seconds`."""
        await self._pool.pause(account, seconds)
        self._dispatch()

    def hold_off(self, account: Account, seconds: float) -> None:
        """The database said the account cannot take a task now (other processes' tasks
        fill it, or another's probe is out): this line gives it nothing for `seconds` of
        real time (whatever clock the line keeps), then looks again."""
        account.held_off = True

        def over() -> None:
            account.held_off = False
            self._dispatch()

        asyncio.get_running_loop().call_later(seconds, over)
        self._dispatch()

    def holding(self, task_id: int) -> Account | None:
        """The account whose slot the task holds in this line, if any."""
        return self._holding.get(task_id)

    def head(self) -> tuple[int, int] | None:
        """The earliest place waiting in this line, as (turn, task id); None if none waits."""
        return min(self._turns.values(), default=None)

    def slot_passed(self, account: Account) -> None:
        """Another process freed a slot of the account for this line's earliest task: look
        now, whatever this line held the account off for."""
        account.held_off = False
        self._dispatch()

    # --- what it tells ------------------------------------------------------------------------

    def set_places(self, places: dict[int, int]) -> None:
        """The places of every replica's waiting tasks, from the database: shown from now
        on instead of this line's own."""
        if places != self._cluster_places:
            self._cluster_places = places
            self._changed.set()
            self._changed = asyncio.Event()

    def waiting(self) -> int:
        """How many tasks wait in this line."""
        return len(self._turns)

    def position(self, task_id: int) -> int | None:
        """1 for the next task to be admitted; None if it is not waiting (or, with several
        replicas, not yet placed in the whole line)."""
        if task_id not in self._turns:
            return None
        if self._cluster_places is not None:
            return self._cluster_places.get(task_id)
        if self._places is None:
            self._places = dict(zip(self._order(), count(1)))
        return self._places.get(task_id)

    def stranded_until(self, task_id: int) -> float | None:
        """While every account that could do the waiting task is out of rotation: when it
        leaves the line (and is refunded) unless one comes back first; None otherwise."""
        need = self._needs.get(task_id)
        return None if need is None else self._outage_deadline(task_id, need)

    def _outage_deadline(self, task_id: int, need: Need) -> float | None:
        if self._pool.could_take(need):
            return None
        began = self._pool.stranded_since(need)
        if began is None:
            return None  # no outage: no account could ever take it
        return max(self._joined[task_id], began) + self._outage_wait

    async def changed(self) -> None:
        """Wait for the line to move (positions may have changed)."""
        await self._changed.wait()

    # --- the turn-taking ----------------------------------------------------------------------

    def _order(self) -> list[int]:
        """The order waiting tasks will be admitted in: by turn (chats in turn, one task
        each a round)."""
        return [task_id for _, task_id in sorted(self._turns.values())]

    def _chats_in_turn(self) -> list[int]:
        """The chats with tasks waiting, in the order of their next task's turn."""
        return sorted(self._waiting, key=lambda chat: self._turns[self._waiting[chat][0]])

    def _dispatch(self) -> None:
        """Give every chat whose next task some fitting account has room for its turn,
        chats in order, until no more fit; a chat whose next task must wait keeps its
        place. Tasks no account in rotation could take leave the line.

        While no account in rotation has room, only the chats whose next task has not been
        looked at since the rotation last changed are looked at (to turn away what no
        account could take): a task's need does not change while it waits, so a full look
        through the line on every finished task would find nothing, at a cost of the line's
        length each time."""
        rotation = self._rotation()
        if rotation != self._looked_under:
            self._looked_under = rotation
            self._unlooked = set(self._waiting)
        now = self._pool.now()
        # Stranded tasks whose time to look again came are looked at again.
        self._unlooked.update(c for c, until in self._stranded.values() if until <= now)
        stranded_before = set(self._stranded)
        changed = False
        full = self._all_full()
        moved = True
        while moved and self._waiting and not full:
            moved = False
            for chat_id in self._chats_in_turn():
                admitted = self._turn(chat_id)
                if admitted is None:
                    continue  # its next task waits for room
                moved = changed = True
                if admitted and self._all_full():
                    full = True
                    break
        # No account has room: only the chats not looked at since the rotation changed
        # are looked at, to turn away what no account in rotation could ever take.
        while full and self._unlooked:
            chat_id = self._unlooked.pop()
            if chat_id in self._waiting and self._turn(chat_id) is not None:
                changed = True
        if changed or set(self._stranded) != stranded_before:
            self._changed.set()
            self._changed = asyncio.Event()
        self._wake_when_time_frees_room()

    def _turn(self, chat_id: int) -> bool | None:
        """This chat's next task, if it can leave the line now: True if an account took it,
        False if none ever could (it fails); None if it waits for room. A task waiting out
        an outage does not hold up the chat's tasks behind it that can go."""
        self._unlooked.discard(chat_id)
        for task_id in list(self._waiting[chat_id]):
            need = self._needs[task_id]
            account = self._pool.route(need)
            if account is None and self._pool.could_take(need):
                self._stranded.pop(task_id, None)
                return None  # waits for room
            if account is None:
                # Every account that could do it is out of rotation (or refused it a moment
                # ago): it waits for one to come back, for a while.
                until = self._outage_deadline(task_id, need)
                if until is not None and self._pool.now() < until:
                    # Looked at again when that ends, or when a refusal runs out.
                    again = min(until, self._pool.refusals_end(need) or until)
                    self._stranded[task_id] = (chat_id, again)
                    continue
            self._take(chat_id, task_id)
            future = self._admitted.pop(task_id)
            self._needs.pop(task_id, None)
            if account is None:
                future.set_exception(NoAccount())
                return False
            self._pool.sending(account, task_id)
            self._holding[task_id] = account
            future.set_result(account)
            return True
        return None  # every task of the chat waits out an outage

    def _rotation(self) -> frozenset[str]:
        now = self._pool.now()
        return frozenset(a.name for a in self._pool.accounts if a.in_rotation(now))

    def _all_full(self) -> bool:
        """No account in rotation has room: no waiting task can be admitted now."""
        now = self._pool.now()
        return all(not a.in_rotation(now) or a.room(now) == 0 for a in self._pool.accounts)

    def _take(self, chat_id: int, task_id: int) -> None:
        """This chat had its turn: the task leaves the line, and the chat goes to the back."""
        queue = self._waiting.pop(chat_id)
        queue.remove(task_id)
        self._turns.pop(task_id, None)
        self._joined.pop(task_id, None)
        self._stranded.pop(task_id, None)
        self._places = None
        if queue:
            self._waiting[chat_id] = queue
            self._unlooked.add(chat_id)  # a new next task

    def _forget(self, task_id: int, chat_id: int) -> None:
        self._admitted.pop(task_id, None)
        self._turns.pop(task_id, None)
        self._needs.pop(task_id, None)
        self._joined.pop(task_id, None)
        self._stranded.pop(task_id, None)
        queue = self._waiting.get(chat_id)
        if queue is not None and task_id in queue:
            queue.remove(task_id)
            self._places = None
            if queue:
                self._unlooked.add(chat_id)  # perhaps a new next task
            else:
                del self._waiting[chat_id]
                self._unlooked.discard(chat_id)
            self._changed.set()
            self._changed = asyncio.Event()

    def _wake_when_time_frees_room(self) -> None:
        """Tasks wait: look again when a pause or the hourly cap of some account ends (a
        finished task's release looks again by itself)."""
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        if not self._waiting:
            return
        now = self._pool.now()
        moments = [m for a in self._pool.accounts if (m := a.free_at(now)) is not None]
        moments += [until for _, until in self._stranded.values()]
        if moments:
            delay = max(0.0, min(moments) - now)
            self._wake = asyncio.get_running_loop().call_later(delay, self._dispatch)
