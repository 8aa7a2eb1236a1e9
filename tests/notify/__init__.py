"""Tests of notify/: notifications, channels, chat commands."""
