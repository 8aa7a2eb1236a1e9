"""Notifications: an outbox written with the events, a sender that delivers each row once to
Telegram chats and Discord webhooks, alerts (stale daemons, daily digests) and chat commands."""
