"""Everything that speaks Telegram. The features, each one module with its handlers and its
views (`imagine.py`, `results.py`, `animate.py`, `history.py`, `inline.py`, `shop.py`,
`chat_settings.py`, `quota.py`, `guide.py`, `chat_events.py`, `admin.py`), taken in order by
the routing table (`handlers.py`); the one intake for new tasks (`intake.py`); the engine's
chat port (`task_chat.py`) over delivery within Telegram's size limits (`delivery.py`,
`media.py`) and flood control (`flood.py` over `pace.py`); who administers a group
(`admins.py`, `permissions.py`); the messages in every language (`catalog.py`, `locales/`)."""
