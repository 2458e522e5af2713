"""Loopback test servers that speak the Telegram Bot API and every upstream dialect,
strictly, and what the bot under test shares with them (`bot_under_test`). The tests and
the benchmarks both use them; nothing here imports `tests`."""
