"""The bot's HTTP endpoint: upstream callbacks, Telegram's webhook, users' photos for the
upstream, /healthz and /metrics (`routes.py`); the secrets and signatures they check
(`signing.py`)."""
