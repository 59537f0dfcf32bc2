"""The IMAP poller's counters as metrics: ``MailCollector`` reads ``PollerStats`` at scrape.

Labels: ``outcome`` only, from the ingest's closed set (``OUTCOMES``); every value
is exported (0 until it happens), so a series never vanishes.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from caseapi.mailbox import PollerStats

#: The ingest's outcomes (``caseapi.mailbox.IngestOutcome``), a closed label set.
OUTCOMES = (
    "case_opened", "commented", "follow_up_opened", "held", "ignored", "refused",
    "duplicate", "bounce_recorded",
)  # fmt: skip


class MailCollector(Collector):
    """Serves the counters of one ``ImapPoller`` (its ``stats``)."""

    def __init__(self, stats: PollerStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        ingested = CounterMetricFamily(
            "nms_mail_ingested",
            "Mails read from the IMAP mailbox and ingested, by outcome",
            labels=["outcome"],
        )
        for outcome in OUTCOMES:
            ingested.add_metric([outcome], stats.ingested.get(outcome, 0))
        yield ingested
        yield CounterMetricFamily(
            "nms_mail_ingest_failures",
            "Ingests of a mail that raised (the mail stays for the next poll)",
            value=stats.failures,
        )
        yield CounterMetricFamily(
            "nms_mail_given_up",
            "Mails flagged $NmsFailed after mail.imap.max_failures failed ingests",
            value=stats.gave_up,
        )
        yield CounterMetricFamily(
            "nms_mail_poll_errors",
            "IMAP polls that failed (connection, login, a command, database unavailable)",
            value=stats.poll_errors,
        )
        if stats.last_poll is not None:
            yield GaugeMetricFamily(
                "nms_mail_last_poll_timestamp_seconds",
                "When the last IMAP poll completed (Unix time)",
                value=stats.last_poll.timestamp(),
            )
