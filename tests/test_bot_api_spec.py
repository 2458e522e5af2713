"""The Telegram test server's Bot API checker, on calls as form or JSON bodies bring them."""

from __future__ import annotations

import json
from typing import Any

from fakes.bot_api_spec import check_call


def keyboard(*buttons: dict[str, object]) -> str:
    return json.dumps({"inline_keyboard": [list(buttons)]})


def test_form_send_message_is_valid() -> None:
    params = {
        "chat_id": "42",
        "text": "<b>hi</b>",
        "parse_mode": "HTML",
        "disable_notification": "true",
        "message_thread_id": "7",
        "reply_markup": keyboard({"text": "Go", "callback_data": "go"}, {"text": "u", "url": "x"}),
    }
    assert check_call("sendMessage", params, {}) == []
    assert check_call("sendmessage", params, {}) == []


def test_json_send_message_is_valid() -> None:
    params = {"chat_id": 42, "text": "hi", "reply_markup": {"inline_keyboard": [[]]}}
    assert check_call("sendMessage", params, {}) == []


def test_media_group_with_attachments_is_valid() -> None:
    media = [
        {"type": "photo", "media": "attach://one", "caption": "<i>a</i>", "parse_mode": "HTML"},
        {"type": "photo", "media": "AgACAgIAAxkBAAI"},
        {"type": "video", "media": "attach://two", "width": 640, "supports_streaming": True},
    ]
    files = {"one": b"\x89PNG", "two": b"\x00\x00"}
    params = {"chat_id": "-100123", "media": json.dumps(media), **files}
    assert check_call("sendMediaGroup", params, files) == []


def test_media_group_item_problems_name_the_item() -> None:
    media = [{"type": "photo", "media": "x"}, {"type": "photo"}, {"type": "gif", "media": "x"}]
    assert check_call("sendMediaGroup", {"chat_id": "1", "media": json.dumps(media)}, {}) == [
        "sendMediaGroup: media[1].media: missing required field",
        "sendMediaGroup: media[2].type: expected one of 'audio', 'document', 'live_photo', "
        "'photo', 'video', got str 'gif'",
    ]


def test_upload_as_the_parameter_itself() -> None:
    files = {"photo": b"\xff\xd8"}
    assert check_call("sendPhoto", {"chat_id": "1", **files}, files) == []
    assert check_call("sendPhoto", {"chat_id": "1", "photo": "AgAD"}, {}) == []


def test_parse_mode_beside_edited_media_is_unknown() -> None:
    media = json.dumps({"type": "photo", "media": "attach://p", "parse_mode": "HTML"})
    params = {"chat_id": "1", "message_id": "2", "media": media, "parse_mode": "HTML"}
    assert check_call("editMessageMedia", params, {"p": b"img"}) == [
        "editMessageMedia: unknown parameter 'parse_mode'"
    ]


def test_nested_unknown_field() -> None:
    media = json.dumps({"type": "document", "media": "x", "spoiler": True})
    assert check_call("editMessageMedia", {"inline_message_id": "i", "media": media}, {}) == [
        "editMessageMedia: media.spoiler: unknown field"
    ]


def test_send_invoice_has_no_parse_mode_and_needs_prices() -> None:
    params = {
        "chat_id": "1",
        "title": "Credits",
        "description": "<b>100</b> credits",
        "payload": "p",
        "currency": "XTR",
        "parse_mode": "HTML",
    }
    assert check_call("sendInvoice", params, {}) == [
        "sendInvoice: unknown parameter 'parse_mode'",
        "sendInvoice: missing required parameter 'prices'",
    ]
    del params["parse_mode"]
    params["prices"] = json.dumps([{"label": "100", "amount": 50}])
    assert check_call("sendInvoice", params, {}) == []


def test_missing_required_parameter() -> None:
    assert check_call("sendMessage", {"text": "hi"}, {}) == [
        "sendMessage: missing required parameter 'chat_id'"
    ]


