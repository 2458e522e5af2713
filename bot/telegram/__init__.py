"""Everything that speaks Telegram: PTB handlers (`handlers.py` for everyone, `admin.py` for
operators, `animate.py` for setting up animations), the one intake for new tasks, who
administers a group, rendering keyboards and texts, delivering results within Telegram's
size limits, and flood control (`flood.py` over `pace.py`)."""
