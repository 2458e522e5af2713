"""Every user-facing string, in English and Russian.

Messages are Telegram HTML. `text()` escapes every parameter it substitutes, so user
text (prompts, upstream error messages) can never break the markup or inject tags.
"""

from __future__ import annotations

import html
from enum import StrEnum
from typing import Final


class Lang(StrEnum):
    EN = "en"
    RU = "ru"


def language_for(language_code: str | None) -> Lang:
    """The catalog language for a Telegram user's `language_code` (IETF tag)."""
    if language_code and language_code.lower().split("-")[0] == "ru":
        return Lang.RU
    return Lang.EN


_MESSAGES: Final[dict[str, dict[Lang, str]]] = {
    "help": {
        Lang.EN: (
            "<b>Grok Imagine in Telegram</b>\n\n"
            "/imagine <i>prompt</i> makes six images from your words.\n"
            "Add <code>--ar</code> to pick the shape: "
            "<code>1:1</code> (default), <code>2:3</code>, <code>3:2</code>, "
            "<code>16:9</code>, <code>9:16</code>.\n\n"
            "Examples:\n"
            "<code>/imagine a red fox in snow --ar 3:2</code>\n"
            "<code>/imagine neon city at night, rain, cinematic --ar 9:16</code>\n\n"
            "Under the images, 🎬 animates one (pick a mode, add a motion prompt if you like) "
            "and 🔁 makes a new set from the same prompt.\n\n"
            "/video <i>prompt</i> makes a video: <code>/video waves at sunset --ar 16:9</code>\n"
            "/animate as a reply to an image (yours or mine), or as a photo's caption, "
            "animates it.\n"
            "/upscale as a reply to a video or image I made improves it.\n\n"
            "/cancel cancels your request that is still waiting in line.\n"
            "/history lists what you made in this chat; choose one to get it again, free.\n"
            "/quota shows this chat's credits and what things cost.\n"
            "/settings changes how the bot behaves in this chat."
        ),
        Lang.RU: (
            "<b>Grok Imagine в Telegram</b>\n\n"
            "/imagine <i>описание</i> — шесть картинок по вашему описанию.\n"
            "Формат задаётся через <code>--ar</code>: "
            "<code>1:1</code> (по умолчанию), <code>2:3</code>, <code>3:2</code>, "
            "<code>16:9</code>, <code>9:16</code>.\n\n"
            "Примеры:\n"
            "<code>/imagine рыжая лиса в снегу --ar 3:2</code>\n"
            "<code>/imagine неоновый город ночью, дождь, кино --ar 9:16</code>\n\n"
            "Под картинками 🎬 оживляет картинку (выберите режим и, если хотите, опишите "
            "движение), а 🔁 делает новый набор по тому же описанию.\n\n"
            "/video <i>описание</i> — видео: <code>/video волны на закате --ar 16:9</code>\n"
            "/animate ответом на картинку (вашу или мою) или подписью к фото оживляет её.\n"
            "/upscale ответом на моё видео или картинку улучшает качество.\n\n"
            "/cancel — отменить ваш запрос, пока он ждёт в очереди.\n"
            "/history — что вы сделали в этом чате; выберите, и оно придёт снова, бесплатно.\n"
            "/quota — кредиты чата и цены.\n"
            "/settings — настройки бота в этом чате."
        ),
    },
    "command.imagine": {
        Lang.EN: "Make images from a prompt",
        Lang.RU: "Картинки по описанию",
    },
    "command.help": {
        Lang.EN: "How to use the bot",
        Lang.RU: "Как пользоваться ботом",
    },
    "error.empty_prompt": {
        Lang.EN: (
            "Tell me what to draw after the command, for example:\n"
            "<code>/imagine a red fox in snow --ar 3:2</code>"
        ),
        Lang.RU: (
            "Напишите после команды, что нарисовать, например:\n"
            "<code>/imagine рыжая лиса в снегу --ar 3:2</code>"
        ),
    },
    "error.prompt_too_long": {
        Lang.EN: "The prompt is {length} characters long; the limit is {limit}. Please shorten it.",
        Lang.RU: "В описании {length} символов, а можно не больше {limit}. Сократите его.",
    },
    "error.bad_ratio": {
        Lang.EN: "Unknown aspect ratio <code>{value}</code>. Use one of: {allowed}.",
        Lang.RU: "Неизвестный формат <code>{value}</code>. Доступны: {allowed}.",
    },
    "error.missing_ratio": {
        Lang.EN: "<code>--ar</code> needs a value, for example <code>--ar 3:2</code>. "
        "Use one of: {allowed}.",
        Lang.RU: "После <code>--ar</code> укажите формат, например <code>--ar 3:2</code>. "
        "Доступны: {allowed}.",
    },
    "error.repeated_ratio": {
        Lang.EN: "Give <code>--ar</code> only once.",
        Lang.RU: "Укажите <code>--ar</code> только один раз.",
    },
    "status.queued": {
        Lang.EN: "⏳ Generating… queued, {elapsed} s",
        Lang.RU: "⏳ Генерирую… в очереди, {elapsed} с",
    },
    "status.working": {
        Lang.EN: "🎨 Generating… working, {elapsed} s",
        Lang.RU: "🎨 Генерирую… рисую, {elapsed} с",
    },
    "status.sending": {
        Lang.EN: "📤 Sending the images…",
        Lang.RU: "📤 Отправляю картинки…",
    },
    "result.caption": {
        Lang.EN: "{prompt}",
        Lang.RU: "{prompt}",
    },
    "result.buttons": {
        Lang.EN: "🎬 animates an image, 🔁 makes a new set. Aspect ratio {ratio}.",
        Lang.RU: "🎬 оживляет картинку, 🔁 делает новый набор. Формат {ratio}.",
    },
    "failure.generation": {
        Lang.EN: "😔 Could not make {what}: {reason}\nTry again or change the prompt.",
        Lang.RU: "😔 Не удалось создать {what}: {reason}\n"
        "Попробуйте ещё раз или измените описание.",
    },
    "failure.generation_no_reason": {
        Lang.EN: "😔 Could not make {what}. Try again or change the prompt.",
        Lang.RU: "😔 Не удалось создать {what}. Попробуйте ещё раз или измените описание.",
    },
    "failure.rejected": {
        Lang.EN: "🚫 The service refused to make {what}: {reason}",
        Lang.RU: "🚫 Сервис отказался создавать {what}: {reason}",
    },
    "failure.timeout": {
        Lang.EN: "⌛ The service took too long to make {what}, and the request was dropped. "
        "Please try again.",
        Lang.RU: "⌛ Сервис слишком долго создавал {what}, запрос отменён. Попробуйте ещё раз.",
    },
    "failure.unavailable": {
        Lang.EN: "🛠 Could not make {what}: the service is temporarily unavailable. "
        "Please try again later.",
        Lang.RU: "🛠 Не удалось создать {what}: сервис временно недоступен. Попробуйте позже.",
    },
    "failure.delivery": {
        Lang.EN: "😔 Could not send {what} here. Please try again.",
        Lang.RU: "😔 Не удалось отправить сюда {what}. Попробуйте ещё раз.",
    },
    "failure.interrupted": {
        Lang.EN: "😔 The bot restarted while this request was being sent, so it could not make "
        "{what}. Please try again.",
        Lang.RU: "😔 Бот перезапустился во время отправки запроса, поэтому не удалось создать "
        "{what}. Попробуйте ещё раз.",
    },
    # What a failure notice names (the object of "could not make …"; Russian: accusative).
    "failure.what.text_to_image": {Lang.EN: "the images", Lang.RU: "картинки"},
    "failure.what.text_to_video": {Lang.EN: "the video", Lang.RU: "видео"},
    "failure.what.image_to_video": {Lang.EN: "the animation", Lang.RU: "анимацию"},
    "failure.what.upscale": {Lang.EN: "the upscaled version", Lang.RU: "увеличенную версию"},
    "button.unknown": {
        Lang.EN: "This button is no longer valid.",
        Lang.RU: "Эта кнопка больше не работает.",
    },
    "button.reroll_started": {
        Lang.EN: "🔁 Making a new set…",
        Lang.RU: "🔁 Делаю новый набор…",
    },
    "failure.refunded": {
        Lang.EN: "💳 The {cost} credits were returned.",
        Lang.RU: "💳 {cost} кредитов возвращены.",
    },
    "button.not_yours": {
        Lang.EN: "Only the person who asked, or a chat admin, can use these buttons.",
        Lang.RU: "Этими кнопками может пользоваться только автор запроса или админ чата.",
    },
    "command.quota": {
        Lang.EN: "Credits left and costs",
        Lang.RU: "Остаток кредитов и цены",
    },
    "command.settings": {
        Lang.EN: "Chat settings",
        Lang.RU: "Настройки чата",
    },
    "duration.hours": {
        Lang.EN: "{hours} h {minutes} min",
        Lang.RU: "{hours} ч {minutes} мин",
    },
    "duration.minutes": {
        Lang.EN: "{minutes} min",
        Lang.RU: "{minutes} мин",
    },
    "quota.summary": {
        Lang.EN: "💳 <b>Credits in this chat</b>\n"
        "Today: {daily_left} of {daily_limit} left\n"
        "Granted: {granted}\n"
        "{purchased_line}"
        "{user_line}"
        "/imagine costs {cost_image}.\n"
        "Daily credits renew in {renews_in} (00:00 UTC).",
        Lang.RU: "💳 <b>Кредиты этого чата</b>\n"
        "Сегодня: осталось {daily_left} из {daily_limit}\n"
        "Подарено: {granted}\n"
        "{purchased_line}"
        "{user_line}"
        "/imagine стоит {cost_image}.\n"
        "Дневные кредиты обновятся через {renews_in} (00:00 UTC).",
    },
    "quota.purchased_line": {
        Lang.EN: "Purchased: {purchased}\n",
        Lang.RU: "Куплено: {purchased}\n",
    },
    "quota.buyers_line": {
        Lang.EN: "Bought by: {buyers}\n",
        Lang.RU: "Купили: {buyers}\n",
    },
    "quota.user_line": {
        Lang.EN: "Your share today: {user_left} of {user_cap} left\n",
        Lang.RU: "Ваша доля сегодня: осталось {user_left} из {user_cap}\n",
    },
    "quota.out_of_credits": {
        Lang.EN: "💳 Not enough credits: /imagine costs {cost}, and this chat has {available} "
        "left ({daily_left} of today's {daily_limit}, {granted} granted, {purchased} purchased). "
        "Daily credits renew in {renews_in} (00:00 UTC).{buy_hint}",
        Lang.RU: "💳 Недостаточно кредитов: /imagine стоит {cost}, а у чата осталось {available} "
        "({daily_left} из дневных {daily_limit}, подарено {granted}, куплено {purchased}). "
        "Дневные кредиты обновятся через {renews_in} (00:00 UTC).{buy_hint}",
    },
    "line.too_long": {
        Lang.EN: "⏳ The line is long right now: a new request would wait about {wait}. "
        "Nothing was charged; please try again a little later.",
        Lang.RU: "⏳ Сейчас длинная очередь: новый запрос ждал бы около {wait}. "
        "Ничего не списано; попробуйте чуть позже.",
    },
    "quota.user_cap_reached": {
        Lang.EN: "💳 You have used your share for today in this group: {user_left} of "
        "{user_cap} credits left, and /imagine costs {cost}. It renews in {renews_in} (00:00 UTC).",
        Lang.RU: "💳 Вы израсходовали свою долю в этой группе на сегодня: осталось {user_left} "
        "из {user_cap}, а /imagine стоит {cost}. Обновится через {renews_in} (00:00 UTC).",
    },
    "admin.granted": {
        Lang.EN: "✅ Granted {amount} credits to chat {chat}. Its granted credits: {granted}.",
        Lang.RU: "✅ Чату {chat} подарено {amount} кредитов. Подаренных всего: {granted}.",
    },
    "admin.quota_set": {
        Lang.EN: "✅ Chat {chat} now gets {daily} credits a day.",
        Lang.RU: "✅ Чат {chat} теперь получает {daily} кредитов в день.",
    },
    "admin.usage_grant": {
        Lang.EN: "Usage: <code>/grant &lt;chat id|here&gt; &lt;credits&gt;</code>, "
        "credits from 1 to 1000000.",
        Lang.RU: "Формат: <code>/grant &lt;id чата|here&gt; &lt;кредиты&gt;</code>, "
        "от 1 до 1000000.",
    },
    "admin.usage_setquota": {
        Lang.EN: "Usage: <code>/setquota &lt;chat id|here&gt; &lt;daily credits&gt;</code>, "
        "from 0 to 1000000.",
        Lang.RU: "Формат: <code>/setquota &lt;id чата|here&gt; &lt;кредитов в день&gt;</code>, "
        "от 0 до 1000000.",
    },
    "admin.balance": {
        Lang.EN: "🏦 <b>Upstream accounts</b>\n{accounts}",
        Lang.RU: "🏦 <b>Счета у поставщиков</b>\n{accounts}",
    },
    "admin.balance_line": {
        Lang.EN: "{mark} <b>{account}</b> ({provider}): {balance} · {state}",
        Lang.RU: "{mark} <b>{account}</b> ({provider}): {balance} · {state}",
    },
    "admin.balance_credits": {
        Lang.EN: "{credits} credits",
        Lang.RU: "{credits} кредитов",
    },
    "admin.balance_failed": {
        Lang.EN: "balance unknown ({reason})",
        Lang.RU: "баланс неизвестен ({reason})",
    },
    "admin.account_closed": {
        Lang.EN: "in rotation, {running} running",
        Lang.RU: "в работе, выполняется {running}",
    },
    "admin.account_open": {
        Lang.EN: "out of rotation for {seconds} s more: {reason}",
        Lang.RU: "вне работы ещё {seconds} с: {reason}",
    },
    "admin.account_half_open": {
        Lang.EN: "being probed after an outage: {reason}",
        Lang.RU: "проверяется после сбоя: {reason}",
    },
    "admin.stats": {
        Lang.EN: "📊 <b>The last {days} days (UTC)</b>\n<pre>{table}</pre>\n"
        "<b>Top chats</b>\n<pre>{top}</pre>\n<b>Tasks per account</b>\n<pre>{accounts}</pre>",
        Lang.RU: "📊 <b>Последние {days} дней (UTC)</b>\n<pre>{table}</pre>\n"
        "<b>Самые активные чаты</b>\n<pre>{top}</pre>\n"
        "<b>Задачи по счетам</b>\n<pre>{accounts}</pre>",
    },
    "admin.stats_empty": {
        Lang.EN: "nothing yet",
        Lang.RU: "пока пусто",
    },
    "settings.title": {
        Lang.EN: "⚙️ <b>Settings for this chat</b>\nIn groups only admins can change them.",
        Lang.RU: "⚙️ <b>Настройки чата</b>\nВ группах менять их могут только админы.",
    },
    "settings.buttons_requester": {
        Lang.EN: "🔘 Result buttons: the requester and admins",
        Lang.RU: "🔘 Кнопки под результатом: автор и админы",
    },
    "settings.buttons_everyone": {
        Lang.EN: "🔘 Result buttons: everyone",
        Lang.RU: "🔘 Кнопки под результатом: все",
    },
    "settings.spicy_on": {
        Lang.EN: "🌶 Spicy mode: allowed",
        Lang.RU: "🌶 Режим spicy: разрешён",
    },
    "settings.spicy_off": {
        Lang.EN: "🌶 Spicy mode: off",
        Lang.RU: "🌶 Режим spicy: выключен",
    },
    "settings.spicy_disabled": {
        Lang.EN: "🌶 Spicy mode: off on this bot",
        Lang.RU: "🌶 Режим spicy: выключен в этом боте",
    },
    "settings.ratio": {
        Lang.EN: "📐 Default ratio: {ratio}",
        Lang.RU: "📐 Формат по умолчанию: {ratio}",
    },
    "settings.cap": {
        Lang.EN: "👤 Per-member daily cap: {cap}",
        Lang.RU: "👤 Лимит участника в день: {cap}",
    },
    "settings.cap_none": {
        Lang.EN: "👤 Per-member daily cap: none",
        Lang.RU: "👤 Лимит участника в день: нет",
    },
    "settings.only_admins": {
        Lang.EN: "Only chat admins can change the settings.",
        Lang.RU: "Менять настройки могут только админы чата.",
    },
    "settings.spicy_unavailable": {
        Lang.EN: "Spicy mode is turned off on this bot.",
        Lang.RU: "Режим spicy выключен в этом боте.",
    },
    "settings.saved": {
        Lang.EN: "Saved.",
        Lang.RU: "Сохранено.",
    },
    "delivery.links": {
        Lang.EN: "📎 Too large to send through Telegram, so here are links "
        "(valid about a day):\n{items}",
        Lang.RU: "📎 Слишком большие файлы для Telegram, вот ссылки "
        "(работают около суток):\n{items}",
    },
    "delivery.link": {
        Lang.EN: "{link}: {size} MB",
        Lang.RU: "{link}: {size} МБ",
    },
    "button.upscale": {
        Lang.EN: "⬆ Upscale",
        Lang.RU: "⬆ Улучшить",
    },
    "button.again": {
        Lang.EN: "🔁 Again",
        Lang.RU: "🔁 Ещё раз",
    },
    "command.video": {
        Lang.EN: "Make a video from a prompt",
        Lang.RU: "Видео по описанию",
    },
    "command.animate": {
        Lang.EN: "Animate an image (reply or caption)",
        Lang.RU: "Оживить картинку (ответом или подписью)",
    },
    "command.upscale": {
        Lang.EN: "Upscale a result (reply to it)",
        Lang.RU: "Улучшить результат (ответом)",
    },
    "mode.fun": {Lang.EN: "😄 Fun", Lang.RU: "😄 Весёлый"},
    "mode.normal": {Lang.EN: "🎞 Normal", Lang.RU: "🎞 Обычный"},
    "mode.spicy": {Lang.EN: "🌶 Spicy", Lang.RU: "🌶 Spicy"},
    "button.no_prompt": {Lang.EN: "▶ No prompt", Lang.RU: "▶ Без описания"},
    "animate.subject_image": {
        Lang.EN: "image {index}",
        Lang.RU: "картинку {index}",
    },
    "animate.subject_photo": {
        Lang.EN: "your photo",
        Lang.RU: "ваше фото",
    },
    "animate.prompt_line": {
        Lang.EN: "\nMotion: <i>{prompt}</i>",
        Lang.RU: "\nДвижение: <i>{prompt}</i>",
    },
    "animate.choose_mode": {
        Lang.EN: "🎬 Animating {subject}. Pick a mode to start.\n"
        "<i>To describe the motion, reply to this message first, or use "
        "<code>/animate your prompt</code>.</i>",
        Lang.RU: "🎬 Оживляю {subject}. Выберите режим, чтобы начать.\n"
        "<i>Чтобы описать движение, сначала ответьте на это сообщение или используйте "
        "<code>/animate описание</code>.</i>",
    },
    "animate.choose_mode_prompted": {
        Lang.EN: "🎬 Animating {subject}.{prompt_line}\nPick a mode to start.",
        Lang.RU: "🎬 Оживляю {subject}.{prompt_line}\nВыберите режим, чтобы начать.",
    },
    "animate.started": {
        Lang.EN: "🎬 Animating {subject}, mode {mode}.{prompt_line}",
        Lang.RU: "🎬 Оживляю {subject}, режим {mode}.{prompt_line}",
    },
    "animate.already_open": {
        Lang.EN: "The choice for this image is waiting above.",
        Lang.RU: "Выбор для этой картинки ждёт выше.",
    },
    "animate.used": {
        Lang.EN: "This animation has already started.",
        Lang.RU: "Это оживление уже запущено.",
    },
    "animate.spicy_unavailable": {
        Lang.EN: "Spicy mode is not available here.",
        Lang.RU: "Режим spicy здесь недоступен.",
    },
    "animate.usage": {
        Lang.EN: "Reply <code>/animate</code> to one of my images or to a photo, or send a photo "
        "with <code>/animate</code> as its caption. A motion prompt may follow the command.",
        Lang.RU: "Ответьте <code>/animate</code> на мою картинку или на фото, или пришлите фото "
        "с подписью <code>/animate</code>. После команды можно описать движение.",
    },
    "animate.bad_type": {
        Lang.EN: "I can animate JPEG, PNG or WEBP images only.",
        Lang.RU: "Оживить можно только картинки JPEG, PNG или WEBP.",
    },
    "animate.too_large": {
        Lang.EN: "That image is {size} MB; the limit is 10 MB.",
        Lang.RU: "Это изображение весит {size} МБ, а можно не больше 10 МБ.",
    },
    "animate.own_unavailable": {
        Lang.EN: "Animating your own photos is not available on this bot.",
        Lang.RU: "Оживлять свои фото в этом боте нельзя.",
    },
    "animate.download_failed": {
        Lang.EN: "I could not get that photo. Please send it again.",
        Lang.RU: "Не удалось получить это фото. Пришлите его ещё раз.",
    },
    "video.empty_prompt": {
        Lang.EN: "Tell me what the video should show, for example:\n"
        "<code>/video a red fox running through snow --ar 16:9</code>",
        Lang.RU: "Напишите, что должно быть в видео, например:\n"
        "<code>/video рыжая лиса бежит по снегу --ar 16:9</code>",
    },
    "upscale.usage": {
        Lang.EN: "Reply <code>/upscale</code> to a video or an image I made.",
        Lang.RU: "Ответьте <code>/upscale</code> на видео или картинку, которые я сделал.",
    },
    "alert.out_of_credits": {
        Lang.EN: "⚠️ The {account} account is out of credits and out of rotation: its tasks "
        "go to the other accounts, and where none can take them users get their credits back. "
        "Top it up; /balance shows where it stands.",
        Lang.RU: "⚠️ На счёте {account} закончились кредиты, он выведен из работы: его задачи "
        "идут на другие счета, а где их некому взять, пользователям возвращаются кредиты. "
        "Пополните счёт; /balance покажет остаток.",
    },
    "alert.account_down": {
        Lang.EN: "⚠️ The {account} account is out of rotation: {reason}. Its tasks go to the "
        "other accounts; it is tried again after a cool-down. /balance shows where it stands.",
        Lang.RU: "⚠️ Счёт {account} выведен из работы: {reason}. Его задачи идут на другие "
        "счета; после паузы его попробуют снова. /balance покажет состояние.",
    },
    "alert.account_back": {
        Lang.EN: "✅ The {account} account is back in rotation.",
        Lang.RU: "✅ Счёт {account} снова в работе.",
    },
    "error.ratio_unsupported": {
        Lang.EN: "This service picks the shape itself; leave out <code>--ar</code>.",
        Lang.RU: "Этот сервис сам выбирает формат; уберите <code>--ar</code>.",
    },
    "unavailable.images": {
        Lang.EN: "Images are not available with this bot's service. "
        "Try /video for a video, or /animate on a photo of yours.",
        Lang.RU: "Картинки недоступны у сервиса этого бота. "
        "Попробуйте /video для видео или /animate на вашем фото.",
    },
    "unavailable.video": {
        Lang.EN: "Videos are not available with this bot's service.",
        Lang.RU: "Видео недоступны у сервиса этого бота.",
    },
    "unavailable.animate": {
        Lang.EN: "Animation is not available with this bot's service.",
        Lang.RU: "Оживление недоступно у сервиса этого бота.",
    },
    "unavailable.upscale": {
        Lang.EN: "Upscaling is not available with this bot's service.",
        Lang.RU: "Улучшение качества недоступно у сервиса этого бота.",
    },
    "animate.ask_prompt_no_mode": {
        Lang.EN: "🎬 Animating {subject}.\n"
        "Reply to this message with how it should move, or press “No prompt”.",
        Lang.RU: "🎬 Оживляю {subject}.\n"
        "Ответьте на это сообщение, как всё должно двигаться, или нажмите «Без описания».",
    },
    "animate.ready": {
        Lang.EN: "🎬 Animating {subject}.{prompt_line}",
        Lang.RU: "🎬 Оживляю {subject}.{prompt_line}",
    },
    "button.start": {Lang.EN: "▶ Start", Lang.RU: "▶ Начать"},
    "status.in_line": {
        Lang.EN: "⏳ Waiting in line: number {place}",
        Lang.RU: "⏳ В очереди: номер {place}",
    },
    "status.in_line_wait": {
        Lang.EN: "⏳ Waiting in line: number {place}, about {wait}",
        Lang.RU: "⏳ В очереди: номер {place}, примерно {wait}",
    },
    "status.outage": {
        Lang.EN: "⏳ The service is not answering right now. Your request waits for it, "
        "up to {minutes} min; if it does not come back by then, your credits are returned.",
        Lang.RU: "⏳ Сервис сейчас не отвечает. Запрос ждёт его до {minutes} мин.; "
        "если он не вернётся, кредиты вернутся вам.",
    },
    "failure.cancelled": {
        Lang.EN: "✖ Cancelled.",
        Lang.RU: "✖ Отменено.",
    },
    "cancel.nothing": {
        Lang.EN: "There is nothing of yours waiting in line here.",
        Lang.RU: "Здесь нет ваших запросов в очереди.",
    },
    "cancel.too_late": {
        Lang.EN: "It is already being made and can no longer be cancelled.",
        Lang.RU: "Это уже делается, отменить нельзя.",
    },
    "help.inline": {
        Lang.EN: "\n\n✨ In any chat, type <code>@{bot} a red fox in snow</code> and choose "
        "“Create”: the picture appears right there, paid from your own credits. Your earlier "
        "sets that match are offered too, free.",
        Lang.RU: "\n\n✨ В любом чате напишите <code>@{bot} рыжая лиса в снегу</code> и выберите "
        "«Создать»: картинка появится прямо там, за ваши кредиты. Подходящие прежние наборы "
        "тоже предлагаются, бесплатно.",
    },
    "help.shop": {
        Lang.EN: "\n\n⭐ /buy credits for Telegram Stars; they never expire. "
        "/paysupport for help with a payment, /terms for the terms of sale.",
        Lang.RU: "\n\n⭐ /buy — купить кредиты за Telegram Stars, они не сгорают. "
        "/paysupport — помощь с оплатой, /terms — условия продажи.",
    },
    "command.buy": {
        Lang.EN: "Buy credits for Telegram Stars",
        Lang.RU: "Купить кредиты за Telegram Stars",
    },
    "command.paysupport": {
        Lang.EN: "Help with a payment",
        Lang.RU: "Помощь с оплатой",
    },
    "command.terms": {
        Lang.EN: "Terms of sale",
        Lang.RU: "Условия продажи",
    },
    "shop.closed": {
        Lang.EN: "Credits are not for sale in this bot. Its operator can grant them.",
        Lang.RU: "В этом боте кредиты не продаются. Их может подарить оператор бота.",
    },
    "shop.menu_private": {
        Lang.EN: "⭐ <b>Buy credits</b> for yourself, with Telegram Stars.\n"
        "Purchased credits never expire; /imagine costs {cost}.\n\n{packs}",
        Lang.RU: "⭐ <b>Купить кредиты</b> себе за Telegram Stars.\n"
        "Купленные кредиты не сгорают; /imagine стоит {cost}.\n\n{packs}",
    },
    "shop.menu_group": {
        Lang.EN: "⭐ <b>Buy credits</b> for this group's pool, with Telegram Stars: everyone "
        "here can use them.\nPurchased credits never expire; /imagine costs {cost}.\n\n{packs}",
        Lang.RU: "⭐ <b>Купить кредиты</b> в общий запас группы за Telegram Stars: ими смогут "
        "пользоваться все.\nКупленные кредиты не сгорают; /imagine стоит {cost}.\n\n{packs}",
    },
    "shop.pack_line": {
        Lang.EN: "• {credits} credits ≈ {sets} image sets: {stars} ⭐",
        Lang.RU: "• {credits} кредитов ≈ {sets} наборов картинок: {stars} ⭐",
    },
    "shop.button": {
        Lang.EN: "{credits} credits · {stars} ⭐",
        Lang.RU: "{credits} кредитов · {stars} ⭐",
    },
    "shop.invoice_title": {
        Lang.EN: "{credits} credits",
        Lang.RU: "{credits} кредитов",
    },
    "shop.invoice_for_you": {
        Lang.EN: "{credits} credits for Grok Imagine, ≈ {sets} image sets. They never expire.",
        Lang.RU: "{credits} кредитов для Grok Imagine, ≈ {sets} наборов картинок. Не сгорают.",
    },
    "shop.invoice_for_group": {
        Lang.EN: "{credits} credits for the pool of “{chat}”, ≈ {sets} image sets. "
        "They never expire.",
        Lang.RU: "{credits} кредитов в общий запас «{chat}», ≈ {sets} наборов картинок. "
        "Не сгорают.",
    },
    "shop.pack_gone": {
        Lang.EN: "This pack is no longer on sale: /buy shows what is.",
        Lang.RU: "Этот пакет больше не продаётся: /buy покажет, что есть.",
    },
    "checkout.forged": {
        Lang.EN: "This invoice was not made by this bot. Use /buy for a new one.",
        Lang.RU: "Этот счёт выставлен не этим ботом. Откройте новый через /buy.",
    },
    "checkout.stale": {
        Lang.EN: "This invoice has expired. Use /buy for a new one.",
        Lang.RU: "Срок этого счёта истёк. Откройте новый через /buy.",
    },
    "checkout.pack_gone": {
        Lang.EN: "This pack is no longer on sale at this price. /buy shows what is.",
        Lang.RU: "Этот пакет больше не продаётся по этой цене. /buy покажет, что есть.",
    },
    "checkout.not_yours": {
        Lang.EN: "This invoice was made for someone else. Use /buy for your own.",
        Lang.RU: "Этот счёт выставлен другому человеку. Откройте свой через /buy.",
    },
    "shop.receipt_private": {
        Lang.EN: "⭐ Thank you! {credits} credits added for {stars} Stars.\n"
        "You now have {available} credits: {purchased} purchased, {granted} granted, "
        "{daily_left} left of today's.",
        Lang.RU: "⭐ Спасибо! Добавлено {credits} кредитов за {stars} Stars.\n"
        "Теперь у вас {available} кредитов: куплено {purchased}, подарено {granted}, "
        "осталось дневных {daily_left}.",
    },
    "shop.receipt_group": {
        Lang.EN: "⭐ {buyer} added {credits} credits to this group's pool, for {stars} Stars. "
        "Thank you!\nThe group now has {available} credits: {purchased} purchased, "
        "{granted} granted, {daily_left} left of today's.",
        Lang.RU: "⭐ {buyer} добавил(а) {credits} кредитов в общий запас группы за {stars} Stars. "
        "Спасибо!\nТеперь у группы {available} кредитов: куплено {purchased}, "
        "подарено {granted}, осталось дневных {daily_left}.",
    },
    "shop.refunded_notice": {
        Lang.EN: "⭐ A payment of {stars} Stars by {buyer} was refunded; "
        "{taken} of its {credits} credits were taken back.",
        Lang.RU: "⭐ Платёж {buyer} на {stars} Stars возвращён; "
        "из его {credits} кредитов списано {taken}.",
    },
    "paysupport": {
        Lang.EN: "💬 <b>Help with a payment</b>\n"
        "If credits you paid for did not arrive, or you want your Stars back, write "
        "<code>/paysupport</code> followed by what happened (the date and the pack help). "
        "It goes to the bot's operator, who answers here. A purchase can be refunded in "
        "Stars; its credits not yet used are then taken back.",
        Lang.RU: "💬 <b>Помощь с оплатой</b>\n"
        "Если оплаченные кредиты не пришли или вы хотите вернуть Stars, напишите "
        "<code>/paysupport</code> и что случилось (дата и пакет помогут). Сообщение получит "
        "оператор бота и ответит здесь. Покупку можно вернуть в Stars; неиспользованные "
        "кредиты из неё тогда списываются.",
    },
    "paysupport.sent": {
        Lang.EN: "✅ Sent to the bot's operator. They will answer here.",
        Lang.RU: "✅ Отправлено оператору бота. Ответ придёт сюда.",
    },
    "paysupport.to_operator": {
        Lang.EN: "💬 Payment support from {user} (id <code>{user_id}</code>, chat "
        "<code>{chat_id}</code>):\n{question}\n\nTheir payments: {charges}",
        Lang.RU: "💬 Вопрос об оплате от {user} (id <code>{user_id}</code>, чат "
        "<code>{chat_id}</code>):\n{question}\n\nЕго платежи: {charges}",
    },
    "paysupport.no_charges": {
        Lang.EN: "none",
        Lang.RU: "нет",
    },
    "terms": {
        Lang.EN: "📄 <b>Terms of sale</b>\n"
        "• Credits are bought with Telegram Stars and spent on images and videos made in "
        "this bot. They never expire and are not exchanged back for Stars, except by a refund.\n"
        "• A request that fails costs nothing: its credits come back.\n"
        "• Credits bought in a group belong to that group's pool.\n"
        "• Refunds: ask with /paysupport. A refund returns the Stars of a purchase and takes "
        "back its credits not yet used.\n"
        "• Prompts must keep to Telegram's rules and the image service's.",
        Lang.RU: "📄 <b>Условия продажи</b>\n"
        "• Кредиты покупаются за Telegram Stars и тратятся на картинки и видео в этом боте. "
        "Они не сгорают и не обмениваются обратно на Stars, кроме как при возврате.\n"
        "• Неудавшийся запрос ничего не стоит: его кредиты возвращаются.\n"
        "• Кредиты, купленные в группе, идут в её общий запас.\n"
        "• Возврат: попросите через /paysupport. Возврат отдаёт Stars за покупку и списывает "
        "её неиспользованные кредиты.\n"
        "• Запросы должны соответствовать правилам Telegram и сервиса картинок.",
    },
    "admin.usage_refund": {
        Lang.EN: "Usage: <code>/refund &lt;telegram payment charge id&gt;</code> "
        "(the receipt's charge id, also in /paysupport messages).",
        Lang.RU: "Формат: <code>/refund &lt;telegram payment charge id&gt;</code> "
        "(id платежа из чека или из сообщений /paysupport).",
    },
    "admin.refund_unknown": {
        Lang.EN: "No payment with that charge id.",
        Lang.RU: "Платежа с таким id нет.",
    },
    "admin.refund_already": {
        Lang.EN: "That payment was refunded before; {taken} credits were taken back then.",
        Lang.RU: "Этот платёж уже возвращён; тогда списано {taken} кредитов.",
    },
    "admin.refund_failed": {
        Lang.EN: "Telegram did not refund it: {reason}",
        Lang.RU: "Telegram не вернул платёж: {reason}",
    },
    "admin.refunded": {
        Lang.EN: "✅ Refunded {stars} Stars to {buyer}. Took back {taken} of the payment's "
        "{credits} credits from chat {chat}: what was left of them unspent.",
        Lang.RU: "✅ {buyer} возвращено {stars} Stars. У чата {chat} списано {taken} из "
        "{credits} кредитов платежа: столько их оставалось неизрасходованными.",
    },
    "shop.buy_hint": {
        Lang.EN: " Buy more with /buy.",
        Lang.RU: " Купить ещё: /buy.",
    },
    "command.history": {
        Lang.EN: "What you made here",
        Lang.RU: "Что вы сделали здесь",
    },
    "history.title": {
        Lang.EN: "🕘 <b>What you made here</b>, newest first (page {page} of {pages}). "
        "Choose one to get it again, free.",
        Lang.RU: "🕘 <b>Что вы сделали здесь</b>, сначала новое (страница {page} из {pages}). "
        "Выберите, и оно придёт снова, бесплатно.",
    },
    "history.empty": {
        Lang.EN: "Nothing of yours here yet. Make something with /imagine.",
        Lang.RU: "Здесь пока нет ваших результатов. Сделайте что-нибудь через /imagine.",
    },
    "history.item_images": {
        Lang.EN: "🖼 {prompt} · {day}",
        Lang.RU: "🖼 {prompt} · {day}",
    },
    "history.item_video": {
        Lang.EN: "🎬 {prompt} · {day}",
        Lang.RU: "🎬 {prompt} · {day}",
    },
    "history.previous": {Lang.EN: "◀ Newer", Lang.RU: "◀ Новее"},
    "history.next": {Lang.EN: "Older ▶", Lang.RU: "Старше ▶"},
    "history.not_yours": {
        Lang.EN: "This list is someone else's: /history shows yours.",
        Lang.RU: "Это чужой список: /history покажет ваш.",
    },
    "history.gone": {
        Lang.EN: "That result can no longer be sent.",
        Lang.RU: "Этот результат больше нельзя отправить.",
    },
    "inline.create_title": {
        Lang.EN: "🎨 Create: {prompt}",
        Lang.RU: "🎨 Создать: {prompt}",
    },
    "inline.create_description": {
        Lang.EN: "Six images; the first appears here. Costs {cost} of your credits.",
        Lang.RU: "Шесть картинок; первая появится здесь. Стоит {cost} ваших кредитов.",
    },
    "inline.making": {
        Lang.EN: "🎨 Making: {prompt}…",
        Lang.RU: "🎨 Рисую: {prompt}…",
    },
    "inline.open": {
        Lang.EN: "🖼 All of them, and animate",
        Lang.RU: "🖼 Все картинки и оживление",
    },
    "inline.ready_as_link": {
        Lang.EN: "🖼 Ready: {url}",
        Lang.RU: "🖼 Готово: {url}",
    },
    "inline.empty_title": {
        Lang.EN: "✍ Type what to make",
        Lang.RU: "✍ Напишите, что нарисовать",
    },
    "inline.empty_description": {
        Lang.EN: "For example: a red fox in snow --ar 3:2",
        Lang.RU: "Например: рыжая лиса в снегу --ar 3:2",
    },
    "inline.too_long_title": {
        Lang.EN: "✂ Too long for inline mode",
        Lang.RU: "✂ Слишком длинно для inline-режима",
    },
    "inline.too_long_description": {
        Lang.EN: "Telegram stops inline text at {limit} characters: "
        "use /imagine in a chat with me.",
        Lang.RU: "Telegram обрезает inline-текст на {limit} символах: "
        "используйте /imagine в чате со мной.",
    },
    "inline.bad_title": {
        Lang.EN: "⚠ Can't make that",
        Lang.RU: "⚠ Так не получится",
    },
    "inline.how_to": {
        Lang.EN: "Type <code>@{bot} a red fox in snow</code> in any chat, then choose “Create”.",
        Lang.RU: "Напишите <code>@{bot} рыжая лиса в снегу</code> в любом чате "
        "и выберите «Создать».",
    },
    "inline.made_before": {
        Lang.EN: "Made before: {prompt}",
        Lang.RU: "Сделано раньше: {prompt}",
    },
    "command.cancel": {
        Lang.EN: "Cancel a request waiting in line",
        Lang.RU: "Отменить запрос в очереди",
    },
}


def template(lang: Lang, key: str) -> str:
    """The message `key` in `lang` with its `{fields}` unfilled."""
    return _MESSAGES[key][lang]


def plain(lang: Lang, key: str, **params: object) -> str:
    """The message `key` in `lang` for a place Telegram shows as plain text (an invoice, a
    button, an inline result's title): parameters go in as they are, not escaped."""
    return template(lang, key).format(**params)


class Markup(str):
    """Text that is already Telegram HTML (another catalog message): not escaped again."""


def text(lang: Lang, key: str, **params: object) -> str:
    """The message `key` in `lang`, with every parameter HTML-escaped but `Markup`."""
    escaped = {
        name: value if isinstance(value, Markup) else html.escape(str(value), quote=False)
        for name, value in params.items()
    }
    return template(lang, key).format(**escaped)


def escape(plain: str) -> str:
    """Plain text (an operator's own /terms, say) made safe to send as HTML."""
    return html.escape(plain, quote=False)


def keys() -> frozenset[str]:
    return frozenset(_MESSAGES)
