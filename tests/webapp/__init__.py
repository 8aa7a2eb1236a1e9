"""Tests of webapp/: the dashboard and its HTTP API."""
