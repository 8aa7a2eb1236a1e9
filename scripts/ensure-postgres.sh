#!/usr/bin/env bash
# Start the local PostgreSQL cluster if it is not answering (used by `make test` and CI).
set -u
if command -v pg_isready >/dev/null 2>&1 && pg_isready -h 127.0.0.1 -p 5432 -q; then
  exit 0
fi
if [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null 2>&1; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do
    pg_isready -h 127.0.0.1 -p 5432 -q && exit 0
    sleep 1
  done
fi
echo "warning: PostgreSQL is not reachable at 127.0.0.1:5432; its tests will be skipped (or fail under CI=true)" >&2
exit 0
