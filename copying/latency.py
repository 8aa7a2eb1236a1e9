"""Per-stage latency of a copy: histograms in `/metrics` (`pmct_copy_stage_seconds{stage=…}`).

Stages, each the time from the previous mark to its own:
    detect      trader fill on the venue (occurred_at) → the watcher stored it (first_seen_at)
    queue       stored → copy QUEUED (same transaction: ~0, kept so the chain is complete)
    claim       QUEUED → claimed by an executor
    sign        claimed → signed (priced, sized, signed, committed)
    post        signed → the POST left
    ack         the POST left → the venue's answer came back
    first_fill  answered → the first fill of the copy matched at the venue
    fill_seen   a fill matched at the venue → recorded by the executor
`ops.latency` computes the same stages from the database for `admin stats --latency`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from infra import metrics

if TYPE_CHECKING:
    from copying.claims import Job

STAGES = ("detect", "queue", "claim", "sign", "post", "ack", "first_fill", "fill_seen")


def seconds(a: datetime | None, b: datetime | None) -> float | None:
    """b − a in seconds (never negative), or None when either mark is missing."""
    if a is None or b is None:
        return None
    return max((b - a).total_seconds(), 0.0)


def observe(stage: str, a: datetime | None, b: datetime | None) -> None:
    """Record one stage duration when both marks are known."""
    value = seconds(a, b)
    if value is not None:
        metrics.observe("copy_stage_seconds", value, stage=stage)


def observe_stages(jobs: Iterable[Job]) -> None:
    """The stages of copies a batch just posted and recorded (first signing only)."""
    for job in jobs:
        co, fill = job.co, job.fill
        if (co.attempts or 0) > 1:
            continue
        if fill is not None:  # a remainder or a close has no trader fill: its stages start queued
            observe("detect", fill.occurred_at, fill.first_seen_at)
            observe("queue", fill.first_seen_at, co.queued_at)
        observe("claim", co.queued_at, co.claimed_at)
        observe("sign", co.claimed_at, co.signed_at)
        observe("post", co.signed_at, job.sent_at)
        observe("ack", job.sent_at, job.answered_at)
        if job.answered_at is not None:
            metrics.observe("copy_overhead_seconds", seconds(job.reference_time, job.answered_at) or 0.0)
