"""Tests of ops/: the admin CLI, reports, doctor, inputs."""
