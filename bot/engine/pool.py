"""The upstream accounts as one pool: which account can take a task (capabilities), which
has room (its own caps, a 429's pause, its circuit breaker), and which one must (a
follow-up goes to the account that made its source: the reseller's task ids belong to it).

The line (`scheduler.py`) asks `route` when a task's turn comes; the engine tells the pool
how each create went (`create_failed`, `create_succeeded`), which drives the breakers.

What must hold for the whole cluster (an account's breaker and probe, a 429's pause, its
balance when it ran dry) is moved in the database (`storage.accounts`), under the
account's lock; each `Account` here is this process's copy, read again when any process
moves it (`refresh`). (A pool given no database, as the line's own tests make, moves its
copy alone.) The database also has the last word on a slot: the move of a task to
`submitting` counts every process's tasks, and takes the probe (`admits`).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from bot.core.breaker import AccountState, Breaker, BreakerPolicy, BreakerState
from bot.core.lifecycle import TaskKind
from bot.providers import AccountConfig, Capabilities, ErrorKind, Provider, ProviderError
from storage.accounts import AccountStates

HOUR = 3600.0
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Need:
    """What a task asks of an account."""

    kind: TaskKind
    own_image: bool = False  # an image of the user's own, at a URL (animate)
    pinned: str | None = None  # the account that made the source task (animate, upscale)
    by_url: bool = False  # the source image's URL is at hand: any account may animate it
    # Accounts that refused this task's create: (name, when, its count of creates taken
    # then). The task goes to others first, and back to that one (as its probe, if it is
    # out) a cool-down later, or as soon as it takes another task.
    refused_by: tuple[tuple[str, float, int], ...] = ()
    # When the task first joined the line (a refused task joins again): an outage keeps it
    # waiting OUTAGE_WAIT at most from then or from the outage's start, whichever is later.
    queued_since: float | None = None

    def refused_until(self, account: Account, cooldown: float) -> float | None:
        """Until when the account's refusal keeps this task away from it; None: it does not
        (it never refused it, or it has taken another task since)."""
        moments = [
            at + cooldown
            for name, at, taken in self.refused_by
            if name == account.name and taken == account.breaker.successes
        ]
        return max(moments) if moments else None


@dataclass(eq=False)
class Account:
    config: AccountConfig
    provider: Provider
    breaker: Breaker
    running: set[int] = field(default_factory=set)  # tasks the upstream works on for it
    created: deque[float] = field(default_factory=deque)  # creates in the last hour
    # Tasks given to it whose create has not been decided yet, with the moment counted in
    # `created` for them: a create the database then holds back is taken out again.
    deciding: dict[int, float] = field(default_factory=dict)
    paused_until: float = 0.0  # a 429 asked for a pause (any process's)
    # The database said it is full (other processes' tasks fill it): this process gives it
    # nothing for a moment (`Scheduler.hold_off`).
    held_off: bool = False
    # Out of credits: its balance when the outage began; it is back once the balance grew.
    balance_when_empty: float | None = None
    shared: AccountState = field(default_factory=AccountState)  # as the database has it

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def capabilities(self) -> Capabilities:
        return self.provider.capabilities

    def room(self, now: float) -> int:
        """How many more tasks it may be given now."""
        while self.created and self.created[0] <= now - HOUR:
            self.created.popleft()
        if now < self.paused_until or self.held_off:
            return 0
        room = min(
            self.config.max_concurrent - len(self.running),
            self.config.max_tasks_per_hour - len(self.created),
        )
        probe = self.breaker.room(now)
        return max(0, room if probe is None else min(room, probe))

    def free_at(self, now: float) -> float | None:
        """When time lifts what holds it back (a pause, the hourly cap, a cool-down); None if
        time alone will not (it is full of running tasks)."""
        moments = []
        if now < self.paused_until:
            moments.append(self.paused_until)
        if len(self.created) >= self.config.max_tasks_per_hour:
            moments.append(self.created[0] + HOUR)
        reopens = self.breaker.reopens_at()
        if reopens is not None and reopens > now:
            moments.append(reopens)
        return max(moments) if moments else None

    def in_rotation(self, now: float) -> bool:
        return self.breaker.state(now) is not BreakerState.OPEN

    def load(self, state: AccountState) -> None:
        """Take the state every process shares."""
        self.shared = state
        self.breaker.load(state)
        self.paused_until = state.paused_until
        self.balance_when_empty = state.balance_when_empty


class Pool:
    def __init__(
        self,
        accounts: Sequence[tuple[AccountConfig, Provider]],
        *,
        states: AccountStates | None = None,
        breaker: BreakerPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not accounts:
            raise ValueError("a pool needs at least one account")
        policy = breaker or BreakerPolicy()
        self._policy = policy
        self._states = states
        self._cooldown = policy.cooldown
        self.accounts = [
            Account(config, provider, Breaker(policy)) for config, provider in accounts
        ]
        self._by_name = {account.name: account for account in self.accounts}
        self._clock = clock
        self.capabilities = Capabilities.union([a.capabilities for a in self.accounts])

    def now(self) -> float:
        return self._clock()

    def refused(self, need: Need, account: Account) -> bool:
        """The account, in rotation, refused this task's create less than a cool-down ago
        (and has taken no task since). Out of rotation it is out for every task; half-open,
        this task may be the probe as well as any."""
        now = self.now()
        until = need.refused_until(account, self._cooldown)
        closed = account.breaker.state(now) is BreakerState.CLOSED
        return closed and until is not None and now < until

    def refusals_end(self, need: Need) -> float | None:
        """When the next refusal that keeps this task from an account runs out."""
        ends = [u for a in self.accounts if (u := need.refused_until(a, self._cooldown))]
        later = [end for end in ends if end > self.now()]
        return min(later) if later else None

    def find(self, name: str) -> Account | None:
        """The account of that name. Tasks made before the pool name their provider (the
        pool of one is named after it): such a name finds the first account of that
        provider, so an operator moving to `PROVIDERS_FILE` keeps the tasks in flight."""
        if name in self._by_name:
            return self._by_name[name]
        return next((a for a in self.accounts if a.config.provider.value == name), None)

    # --- routing ---------------------------------------------------------------------------

    def fitting(self, need: Need) -> list[Account]:
        """The accounts that could do the task, healthy or not, room or not. A follow-up
        whose account is in rotation goes there alone."""
        pinned = self.find(need.pinned) if need.pinned is not None else None
        if (
            pinned is not None
            and not self.refused(need, pinned)
            and self._can(pinned, need, at_source=True)
            and pinned.in_rotation(self.now())
        ):
            return [pinned]
        return [account for account in self.capable(need) if not self.refused(need, account)]

    def capable(self, need: Need) -> list[Account]:
        """The accounts whose upstream can do the task at all, whatever their state."""
        pinned = self.find(need.pinned) if need.pinned is not None else None
        return [a for a in self.accounts if self._can(a, need, at_source=a is pinned)]

    def route(self, need: Need) -> Account | None:
        """The account to send the task to now: in rotation and fitting, with the most room;
        None if none has room now. An account whose cool-down just ended goes first: its
        probe says soonest whether it is back (and if not, the task is re-routed, free)."""
        now = self.now()
        best, best_room = None, 0
        for account in self.fitting(need):
            room = account.room(now)
            if room and account.breaker.state(now) is BreakerState.HALF_OPEN:
                return account
            if room > best_room:
                best, best_room = account, room
        return best

    def could_take(self, need: Need) -> bool:
        """Some fitting account is in rotation, so the task may wait for room."""
        now = self.now()
        return any(account.in_rotation(now) for account in self.fitting(need))

    def stranded_since(self, need: Need) -> float | None:
        """While no account that could do the task can take it now (each is out of rotation,
        or refused this very task a moment ago): when the outage began (the last of them
        went out; 0 if only refusals keep it). None if one can, or none ever could."""
        now, moments = self.now(), [0.0]
        capable = self.capable(need)
        for account in capable:
            if account.breaker.down_since is not None and not account.in_rotation(now):
                moments.append(account.breaker.down_since)
            elif not self.refused(need, account):
                return None
        return max(moments) if capable else None

    @staticmethod
    def _can(account: Account, need: Need, *, at_source: bool) -> bool:
        can = account.capabilities
        match need.kind:
            case TaskKind.TEXT_TO_IMAGE:
                return can.text_to_image
            case TaskKind.TEXT_TO_VIDEO:
                return can.text_to_video
            case TaskKind.UPSCALE:
                # Only the account that made the images knows their task id.
                return can.upscale and at_source
            case TaskKind.IMAGE_TO_VIDEO:
                if need.own_image:
                    return can.image_to_video_from_url
                if at_source:
                    return can.image_to_video_from_task or (
                        need.by_url and can.image_to_video_from_url
                    )
                return need.by_url and can.image_to_video_from_url

    # --- what the engine reports ------------------------------------------------------------

    def sending(self, account: Account, task_id: int) -> None:
        """The line gave `account` this task: it holds one of its slots from now on."""
        now = self.now()
        account.running.add(task_id)
        account.created.append(now)
        account.deciding[task_id] = now
        account.breaker.sending(now)

    def let_go(self, task_id: int) -> None:
        """A task's worker ended: if the line had given it an account but the database never
        said whether its create may leave, it sent nothing (not counted against the hour,
        and not the probe: another task may probe)."""
        for account in self.accounts:
            if task_id in account.deciding:
                self._forget_send(account, task_id, went=False)
                account.breaker.abandoned()

    def admits(self, account: Account) -> Callable[[AccountState], AccountState | None]:
        """The database's side of a slot (`TaskRepository.mark_submitting`): given the
        account's state as every process shares it, whether it takes a task now (not paused,
        in rotation, or half-open with no probe on its way) and its state if it does (the
        probe taken); None if it does not."""

        def admit(state: AccountState) -> AccountState | None:
            now = self.now()
            breaker = self._breaker(state)
            if now < state.paused_until or breaker.room(now) == 0:
                return None
            breaker.sending(now)
            return breaker.dump(state)

        return admit

    async def sent(self, account: Account, task_id: int, *, went: bool) -> None:
        """The database said whether the create may leave (`went`). One it held back (the
        account is full with other processes' tasks, paused, out, or being probed by
        another; or the task was cancelled) never reached the upstream: it does not count
        against this hour's creates, and this process reads the account's state again.
        (Were it kept, replicas contending for one account would use up their own picture
        of its hourly cap with held-back attempts within seconds, then stop sending for an
        hour.)"""
        self._forget_send(account, task_id, went=went)
        if not went:  # (no probe went out from here either)
            await self.refresh(account.name)

    def _forget_send(self, account: Account, task_id: int, *, went: bool) -> None:
        moment = account.deciding.pop(task_id, None)
        if not went and moment is not None:
            with contextlib.suppress(ValueError):  # an hour old already: gone by itself
                account.created.remove(moment)

    async def create_succeeded(self, account: Account) -> bool:
        """True if that ended an outage (for exactly one process)."""

        def decide(state: AccountState) -> tuple[AccountState, bool]:
            breaker = self._breaker(state)
            ended = breaker.succeeded()
            return breaker.dump(state).but(balance_when_empty=None), ended

        return await self._move(account, decide)

    async def create_failed(self, account: Account, error: ProviderError) -> bool:
        """True if that began an outage (the account just left the rotation, for every
        process; exactly one is told)."""
        now = self.now()

        def decide(state: AccountState) -> tuple[AccountState, bool]:
            breaker = self._breaker(state)
            if error.kind is ErrorKind.REJECTED:
                # The request was wrong, not the account; if it was the probe, it decided
                # nothing, and the next task probes instead.
                breaker.abandoned()
                return breaker.dump(state), False
            down = error.kind is ErrorKind.UNAVAILABLE
            began = breaker.failed(now, str(error), account_down=down)
            return breaker.dump(state), began

        return await self._move(account, decide)

    async def pause(self, account: Account, seconds: float) -> None:
        """The account's upstream said too many requests: no process sends it anything for
        `seconds`."""
        until = self.now() + seconds

        def decide(state: AccountState) -> tuple[AccountState, None]:
            return state.but(paused_until=max(state.paused_until, until)), None

        await self._move(account, decide)

    async def load(self) -> None:
        """Read every account's shared state (start-up, and now and then as a net under the
        notices of `refresh`)."""
        if self._states is None:
            return
        states = await self._states.all()
        for account in self.accounts:
            account.load(states.get(account.name, AccountState()))

    async def on_change(self, listener: Callable[[str], None]) -> None:
        """Tell `listener` the name of an account whose state some process moved."""
        if self._states is not None:
            await self._states.on_change(listener)

    async def refresh(self, name: str) -> None:
        """Some process moved this account's state: read it again."""
        account = self._by_name.get(name)
        if account is not None and self._states is not None:
            account.load(await self._states.get(name))

    def _breaker(self, state: AccountState) -> Breaker:
        breaker = Breaker(self._policy)
        breaker.load(state)
        return breaker

    async def _move(
        self, account: Account, decide: Callable[[AccountState], tuple[AccountState, T]]
    ) -> T:
        if self._states is None:  # a line of its own, with no database (its tests)
            state, answer = decide(account.shared)
        else:
            state, answer = await self._states.move(account.name, decide)
        account.load(state)
        return answer

    def followups(self, account_name: str) -> tuple[bool, bool]:
        """(animate, upscale): what can be asked of a task made on that account."""
        account = self.find(account_name)
        animate = self.capabilities.image_to_video_from_url or bool(
            account and account.capabilities.image_to_video_from_task
        )
        upscale = bool(account and account.capabilities.upscale)
        return animate, upscale

    async def check(self, account: Account, *, every: float) -> bool:
        """Ask an account out of rotation how it is, with a call that costs nothing (its
        balance), if no process did in the last `every` seconds: True if that put it back
        in rotation. Accounts without such a call wait for their cool-down, after which one
        task probes them (refused, it goes back in line). The outage ends when the account
        takes a task again."""
        if not account.capabilities.balance or not account.breaker.out:
            return False  # no such call, or in rotation
        # By the wall clock: the checks' own pace is real seconds (`Timing.account_checks`),
        # whatever clock the line keeps.
        now = time.time()

        def claim(state: AccountState) -> tuple[AccountState, bool]:
            if 0 <= now - state.checked_at < every:
                return state, False  # another process checked it just now
            return state.but(checked_at=now), True

        if not await self._move(account, claim):
            return False
        credits: float | None = None
        try:
            credits = await account.provider.get_account_credits()
        except ProviderError as error:
            reason: str | None = str(error)
        else:
            reason = None

        def decide(state: AccountState) -> tuple[AccountState, bool]:
            breaker = self._breaker(state)
            if credits is None:
                back = breaker.checked(self.now(), False, reason)
            else:
                # Any good answer ends the cool-down of an outage of another cause; one of
                # credits, once the balance grew (a create refused for want of credits may
                # leave some).
                empty = state.balance_when_empty
                back = breaker.checked(self.now(), empty is None or credits > empty)
            return breaker.dump(state), back

        return await self._move(account, decide)

    async def note_balance(self, account: Account) -> None:
        """The account refused a create for want of credits: note its balance now (a check
        that costs nothing), to tell a top-up later. Until the answer is in, no balance
        counts as grown."""
        if not account.capabilities.balance:
            return

        async def note(balance: float) -> None:
            def decide(state: AccountState) -> tuple[AccountState, None]:
                return state.but(balance_when_empty=balance), None

            await self._move(account, decide)

        await note(math.inf)
        try:
            await note(await account.provider.get_account_credits())
        except ProviderError:
            await note(0.0)

    # --- the account's other services -----------------------------------------------------

    async def upload_file(self, content: bytes, file_name: str) -> str | None:
        """Put a user's file where the upstreams can fetch it: with the first account in
        rotation that has an upload API; None if none has one (the bot serves it itself)."""
        now = self.now()
        failure: ProviderError | None = None
        for account in self.accounts:
            if not account.capabilities.file_upload or not account.in_rotation(now):
                continue
            try:
                url = await account.provider.upload_file(content, file_name)
            except ProviderError as error:
                failure = error
                continue
            if url is not None:
                return url
        if failure is not None:
            raise failure
        return None

    async def aclose(self) -> None:
        for account in self.accounts:
            await account.provider.aclose()
