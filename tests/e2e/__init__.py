"""The top-level programs end to end (watcher, executor, notifier, web, demo, systemd units) on the shared rig."""