def test_wrong_types() -> None:
    assert check_call("sendMessage", {"chat_id": [1], "text": "hi"}, {}) == [
        "sendMessage: chat_id: expected Integer or String, got list"
    ]
    assert check_call("deleteMessage", {"chat_id": "1", "message_id": "abc"}, {}) == [
        "deleteMessage: message_id: expected Integer, got str 'abc'"
    ]
    assert check_call("deleteMessage", {"chat_id": 1, "message_id": None}, {}) == [
        "deleteMessage: message_id: expected Integer, got null"
    ]
    assert check_call("sendMessage", {"chat_id": 1, "text": "x", "protect_content": "1"}, {}) == [
        "sendMessage: protect_content: expected Boolean, got str '1'"
    ]
    assert check_call("sendMessage", {"chat_id": 1, "text": "x", "reply_markup": "{"}, {}) == [
        "sendMessage: reply_markup: expected InlineKeyboardMarkup or ReplyKeyboardMarkup or "
        "ReplyKeyboardRemove or ForceReply, got str '{'"
    ]


def test_json_inside_objects_is_strict() -> None:
    markup = keyboard({"text": "a", "callback_data": "a", "pay": "true"})
    assert check_call("sendMessage", {"chat_id": 1, "text": "x", "reply_markup": markup}, {}) == [
        "sendMessage: reply_markup.inline_keyboard[0][0].pay: expected Boolean, got str 'true'"
    ]


def test_keyboard_button_with_unknown_field() -> None:
    markup = keyboard({"text": "ok", "callback_data": "ok"}, {"text": "a", "callback": "a"})
    params = {"chat_id": "1", "message_id": "2", "reply_markup": markup}
    assert check_call("editMessageReplyMarkup", params, {}) == [
        "editMessageReplyMarkup: reply_markup.inline_keyboard[0][1].callback: unknown field"
    ]


def test_answer_inline_query_with_cached_photo_and_article() -> None:
    results: list[dict[str, Any]] = [
        {"type": "photo", "id": "1", "photo_file_id": "AgAD", "caption": "c"},
        {"type": "photo", "id": "2", "photo_url": "https://x/p.jpg", "thumbnail_url": "t"},
        {
            "type": "article",
            "id": "3",
            "title": "Help",
            "input_message_content": {"message_text": "<b>help</b>", "parse_mode": "HTML"},
        },
    ]
    params = {"inline_query_id": "q", "results": json.dumps(results), "cache_time": "0"}
    assert check_call("answerInlineQuery", params, {}) == []

    results[2]["input_message_content"] = {"text": "help"}
    assert check_call("answerInlineQuery", {**params, "results": json.dumps(results)}, {}) == [
        "answerInlineQuery: results[2].input_message_content.text: unknown field",
        "answerInlineQuery: results[2].input_message_content.message_text: missing required field",
    ]


def test_set_my_commands_with_a_scope() -> None:
    commands = json.dumps([{"command": "start", "description": "Start"}])
    scope = json.dumps({"type": "chat", "chat_id": -100})
    assert check_call("setMyCommands", {"commands": commands, "scope": scope}, {}) == []
    assert check_call("setMyCommands", {"commands": commands, "scope": '{"type": "chat"}'}, {}) == [
        "setMyCommands: scope.chat_id: missing required field"
    ]
    scope = json.dumps({"type": "everyone"})
    assert check_call("setMyCommands", {"commands": commands, "scope": scope}, {}) == [
        "setMyCommands: scope.type: expected one of 'default', 'all_private_chats', "
        "'all_group_chats', 'all_chat_administrators', 'chat', 'chat_administrators', "
        "'chat_member', got str 'everyone'"
    ]


def test_unknown_method_and_parameter() -> None:
    assert check_call("sendMesage", {"chat_id": "1"}, {}) == ["sendMesage: unknown method"]
    assert check_call("getMe", {"foo": "1"}, {}) == ["getMe: unknown parameter 'foo'"]
