"""A Telegram Bot API server for tests: real HTTP on loopback, strict like Telegram.

It keeps chats and messages, hands updates to `getUpdates` (long polling), records every
call, and rejects what Telegram rejects: albums of fewer than 2 or more than 10 items,
`callback_data` over 64 bytes, HTML that does not parse, empty or over-long text and
captions, edits that change nothing, replies to messages that do not exist, answers to
unknown callback queries, photo URLs it cannot fetch. Errors can be injected per method
(`fail_next`), e.g. a 429 with `retry_after`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fakes.bot_api_spec import check_call
from fakes.flood_model import FloodModel
from fakes.server import LoopbackServer
from fakes.telegram_html import HtmlError, Parsed, parse_html, utf16_len

# How long a test waits for what it expects before it fails: a guard against a hang, not a
# deadline (a busy machine may take many times longer than an idle one; pytest-timeout
# stops a whole test after 120 s).
WAIT = 60.0

BOT_ID = 7_000_001
# The calls Telegram's flood limits count: messages sent or edited in a chat.
_MESSAGE_METHODS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendMediaGroup",
        "sendVideo",
        "sendDocument",
        "editMessageText",
        "editMessageReplyMarkup",
    }
)
BOT_USERNAME = "imagine_test_bot"
# Some of what Telegram sends when `allowed_updates` is not given (never `chat_member`).
_DEFAULT_UPDATES = frozenset(
    {
        "message",
        "edited_message",
        "callback_query",
        "my_chat_member",
        "inline_query",
        "pre_checkout_query",
    }
)
MAX_URL_PHOTO_BYTES = 5 * 1024 * 1024
MAX_URL_OTHER_BYTES = 20 * 1024 * 1024
MAX_UPLOAD_OTHER_BYTES = 50 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # getFile refuses larger files
MAX_UPLOAD_PHOTO_BYTES = 10 * 1024 * 1024
CHAT_ACTIONS = {
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
}


class ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


def bad_request(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float
    ok: bool
    result: Any = None
    error: str | None = None

    def json(self, name: str) -> Any:
        """A parameter that travels JSON-encoded in form data (reply_markup, media, …)."""
        value = self.params.get(name)
        return json.loads(value) if isinstance(value, str) else value


@dataclass
class StoredMessage:
    chat_id: int
    message_id: int
    from_bot: bool
    payload: dict[str, Any]
    deleted: bool = False


@dataclass
class FakeChat:
    id: int
    type: str
    title: str | None = None
    is_forum: bool = False

    def as_dict(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.title:
            chat["title"] = self.title
        if self.is_forum:
            chat["is_forum"] = True
        return chat


@dataclass
class FakeUser:
    id: int
    first_name: str
    language_code: str | None = "en"
    username: str | None = None

    def as_dict(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.language_code:
            user["language_code"] = self.language_code
        if self.username:
            user["username"] = self.username
        return user


@dataclass(frozen=True)
class Webhook:
    url: str
    secret: str | None
    allowed_updates: list[str] | None


@dataclass
class _Injected:
    method: str
    error: ApiError
    times: int


@dataclass
class InlineQuery:
    query_id: str
    user: FakeUser
    query: str
    results: list[dict[str, Any]] | None = None
    asked_at: float = field(default_factory=time.time)
    answered_at: float | None = None


@dataclass
class Checkout:
    query_id: str
    chat: FakeChat
    user: FakeUser
    invoice: dict[str, Any]
    answer: tuple[bool, str | None] | None = None
    asked_at: float = field(default_factory=time.time)
    answered_at: float | None = None


@dataclass
class Payment:
    charge_id: str
    chat: FakeChat
    user: FakeUser
    invoice: dict[str, Any]
    refunded: bool = False


@dataclass
class FakeTelegram:
    token: str
    calls: list[Call] = field(default_factory=list)
    commands: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._server = LoopbackServer(
            Starlette(
                routes=[
                    Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"]),
                    Route("/file/bot{token}/{path:path}", self._download, methods=["GET"]),
                ]
            )
        )
        self._chats: dict[int, FakeChat] = {}
        self._users: dict[int, FakeUser] = {}
        self._member_status: dict[tuple[int, int], str] = {}
        self._migrated: dict[int, int] = {}
        self._topics: dict[int, set[int]] = {}  # forum chat → its topics (message_thread_id)
        self.blocked: set[int] = set()  # private chats whose user blocked the bot
        self.delays: dict[str, float] = {}  # method → seconds to wait before answering
        # Telegram's flood limits (`flood_model`), when switched on; past them, a 429.
        self.flood_limits = False
        # The update types the bot asked for; `chat_member` is not among the default ones.
        self.allowed_updates: frozenset[str] = _DEFAULT_UPDATES
        self._flood = FloodModel()
        self._files: dict[str, bytes] = {}
        self.downloads: list[str] = []
        self._messages: dict[tuple[int, int], StoredMessage] = {}
        self._next_message_id: dict[int, int] = {}
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._new_update = asyncio.Event()
        self._queries: dict[str, bool] = {}  # id -> answered
        self._query_ids = itertools.count(1)
        self._injected: list[_Injected] = []
        self._changed = asyncio.Condition()
        self._fetcher = httpx.AsyncClient(timeout=5.0)
        self._file_ids = itertools.count(1)
        self.polls = 0
        self._closing = False
        self.webhook: Webhook | None = None
        self.webhook_deliveries: list[tuple[int, int | None]] = []
        self._holding: set[tuple[str, str]] = set()
        self._released = asyncio.Event()
        self.held: list[tuple[str, dict[str, Any]]] = []  # requests held on their way
        self._poll_generation = 0
        self._webhook_lock = asyncio.Lock()
        self.poll_conflicts = 0  # getUpdates calls another one ended (409)
        self.webhook_retry_delay = 0.2
        self._pump: asyncio.Task[None] | None = None
        self.server_errors: list[str] = []
        # Calls that break the Bot API 10.1 tables (unknown parameter, wrong type, missing
        # required one): `fakes/bot_api_spec.py`.
        self.api_violations: list[str] = []
        self.url = ""
        # Payments in Telegram Stars: invoices sent, checkouts open, charges made.
        self._invoices: dict[tuple[int, int], dict[str, Any]] = {}  # (chat, message) → invoice
        self._checkouts: dict[str, Checkout] = {}
        self._checkout_ids = itertools.count(1)
        self.payments: dict[str, Payment] = {}  # telegram_payment_charge_id → payment
        self.star_transactions: list[dict[str, Any]] = []
        self.complete_payments = True  # an ok pre-checkout answer completes the payment
        # Inline mode: queries asked and answered, messages sent through the bot by users.
        self._inline_queries: dict[str, InlineQuery] = {}
        self.inline_messages: dict[str, dict[str, Any]] = {}  # inline_message_id → message
        self._last_chosen: dict[str, Any] | None = None
        self.inline_feedback = True  # BotFather's /setinlinefeedback: chosen results reported
        # Called with each batch getUpdates is about to answer (a test kills the bot there).
        self.before_answering_updates: Callable[[list[dict[str, Any]]], None] | None = None

    # --- lifecycle --------------------------------------------------------------------

    async def start(self, port: int = 0) -> None:
        self.url = await self._server.start(port)

    async def stop(self) -> None:
        await self._stop_pump()
        self._closing = True
        self._new_update.set()
        await asyncio.sleep(0.01)  # let a pending long poll answer before the server closes
        await self._server.stop()
        await self._fetcher.aclose()

    # --- driving it from a test ---------------------------------------------------------

    def enforce_flood_limits(self, *, slack: float = 0.05) -> None:
        """Answer 429 past Telegram's flood limits (`flood_model`), forgiving `slack`
        seconds of arrival jitter (several bot processes on a busy machine need more)."""
        self.flood_limits = True
        self._flood = FloodModel(slack=slack)

    def private_chat(self, user: FakeUser) -> FakeChat:
        chat = FakeChat(user.id, "private")
        self._chats[chat.id] = chat
        return chat

    def group_chat(
        self, chat_id: int, title: str = "Test group", *, forum: bool = False
    ) -> FakeChat:
        chat = FakeChat(chat_id, "supergroup" if forum else "group", title, forum)
        self._chats[chat.id] = chat
        return chat

    def send_text(
        self,
        chat: FakeChat,
        user: FakeUser,
        text: str,
        *,
        thread_id: int | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """A user writes `text`; the bot gets it as a `message` update."""
        self._users[user.id] = user
        message: dict[str, Any] = {
            "message_id": self._take_message_id(chat.id),
            "date": int(time.time()),
            "chat": chat.as_dict(),
            "from": user.as_dict(),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": utf16_len(command)}
            ]
        if thread_id is not None:
            assert chat.is_forum, "topics exist in forum supergroups only"
            self._topics.setdefault(chat.id, set()).add(thread_id)  # a topic a user writes in
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        if reply_to is not None:
            replied = self._messages[(chat.id, reply_to)]
            message["reply_to_message"] = replied.payload
        self._store(chat.id, message, from_bot=False)
        self._push({"message": message})
        return message

    def send_photo(
        self,
        chat: FakeChat,
        user: FakeUser,
        content: bytes,
        *,
        caption: str | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """A user sends a photo (Telegram re-encodes photos as JPEG; this keeps the bytes)."""
        return self._user_media(
            chat,
            user,
            "photo",
            [self._keep_file(content, "userphoto", width=800, height=600)],
            caption,
            reply_to,
        )

    def send_document(
        self,
        chat: FakeChat,
        user: FakeUser,
        content: bytes,
        *,
        mime_type: str,
        file_name: str = "file",
        caption: str | None = None,
    ) -> dict[str, Any]:
        """A user sends a file (an image sent "as a file" keeps its format and size)."""
        document = self._keep_file(content, "userdoc", file_name=file_name, mime_type=mime_type)
        return self._user_media(chat, user, "document", document, caption, None)

    def _user_media(
        self,
        chat: FakeChat,
        user: FakeUser,
        field_name: str,
        media: Any,
        caption: str | None,
        reply_to: int | None,
    ) -> dict[str, Any]:
        self._users[user.id] = user
        message: dict[str, Any] = {
            "message_id": self._take_message_id(chat.id),
            "date": int(time.time()),
            "chat": chat.as_dict(),
            "from": user.as_dict(),
            field_name: media,
        }
        if caption is not None:
            message["caption"] = caption
            if caption.startswith("/"):
                command = caption.split(maxsplit=1)[0]
                message["caption_entities"] = [
                    {"type": "bot_command", "offset": 0, "length": utf16_len(command)}
                ]
        if reply_to is not None:
            message["reply_to_message"] = self._messages[(chat.id, reply_to)].payload
        self._store(chat.id, message, from_bot=False)
        self._push({"message": message})
        return message

    def edit_text(self, chat: FakeChat, user: FakeUser, message_id: int, text: str) -> None:
        """A user edits an earlier message; the bot gets an `edited_message` update."""
        stored = self._messages[(chat.id, message_id)]
        edited = dict(stored.payload, text=text, edit_date=int(time.time()))
        stored.payload = edited
        self._push({"edited_message": edited})

    def press(self, chat: FakeChat, user: FakeUser, message_id: int, data: str) -> str:
        """A user presses an inline button under the bot's message `message_id`."""
        self._users[user.id] = user
        stored = self._messages[(chat.id, message_id)]
        query_id = str(next(self._query_ids))
        self._queries[query_id] = False
        self._push(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user.as_dict(),
                    "message": stored.payload,
                    "chat_instance": f"ci{chat.id}",
                    "data": data,
                }
            }
        )
        return query_id

    def checkout(self, chat: FakeChat, user: FakeUser, invoice_message_id: int) -> str:
        """A user presses Pay under the bot's invoice: the bot gets a `pre_checkout_query`
        (if it asked for them) and has 10 seconds to answer. On a yes, the payment goes
        through and the bot gets the `successful_payment` message (see `complete_payments`)."""
        self._users[user.id] = user
        invoice = self._invoices[(chat.id, invoice_message_id)]
        query_id = f"pcq{next(self._checkout_ids)}"
        self._checkouts[query_id] = Checkout(query_id, chat, user, invoice)
        if "pre_checkout_query" in self.allowed_updates:
            self._push(
                {
                    "pre_checkout_query": {
                        "id": query_id,
                        "from": user.as_dict(),
                        "currency": invoice["currency"],
                        "total_amount": invoice["total_amount"],
                        "invoice_payload": invoice["payload"],
                    }
                }
            )
        return query_id

    def inline_query(self, user: FakeUser, query: str) -> str:
        """A user types `@bot query` in some chat: the bot gets an `inline_query`."""
        if len(query) > 256:
            raise ValueError("Telegram sends at most 256 characters of an inline query")
        self._users[user.id] = user
        query_id = f"iq{len(self._inline_queries) + 1}"
        self._inline_queries[query_id] = InlineQuery(query_id, user, query)
        if "inline_query" in self.allowed_updates:
            self._push(
                {
                    "inline_query": {
                        "id": query_id,
                        "from": user.as_dict(),
                        "query": query,
                        "offset": "",
                        "chat_type": "supergroup",
                    }
                }
            )
        return query_id

    def report_chosen_again(self) -> None:
        """The last `chosen_inline_result` once more (Telegram may repeat an update)."""
        assert self._last_chosen is not None
        self._push({"chosen_inline_result": dict(self._last_chosen)})

    def inline_answer(self, query_id: str) -> list[dict[str, Any]] | None:
        """The results the bot answered an inline query with, or None yet."""
        return self._inline_queries[query_id].results

    def inline_answer_delay(self, query_id: str) -> float | None:
        """Seconds from the user's query to the bot's answer, or None if not answered."""
        inline = self._inline_queries[query_id]
        return None if inline.answered_at is None else inline.answered_at - inline.asked_at

    def choose(self, query_id: str, result_id: str) -> str | None:
        """The user chooses a result: Telegram sends its message into the user's chat (the
        bot need not be there). A result with an inline keyboard gets an inline_message_id,
        which the bot learns from `chosen_inline_result` (with inline feedback on)."""
        inline = self._inline_queries[query_id]
        assert inline.results is not None, "not answered"
        [result] = [r for r in inline.results if r["id"] == result_id]
        inline_message_id = None
        if result.get("reply_markup"):
            inline_message_id = f"AgAAA{len(self.inline_messages) + 1:04d}{inline.user.id}"
            content = result.get("input_message_content") or {}
            message: dict[str, Any] = {"reply_markup": result["reply_markup"]}
            if "message_text" in content:
                message["text"] = _parse(content["message_text"], content.get("parse_mode")).text
            else:
                message["photo"] = result.get("photo_file_id")
            self.inline_messages[inline_message_id] = message
        if self.inline_feedback and "chosen_inline_result" in self.allowed_updates:
            chosen: dict[str, Any] = {
                "result_id": result_id,
                "from": inline.user.as_dict(),
                "query": inline.query,
            }
            if inline_message_id:
                chosen["inline_message_id"] = inline_message_id
            self._last_chosen = chosen
            self._push({"chosen_inline_result": chosen})
        return inline_message_id

    def invoice_of(self, chat: FakeChat, message_id: int) -> dict[str, Any]:
        """The invoice behind a bot's message, as Telegram keeps it (a test may alter it)."""
        return self._invoices[(chat.id, message_id)]

    def checkout_answer(self, query_id: str) -> tuple[bool, str | None] | None:
        """How the bot answered a pre-checkout query: (ok, error message), or None yet."""
        return self._checkouts[query_id].answer

    def checkout_answer_delay(self, query_id: str) -> float | None:
        """Seconds from the user's Pay to the bot's pre-checkout answer, or None yet."""
        checkout = self._checkouts[query_id]
        return None if checkout.answered_at is None else checkout.answered_at - checkout.asked_at

    def pay(self, query_id: str) -> Payment:
        """The payment of an approved checkout goes through: Stars move, and the bot gets a
        `successful_payment` message in the invoice's chat."""
        checkout = self._checkouts[query_id]
        charge_id = f"stxCharge{len(self.payments) + 1:04d}x{checkout.user.id}"
        payment = Payment(charge_id, checkout.chat, checkout.user, checkout.invoice)
        self.payments[charge_id] = payment
        self.star_transactions.append(
            {
                "id": charge_id,
                "amount": checkout.invoice["total_amount"],
                "date": int(time.time()),
                "source": {
                    "type": "user",
                    "transaction_type": "invoice_payment",
                    "user": checkout.user.as_dict(),
                    "invoice_payload": checkout.invoice["payload"],
                },
            }
        )
        self.deliver_payment(charge_id)
        return payment

    def deliver_payment(self, charge_id: str) -> None:
        """The `successful_payment` message of a payment (again: Telegram may repeat it)."""
        payment = self.payments[charge_id]
        message: dict[str, Any] = {
            "message_id": self._take_message_id(payment.chat.id),
            "date": int(time.time()),
            "chat": payment.chat.as_dict(),
            "from": payment.user.as_dict(),
            "successful_payment": {
                "currency": payment.invoice["currency"],
                "total_amount": payment.invoice["total_amount"],
                "invoice_payload": payment.invoice["payload"],
                "telegram_payment_charge_id": charge_id,
                "provider_payment_charge_id": "",
            },
        }
        self._store(payment.chat.id, message, from_bot=False)
        self._push({"message": message})

    def migrate(self, group: FakeChat, supergroup_id: int) -> FakeChat:
        """The group becomes a supergroup with a new id, as Telegram tells the bot: a service
        message in each chat. The old id refuses messages from then on."""
        supergroup = FakeChat(supergroup_id, "supergroup", group.title)
        self._chats[supergroup_id] = supergroup
        self._migrated[group.id] = supergroup_id
        for chat, name, value in (
            (group, "migrate_to_chat_id", supergroup_id),
            (supergroup, "migrate_from_chat_id", group.id),
        ):
            message = {
                "message_id": self._take_message_id(chat.id),
                "date": int(time.time()),
                "chat": chat.as_dict(),
                "from": {"id": 1087968824, "is_bot": True, "first_name": "Group"},
                name: value,
            }
            self._store(chat.id, message, from_bot=False)
            self._push({"message": message})
        return supergroup

    def set_member_status(
        self, chat: FakeChat, user: FakeUser, status: str, *, announce: bool = True
    ) -> None:
        """`creator`, `administrator` or `member`, as getChatMember and
        getChatAdministrators will report it. With `announce`, Telegram tells the bot with a
        `chat_member` update (it does so for bots that administer the chat), if the bot
        asked for those in `allowed_updates`."""
        self._users[user.id] = user
        old = self._member_status.get((chat.id, user.id), "member")
        self._member_status[(chat.id, user.id)] = status
        if announce and "chat_member" in self.allowed_updates:
            self._push(
                {
                    "chat_member": {
                        "chat": chat.as_dict(),
                        "from": user.as_dict(),
                        "date": int(time.time()),
                        "old_chat_member": self._member(chat, user, old),
                        "new_chat_member": self._member(chat, user, status),
                    }
                }
            )

    def fail_next(
        self,
        method: str,
        code: int,
        description: str,
        *,
        times: int = 1,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        parameters: dict[str, Any] = {}
        if retry_after is not None:
            parameters["retry_after"] = retry_after
        if migrate_to_chat_id is not None:
            parameters["migrate_to_chat_id"] = migrate_to_chat_id
        self._injected.append(
            _Injected(method, ApiError(code, description, parameters or None), times)
        )

    def message(self, chat_id: int, message_id: int) -> StoredMessage:
        return self._messages[(chat_id, message_id)]

    def file_content(self, file_id: str) -> bytes:
        """The bytes of a file the bot sent (or a user sent)."""
        return self._files[file_id]

    def bot_messages(self, chat_id: int) -> list[StoredMessage]:
        """The bot's messages in a chat that are still there, oldest first."""
        return [
            m
            for (c, _), m in sorted(self._messages.items())
            if c == chat_id and m.from_bot and not m.deleted
        ]

    def calls_of(self, method: str, chat_id: int | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.method == method
            and (chat_id is None or str(c.params.get("chat_id")) == str(chat_id))
        ]

    async def wait_for(self, predicate: Callable[[], Any], *, timeout: float = WAIT) -> Any:
        """Wait until `predicate()` is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while not (value := predicate()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the Telegram test server never saw what was awaited")
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except TimeoutError:
                    continue
            return value

    def answer_to(self, query_id: str) -> str | None:
        """The text the bot answered a press with ("" for none); None while unanswered."""
        for call in self.calls_of("answerCallbackQuery"):
            if call.ok and call.params["callback_query_id"] == query_id:
                return str(call.params.get("text", ""))
        return None

    async def wait_for_answer(self, query_id: str) -> str:
        """Wait until the bot has answered the press `query_id`; its text."""
        await self.wait_for(lambda: self.answer_to(query_id) is not None)
        return self.answer_to(query_id) or ""

    def hold(self, method: str, chat_id: int) -> None:
        """Hold the bot's `method` requests to this chat on their way until `release()`;
        a request whose sender is gone by then never arrives (nothing is recorded)."""
        self._holding.add((method, str(chat_id)))

    def release(self) -> None:
        self._holding.clear()
        self._released.set()

    async def wait_for_call(
        self,
        method: str,
        chat_id: int | None = None,
        *,
        count: int = 1,
        timeout: float = WAIT,
    ) -> list[Call]:
        def enough() -> list[Call] | None:
            found = [c for c in self.calls_of(method, chat_id) if c.ok]
            return found if len(found) >= count else None

        result: list[Call] = await self.wait_for(enough, timeout=timeout)
        return result

    # --- the HTTP side ----------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return JSONResponse(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status_code=401
            )
        method = request.path_params["method"]
        handler = getattr(self, f"_api_{method.lower()}", None)
        if handler is None:
            return JSONResponse(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status_code=404
            )
        params, files = await _read_params(request)
        problems = check_call(method, params, files)
        if problems:
            # Not as the Bot API has it: a test failure (the fixture fails on these), and,
            # as Telegram does for a missing or malformed parameter, a 400.
            self.api_violations.extend(problems)
            call = Call(method, params, time.time(), ok=False)
            self.calls.append(call)
            return await self._refuse(call, bad_request(problems[0]))
        if method in self.delays:
            await asyncio.sleep(self.delays[method])
        if (method, str(params.get("chat_id"))) in self._holding:
            # Held on its way, as a request still in the network is: if its sender dies
            # meanwhile, it never arrives.
            self.held.append((method, params))
            await self._notify()
            await self._released.wait()
            if await request.is_disconnected():
                return JSONResponse({"ok": False}, status_code=499)
        call = Call(method, params, time.time(), ok=False)
        if method != "getUpdates":
            self.calls.append(call)
        try:
            injected = self._take_injected(method)
            if injected:
                raise injected
            if self.flood_limits and method in _MESSAGE_METHODS:
                self._check_flood(params)
            result = await handler(params, files)
        except ApiError as error:
            return await self._refuse(call, error)
        except Exception:
            # A bug in this test server, not a Telegram answer: keep it for the fixture to fail on.
            self.server_errors.append(traceback.format_exc())
            return await self._refuse(
                call, ApiError(500, "Internal Server Error (test server bug)")
            )
        call.ok, call.result = True, result
        await self._notify()
        return JSONResponse({"ok": True, "result": result})

    async def _refuse(self, call: Call, error: ApiError) -> JSONResponse:
        call.error = error.description
        await self._notify()
        body: dict[str, Any] = {
            "ok": False,
            "error_code": error.code,
            "description": error.description,
        }
        if error.parameters:
            body["parameters"] = error.parameters
        return JSONResponse(body, status_code=error.code)

    def _check_flood(self, params: dict[str, Any]) -> None:
        retry_after = self._flood.admit(_int(params, "chat_id") or 0, time.monotonic())
        if retry_after is not None:
            raise ApiError(
                429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
            )

    @property
    def flood_errors(self) -> int:
        """How many calls broke Telegram's flood limits (and got a 429)."""
        return self._flood.refused

    @property
    def flood_errors_by(self) -> dict[str, int]:
        """The same, by the limit broken (overall, group, chat)."""
        return dict(self._flood.refused_by)

    def _take_injected(self, method: str) -> ApiError | None:
        for injected in self._injected:
            if injected.method == method and injected.times > 0:
                injected.times -= 1
                return injected.error
        return None

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- methods ------------------------------------------------------------------------------

    async def _api_getme(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Imagine",
            "username": BOT_USERNAME,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _api_deletewebhook(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        async with self._webhook_lock:
            await self._stop_pump()
            self.webhook = None
        if params.get("drop_pending_updates") in (True, "true", "True"):
            self._updates.clear()
        return True

    async def _api_setwebhook(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        url = params.get("url", "")
        if not url.startswith(("http://", "https://")):
            raise bad_request("bad webhook: invalid URL")
        secret = params.get("secret_token")
        if secret is not None and not (
            1 <= len(secret) <= 256 and all(c.isalnum() or c in "_-" for c in secret)
        ):
            raise bad_request("bad webhook: secret token contains unallowed characters")
        if params.get("drop_pending_updates") in (True, "true", "True"):
            self._updates.clear()
        async with self._webhook_lock:  # replicas set it at once: one pump, the last one's
            await self._stop_pump()
            self.webhook = Webhook(url, secret, _json(params, "allowed_updates"))
            self._allowed_updates(params)
            self._pump = asyncio.create_task(self._deliver_to_webhook(self.webhook))
        return True

    async def _deliver_to_webhook(self, webhook: Webhook) -> None:
        """Send pending updates one by one; keep and retry what the bot does not accept."""
        headers = {"X-Telegram-Bot-Api-Secret-Token": webhook.secret} if webhook.secret else {}
        while True:
            if not self._updates:
                self._new_update.clear()
                await self._new_update.wait()
                continue
            update = self._updates[0]
            try:
                response = await self._fetcher.post(webhook.url, json=update, headers=headers)
                status: int | None = response.status_code
            except httpx.HTTPError:
                status = None
            self.webhook_deliveries.append((update["update_id"], status))
            await self._notify()
            if status is not None and 200 <= status < 300 and update in self._updates:
                self._updates.remove(update)
            else:
                await asyncio.sleep(self.webhook_retry_delay)

    async def _stop_pump(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None

    async def _api_setmycommands(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        commands = _json(params, "commands", required=True)
        if not isinstance(commands, list) or not 1 <= len(commands) <= 100:
            raise bad_request("commands must be a non-empty list of at most 100 commands")
        for command in commands:
            name = command.get("command", "")
            if not (1 <= len(name) <= 32 and name.replace("_", "a").isalnum() and name.islower()):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(command.get("description", "")) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        scope = _json(params, "scope") or {"type": "default"}
        self.commands[(scope["type"], params.get("language_code") or "")] = commands
        return True

    async def _api_getupdates(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        self.polls += 1
        # Telegram serves one getUpdates at a time per bot: a second one ends the first
        # with 409 (two processes polling one bot).
        self._poll_generation += 1
        mine = self._poll_generation
        self._new_update.set()
        self._allowed_updates(params)
        await self._notify()
        offset = _int(params, "offset") or 0
        timeout = float(params.get("timeout") or 0)
        limit = _int(params, "limit") or 100
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        while not self._updates and not self._closing and time.monotonic() < deadline:
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), deadline - time.monotonic())
            except TimeoutError:
                break
            if self._poll_generation != mine:
                self.poll_conflicts += 1
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only"
                    " one bot instance is running",
                )
        batch = self._updates[:limit]
        if batch and self.before_answering_updates is not None:
            self.before_answering_updates(batch)
        return batch

    def confirm(self, updates: list[dict[str, Any]]) -> None:
        """Count these updates delivered, as Telegram does once the bot asks past them (or
        once a webhook answered 200): they are never sent again."""
        delivered = {u["update_id"] for u in updates}
        self._updates = [u for u in self._updates if u["update_id"] not in delivered]

    async def _api_getchatmember(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        chat = self._chat(params)
        user_id = _int(params, "user_id")
        user = self._users.get(user_id or 0)
        if user is None:
            raise bad_request("user not found")
        return self._member(chat, user, self._member_status.get((chat.id, user.id), "member"))

    async def _api_getchatadministrators(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> Any:
        chat = self._chat(params)
        if chat.type == "private":
            raise bad_request("there are no administrators in the private chat")
        return [
            self._member(chat, self._users[user_id], status)
            for (chat_id, user_id), status in sorted(self._member_status.items())
            if chat_id == chat.id and status in ("creator", "administrator")
        ]

    def _member(self, chat: FakeChat, user: FakeUser, status: str) -> dict[str, Any]:
        """A ChatMember object as the Bot API gives it."""
        member: dict[str, Any] = {"user": user.as_dict(), "status": status}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member.update(
                {
                    name: name == "can_manage_chat"
                    for name in (
                        "can_be_edited",
                        "is_anonymous",
                        "can_manage_chat",
                        "can_delete_messages",
                        "can_manage_video_chats",
                        "can_restrict_members",
                        "can_promote_members",
                        "can_change_info",
                        "can_invite_users",
                        "can_post_stories",
                        "can_edit_stories",
                        "can_delete_stories",
                    )
                }
            )
        return member

    async def _api_sendchataction(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        self._chat(params)
        if params.get("action") not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    async def _api_sendmessage(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        chat = self._chat(params)
        parsed = _parse_text(params, "text")
        if not parsed.text.strip():
            raise bad_request("message text is empty")
        if utf16_len(parsed.text) > 4096:
            raise bad_request("message is too long")
        message = self._new_bot_message(chat, params)
        message["text"] = parsed.text
        if parsed.entities:
            message["entities"] = parsed.entities
        self._attach_markup(message, params)
        self._store(chat.id, message, from_bot=True)
        return message

    async def _api_sendphoto(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        chat = self._chat(params)
        message = self._new_bot_message(chat, params)
        message["photo"] = await self._photo(params.get("photo"), files)
        self._caption(message, params)
        self._attach_markup(message, params)
        self._store(chat.id, message, from_bot=True)
        return message

    async def _api_sendvideo(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        def check(content: bytes) -> None:
            if content[4:8] != b"ftyp":
                raise bad_request("wrong file type of the video")

        return await self._send_file(
            params,
            files,
            "video",
            "video/",
            check,
            width=64,
            height=64,
            duration=6,
            mime_type="video/mp4",
        )

    async def _api_senddocument(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        return await self._send_file(params, files, "document", "", None, file_name="file")

    async def _send_file(
        self,
        params: dict[str, Any],
        files: dict[str, bytes],
        field_name: str,
        kind: str,
        check: Callable[[bytes], None] | None,
        **details: Any,
    ) -> Any:
        """sendVideo and sendDocument: by URL within 20 MB, uploaded within 50 MB."""
        chat = self._chat(params)
        content = await self._content(
            params.get(field_name),
            files,
            by_url_limit=MAX_URL_OTHER_BYTES,
            upload_limit=MAX_UPLOAD_OTHER_BYTES,
            kind=kind,
        )
        if check is not None:
            check(content)
        message = self._new_bot_message(chat, params)
        message[field_name] = self._keep_file(content, field_name, **details)
        self._caption(message, params)
        self._attach_markup(message, params)
        self._store(chat.id, message, from_bot=True)
        return message

    async def _api_getfile(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        file_id = params.get("file_id", "")
        content = self._files.get(file_id)
        if content is None:
            raise bad_request("invalid file_id")
        if len(content) > MAX_DOWNLOAD_BYTES:
            raise bad_request("file is too big")
        return {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_size": len(content),
            "file_path": f"files/{file_id}",
        }

    async def _download(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return JSONResponse(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, 401
            )
        file_id = request.path_params["path"].removeprefix("files/")
        content = self._files.get(file_id)
        if content is None:
            return JSONResponse({"ok": False, "error_code": 404, "description": "Not Found"}, 404)
        self.downloads.append(file_id)
        return Response(content, media_type="application/octet-stream")

    async def _api_sendmediagroup(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        chat = self._chat(params)
        media = _json(params, "media", required=True)
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise bad_request("media must include 2-10 items")
        photos = []
        for number, item in enumerate(media, start=1):
            if item.get("type") != "photo":
                raise bad_request(f"message #{number}: unsupported media type")
            try:
                photos.append(await self._photo(item.get("media"), files))
            except ApiError as error:
                raise bad_request(
                    f"failed to send message #{number} with the error message "
                    f'"{error.description.removeprefix("Bad Request: ")}"'
                ) from error
        for item in media:
            _parse_caption(item)
        self._check_reply(chat, params)
        group_id = str(next(self._file_ids))
        messages = []
        for item, photo in zip(media, photos, strict=True):
            message = self._new_bot_message(chat, params)
            message["photo"] = photo
            message["media_group_id"] = group_id
            self._caption(message, item)
            self._store(chat.id, message, from_bot=True)
            messages.append(message)
        return messages

    async def _api_answerinlinequery(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        inline = self._inline_queries.get(params.get("inline_query_id") or "")
        if inline is None or inline.results is not None:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        results = _json(params, "results", required=True)
        if not isinstance(results, list):
            raise bad_request("can't parse inline query results JSON object")
        if len(results) > 50:
            raise bad_request("RESULTS_TOO_MUCH")
        ids = [str(r.get("id", "")) for r in results]
        if any(not 1 <= len(i.encode()) <= 64 for i in ids):
            raise bad_request("RESULT_ID_INVALID")
        if len(set(ids)) != len(ids):
            raise bad_request("RESULT_ID_DUPLICATE")
        for result in results:
            kind = result.get("type")
            if kind == "article":
                content = result.get("input_message_content") or {}
                if not result.get("title") or not content.get("message_text"):
                    raise bad_request("MESSAGE_EMPTY")
                _parse(content["message_text"], content.get("parse_mode"))
            elif kind == "photo":
                if result.get("photo_file_id") not in self._files:
                    raise bad_request("wrong file identifier/HTTP URL specified")
            else:
                raise bad_request(f"unsupported result type in this test server: {kind}")
            markup = result.get("reply_markup")
            if markup is not None:
                for row in markup.get("inline_keyboard", []):
                    for button in row:
                        if "callback_data" not in button and "url" not in button:
                            raise bad_request("BUTTON_TYPE_INVALID")
        inline.results = results
        inline.answered_at = time.time()
        return True

    async def _api_editmessagemedia(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        inline_message_id = params.get("inline_message_id")
        if inline_message_id is None:
            raise bad_request("this test server edits media of inline messages only")
        message = self.inline_messages.get(inline_message_id)
        if message is None:
            raise bad_request("MESSAGE_ID_INVALID")
        media = _json(params, "media", required=True)
        source = media.get("media", "")
        if (isinstance(source, str) and source.startswith("attach://")) or files:
            # An inline message lives in a chat the bot may not see: nothing can be uploaded.
            raise bad_request("can't use file upload for inline message media")
        content = await self._content(
            source, files, by_url_limit=MAX_URL_PHOTO_BYTES, upload_limit=0, kind="image/"
        )
        message.pop("text", None)
        message["photo"] = self._keep_file(content, "photo")["file_id"]
        message["caption"] = _parse(media.get("caption") or "", media.get("parse_mode")).text
        message.pop("reply_markup", None)
        markup = _json(params, "reply_markup")
        if markup is not None:
            message["reply_markup"] = markup
        return True

    async def _edit_inline_text(self, inline_message_id: str, params: dict[str, Any]) -> Any:
        message = self.inline_messages.get(inline_message_id)
        if message is None:
            raise bad_request("MESSAGE_ID_INVALID")
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        parsed = _parse_text(params, "text")
        if not parsed.text.strip():
            raise bad_request("message text is empty")
        message["text"] = parsed.text
        message.pop("reply_markup", None)
        markup = _json(params, "reply_markup")
        if markup is not None:
            message["reply_markup"] = markup
        return True

    async def _api_editmessagetext(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        if params.get("inline_message_id"):
            return await self._edit_inline_text(params["inline_message_id"], params)
        chat = self._chat(params)
        stored = self._messages.get((chat.id, _int(params, "message_id") or 0))
        if stored is None or stored.deleted:
            raise bad_request("message to edit not found")
        if not stored.from_bot:
            raise bad_request("message can't be edited")
        if "text" not in stored.payload:
            raise bad_request("there is no text in the message to edit")
        parsed = _parse_text(params, "text")
        if not parsed.text.strip():
            raise bad_request("message text is empty")
        if utf16_len(parsed.text) > 4096:
            raise bad_request("message is too long")
        markup = _json(params, "reply_markup")
        if (
            parsed.text == stored.payload.get("text")
            and parsed.entities == stored.payload.get("entities", [])
            and markup == stored.payload.get("reply_markup")
        ):
            raise bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        edited = dict(stored.payload, text=parsed.text, edit_date=int(time.time()))
        edited.pop("entities", None)
        if parsed.entities:
            edited["entities"] = parsed.entities
        edited.pop("reply_markup", None)
        self._attach_markup(edited, params)
        stored.payload = edited
        return edited

    async def _api_editmessagereplymarkup(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> Any:
        chat = self._chat(params)
        stored = self._messages.get((chat.id, _int(params, "message_id") or 0))
        if stored is None or stored.deleted:
            raise bad_request("message to edit not found")
        if not stored.from_bot:
            raise bad_request("message can't be edited")
        markup = _json(params, "reply_markup")
        if markup == stored.payload.get("reply_markup"):
            raise bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        edited = dict(stored.payload, edit_date=int(time.time()))
        edited.pop("reply_markup", None)
        self._attach_markup(edited, params)
        stored.payload = edited
        return edited

    async def _api_deletemessage(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        chat = self._chat(params)
        stored = self._messages.get((chat.id, _int(params, "message_id") or 0))
        if stored is None or stored.deleted:
            raise bad_request("message to delete not found")
        if not stored.from_bot and chat.type == "private":
            raise bad_request("message can't be deleted for everyone")
        stored.deleted = True
        return True

    async def _api_answercallbackquery(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> Any:
        query_id = params.get("callback_query_id")
        if query_id not in self._queries or self._queries[query_id]:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        if len(params.get("text") or "") > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        self._queries[query_id] = True
        return True

    async def _api_sendinvoice(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        chat = self._chat(params)
        title, description = params.get("title") or "", params.get("description") or ""
        payload, currency = params.get("payload") or "", params.get("currency") or ""
        if not 1 <= len(title) <= 32:
            raise bad_request("INVOICE_TITLE_INVALID" if title else "title is empty")
        if not 1 <= len(description) <= 255:
            raise bad_request("INVOICE_DESCRIPTION_INVALID")
        if not 1 <= len(payload.encode()) <= 128:
            raise bad_request("INVOICE_PAYLOAD_INVALID")
        if len(currency) != 3:
            raise bad_request("CURRENCY_INVALID")
        provider_token = params.get("provider_token") or ""
        if currency == "XTR" and provider_token:
            raise bad_request("PAYMENT_PROVIDER_INVALID")  # Stars take no provider
        if currency != "XTR" and not provider_token:
            raise bad_request("PAYMENT_PROVIDER_INVALID")
        prices = _json(params, "prices", required=True)
        if (
            not isinstance(prices, list)
            or not prices
            or not all(
                isinstance(p, dict)
                and isinstance(p.get("label"), str)
                and p["label"]
                and isinstance(p.get("amount"), int)
                for p in prices
            )
        ):
            raise bad_request("can't parse prices JSON object")
        if currency == "XTR" and (len(prices) != 1 or prices[0]["amount"] < 1):
            raise bad_request("STARS_INVOICE_INVALID")  # exactly one price, in whole Stars
        total = sum(p["amount"] for p in prices)
        if total < 1:
            raise bad_request("CURRENCY_TOTAL_AMOUNT_INVALID")
        message = self._new_bot_message(chat, params)
        message["invoice"] = {
            "title": title,
            "description": description,
            "start_parameter": params.get("start_parameter") or "",
            "currency": currency,
            "total_amount": total,
        }
        self._attach_markup(message, params)
        self._store(chat.id, message, from_bot=True)
        self._invoices[(chat.id, message["message_id"])] = {
            "payload": payload,
            "currency": currency,
            "total_amount": total,
            "title": title,
            "description": description,
        }
        return message

    async def _api_answerprecheckoutquery(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> Any:
        checkout = self._checkouts.get(params.get("pre_checkout_query_id") or "")
        if checkout is None or checkout.answer is not None:
            raise bad_request("QUERY_ID_INVALID")
        ok = str(params.get("ok")).lower() == "true"
        error_message = params.get("error_message") or None
        if not ok and not error_message:
            raise bad_request("ERROR_MESSAGE_EMPTY")  # a no needs a reason the user can read
        checkout.answer = (ok, error_message)
        checkout.answered_at = time.time()
        if ok and self.complete_payments:
            self.pay(checkout.query_id)
        return True

    async def _api_refundstarpayment(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        payment = self.payments.get(params.get("telegram_payment_charge_id") or "")
        if payment is None or payment.user.id != _int(params, "user_id"):
            raise bad_request("CHARGE_NOT_FOUND")
        if payment.refunded:
            raise bad_request("CHARGE_ALREADY_REFUNDED")
        payment.refunded = True
        self.star_transactions.append(
            {
                "id": payment.charge_id,
                "amount": payment.invoice["total_amount"],
                "date": int(time.time()),
                "receiver": {
                    "type": "user",
                    "transaction_type": "invoice_payment",
                    "user": payment.user.as_dict(),
                    "invoice_payload": payment.invoice["payload"],
                },
            }
        )
        return True

    async def _api_getstartransactions(
        self, params: dict[str, Any], files: dict[str, bytes]
    ) -> Any:
        offset = _int(params, "offset") or 0
        limit = _int(params, "limit") or 100
        if not 1 <= limit <= 100 or offset < 0:
            raise bad_request("LIMIT_INVALID")
        return {"transactions": self.star_transactions[offset : offset + limit]}

    # --- helpers ----------------------------------------------------------------------------

    def _chat(self, params: dict[str, Any]) -> FakeChat:
        chat_id = _int(params, "chat_id")
        chat = self._chats.get(chat_id or 0)
        if chat is None:
            raise bad_request("chat not found")
        if chat.id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if chat.id in self._migrated:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self._migrated[chat.id]},
            )
        thread = _int(params, "message_thread_id")
        if thread is not None and thread not in self._topics.get(chat.id, set()):
            raise bad_request("message thread not found")  # not a forum, or no such topic
        return chat

    def _check_reply(self, chat: FakeChat, params: dict[str, Any]) -> None:
        reply = _json(params, "reply_parameters")
        if not reply:
            return
        target = self._messages.get((chat.id, int(reply["message_id"])))
        if (target is None or target.deleted) and not reply.get("allow_sending_without_reply"):
            raise bad_request("message to be replied not found")

    def _new_bot_message(self, chat: FakeChat, params: dict[str, Any]) -> dict[str, Any]:
        self._check_reply(chat, params)
        message: dict[str, Any] = {
            "message_id": self._take_message_id(chat.id),
            "date": int(time.time()),
            "chat": chat.as_dict(),
            "from": {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "Imagine",
                "username": BOT_USERNAME,
            },
        }
        thread = _int(params, "message_thread_id")
        if thread is not None:
            message["message_thread_id"] = thread
            message["is_topic_message"] = True
        return message

    def _attach_markup(self, message: dict[str, Any], params: dict[str, Any]) -> None:
        markup = _json(params, "reply_markup")
        if markup is None:
            return
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if not button.get("text"):
                    raise bad_request("BUTTON_TEXT_INVALID")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= 64:
                    raise bad_request("BUTTON_DATA_INVALID")
        message["reply_markup"] = markup

    def _caption(self, message: dict[str, Any], source: dict[str, Any]) -> None:
        parsed = _parse_caption(source)
        if parsed and parsed.text:
            message["caption"] = parsed.text
            if parsed.entities:
                message["caption_entities"] = parsed.entities

    async def _content(
        self,
        media: Any,
        files: dict[str, bytes],
        *,
        by_url_limit: int,
        upload_limit: int,
        kind: str,
    ) -> bytes:
        """The bytes of a sent file: uploaded (`attach://` or the field itself), or fetched
        from its URL the way Telegram's servers do, within Telegram's limits."""
        if isinstance(media, str) and media.startswith("attach://"):
            content = files.get(media.removeprefix("attach://"))
            if content is None:
                raise bad_request("wrong file identifier/HTTP URL specified")
        elif isinstance(media, bytes):
            content = media
        elif isinstance(media, str) and media.startswith(("http://", "https://")):
            return await self._fetch(media, limit=by_url_limit, kind=kind)
        elif isinstance(media, str) and media in self._files:
            return self._files[media]
        else:
            raise bad_request("wrong file identifier/HTTP URL specified")
        if len(content) > upload_limit:
            raise ApiError(413, "Request Entity Too Large")
        return content

    async def _photo(self, media: Any, files: dict[str, bytes]) -> list[dict[str, Any]]:
        content = await self._content(
            media,
            files,
            by_url_limit=MAX_URL_PHOTO_BYTES,
            upload_limit=MAX_UPLOAD_PHOTO_BYTES,
            kind="image/",
        )
        if not content.startswith((b"\x89PNG", b"\xff\xd8\xff", b"RIFF")):
            raise bad_request("IMAGE_PROCESS_FAILED")
        return [self._keep_file(content, "photo", width=64, height=64)]

    def _keep_file(self, content: bytes, prefix: str, **extra: Any) -> dict[str, Any]:
        number = next(self._file_ids)
        file_id = f"{prefix}-{number}"
        self._files[file_id] = content
        return {
            "file_id": file_id,
            "file_unique_id": f"u{number}",
            "file_size": len(content),
            **extra,
        }

    async def _fetch(self, url: str, *, limit: int, kind: str) -> bytes:
        """Fetch a URL the way Telegram's servers do: within `limit`, of the right type."""
        try:
            async with self._fetcher.stream("GET", url) as response:
                if response.status_code != 200:
                    raise bad_request("wrong file identifier/HTTP URL specified")
                if not response.headers.get("content-type", "").startswith(kind):
                    raise bad_request("wrong type of the web page content")
                content = b""
                async for chunk in response.aiter_bytes():
                    content += chunk
                    if len(content) > limit:
                        raise bad_request("failed to get HTTP URL content")
                return content
        except httpx.HTTPError as error:
            raise bad_request("failed to get HTTP URL content") from error

    def _allowed_updates(self, params: dict[str, Any]) -> None:
        """As Telegram does: a list given is kept until another replaces it."""
        allowed = _json(params, "allowed_updates")
        if allowed is not None:
            self.allowed_updates = frozenset(allowed) or _DEFAULT_UPDATES

    def _take_message_id(self, chat_id: int) -> int:
        number = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = number + 1
        return number

    def _store(self, chat_id: int, message: dict[str, Any], *, from_bot: bool) -> None:
        self._messages[(chat_id, message["message_id"])] = StoredMessage(
            chat_id, message["message_id"], from_bot, message
        )

    def deliver_again(self, message: dict[str, Any]) -> None:
        """The update of a message the bot got once, once more: Telegram delivers an update
        again when its webhook request was not answered (the bot died before answering)."""
        self._push({"message": message})

    def _push(self, update: dict[str, Any]) -> None:
        update["update_id"] = next(self._update_ids)
        self._updates.append(update)
        self._new_update.set()


# --- request parsing ------------------------------------------------------------------------


async def _read_params(request: Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Parameters the way the Bot API takes them: query string, form, multipart or JSON."""
    params: dict[str, Any] = dict(request.query_params)
    files: dict[str, bytes] = {}
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        params.update(await request.json())
    elif content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form(max_part_size=50 * 1024 * 1024)
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                files[key] = await value.read()
            else:
                params[key] = value
    for key, content in files.items():
        # A file sent directly as the parameter (sendPhoto photo=<file>).
        params.setdefault(key, content)
    return params, files


def _int(params: dict[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"invalid {name} specified") from None


def _json(params: dict[str, Any], name: str, *, required: bool = False) -> Any:
    value = params.get(name)
    if value is None:
        if required:
            raise bad_request(f"parameter {name} is required")
        return None
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(f"can't parse {name} JSON object") from None
    return value


def _parse_text(params: dict[str, Any], name: str) -> Parsed:
    raw = params.get(name)
    if not isinstance(raw, str) or not raw:
        raise bad_request("message text is empty")
    return _parse(raw, params.get("parse_mode"))


def _parse_caption(source: dict[str, Any]) -> Parsed | None:
    raw = source.get("caption")
    if raw is None:
        return None
    parsed = _parse(str(raw), source.get("parse_mode"))
    if utf16_len(parsed.text) > 1024:
        raise bad_request("message caption is too long")
    return parsed


def _parse(raw: str, parse_mode: str | None) -> Parsed:
    if parse_mode is None or parse_mode == "":
        return Parsed(raw, [])
    if parse_mode != "HTML":
        raise bad_request(f"unsupported parse_mode {parse_mode!r} in this test server")
    try:
        return parse_html(raw)
    except HtmlError as error:
        raise bad_request(str(error)) from None
