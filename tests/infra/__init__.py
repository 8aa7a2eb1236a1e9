"""Tests of infra/, models.py, crypto.py, migrations: settings, errors, metrics, database, keys."""
