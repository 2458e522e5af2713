"""Credits: what a task costs, what a chat has left, where a reservation draws from.

Pure: the ledger rows live in the database (`storage/ledger.py`); the arithmetic lives here.

Each chat gets a daily allowance per UTC day; credits granted by an operator and credits
bought with Telegram Stars come on top and do not expire. A reservation draws on the day's
allowance first, then on granted credits, then on purchased ones (so a refunded purchase can
take back as much as was not used). In groups a per-user daily cap may limit what one
member spends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from bot.core.lifecycle import TaskKind


@dataclass(frozen=True, slots=True)
class Costs:
    text_to_image: int = 5
    image_to_video: int = 24
    text_to_video: int = 24
    upscale: int = 12

    def of(self, kind: TaskKind) -> int:
        return {
            TaskKind.TEXT_TO_IMAGE: self.text_to_image,
            TaskKind.IMAGE_TO_VIDEO: self.image_to_video,
            TaskKind.TEXT_TO_VIDEO: self.text_to_video,
            TaskKind.UPSCALE: self.upscale,
        }[kind]


@dataclass(frozen=True, slots=True)
class Balance:
    """A chat's credits on one UTC day, derived from its ledger."""

    daily_limit: int
    daily_spent: int  # reserved from today's allowance, less what was refunded
    granted: int  # granted credits not yet spent
    purchased: int = 0  # bought credits not yet spent (nor taken back by a refund)
    user_cap: int | None = None  # the member's daily cap in a group; None: no cap
    user_spent: int = 0  # what the member reserved today in this chat, less refunds

    @property
    def daily_left(self) -> int:
        return max(0, self.daily_limit - self.daily_spent)

    @property
    def available(self) -> int:
        return self.daily_left + self.granted + self.purchased

    @property
    def user_left(self) -> int | None:
        return None if self.user_cap is None else max(0, self.user_cap - self.user_spent)


@dataclass(frozen=True, slots=True)
class Reservation:
    amount: int
    from_daily: int
    from_purchased: int = 0  # the rest comes from granted credits

    @property
    def from_granted(self) -> int:
        return self.amount - self.from_daily - self.from_purchased


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a task cannot be paid for: the chat is out of credits, or the member's cap."""

    reason: Literal["chat", "user"]
    cost: int
    balance: Balance


def reserve(balance: Balance, cost: int) -> Reservation | Refusal:
    if balance.user_left is not None and balance.user_left < cost:
        return Refusal("user", cost, balance)
    if balance.available < cost:
        return Refusal("chat", cost, balance)
    from_daily = min(cost, balance.daily_left)
    from_granted = min(cost - from_daily, balance.granted)
    return Reservation(cost, from_daily, cost - from_daily - from_granted)


def utc_day(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).date().isoformat()


def next_renewal(moment: float) -> float:
    """The next UTC midnight after `moment`, when daily allowances start again."""
    today = datetime.fromtimestamp(moment, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today + timedelta(days=1)).timestamp()
