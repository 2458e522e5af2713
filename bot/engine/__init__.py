"""The engine: background workers that drive every task from `pending` to a final state
(`engine.py`), the line in front of the upstream (`scheduler.py`), and what a task costs
and who may pay for it (`billing.py`). It reaches Telegram only through the deliverer and
the bot it is given."""
