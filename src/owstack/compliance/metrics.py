"""The audit writer's numbers for `GET /metrics` (per process), read at scrape time:

    owstack_audit_records_total       records written (requests, administrative events, checkpoints)
    owstack_audit_commits_total       group commits (one write and one fdatasync each): records / commits is
                                      how many requests share a disk flush
    owstack_audit_write_failures_total  writes that failed (the writer refuses requests until one succeeds)
    owstack_audit_up                  1 while the log can be written, 0 while requests are refused for it

Plain integers the commit thread writes; nothing is counted per request on the event loop.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from owstack.compliance.stage import AuditStage


class AuditCollector:
    def __init__(self, stage: AuditStage) -> None:
        self.stage = stage

    def collect(self) -> Iterator[Metric]:
        log = self.stage.log
        writer = log.writer() if log is not None and log.started else None
        records = writer.records_written if writer is not None else 0
        commits = writer.batches_written if writer is not None else 0
        failures = writer.failures if writer is not None else 0
        yield CounterMetricFamily("owstack_audit_records", "Audit records written", value=records)
        yield CounterMetricFamily("owstack_audit_commits", "Audit group commits (one fdatasync each)", value=commits)
        yield CounterMetricFamily("owstack_audit_write_failures", "Audit writes that failed", value=failures)
        up = int(self.stage.healthy)
        yield GaugeMetricFamily("owstack_audit_up", "1 while the audit log can be written", value=up)
