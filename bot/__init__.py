"""imagine-bot: Grok Imagine in Telegram."""
