"""Daemon heartbeats: one row per daemon with its last completed cycle (read by `admin status`).

Both daemons call `record_heartbeat` from the `on_cycle` hook they pass to `infra.daemon.run_loop`
(the loop itself knows nothing of the database model).
"""

from __future__ import annotations

import os
import socket
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from infra.daemon import CycleStats
from infra.db import session_scope, utcnow
from models import DaemonHeartbeat


def record_heartbeat(factory: sessionmaker[Session], name: str, stats: CycleStats,
                     started_at: datetime) -> None:
    """Upsert this daemon's heartbeat row (last cycle time and duration)."""
    with session_scope(factory) as s:
        row = s.get(DaemonHeartbeat, name)
        if row is None:
            row = DaemonHeartbeat(name=name, pid=os.getpid(), host=socket.gethostname(),
                                  started_at=started_at)
            s.add(row)
        row.pid = os.getpid()
        row.started_at = started_at
        row.last_cycle_at = utcnow()
        row.last_cycle_ms = stats.elapsed_ms
        row.detail = dict(stats.counts)
