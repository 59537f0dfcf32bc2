"""The case service: proactive incidents, people's work on cases, RFOs, maintenance,
notifications, and the HTTP API over them.

It knows nothing of the detector that feeds it. What an embedding application may
use is named here; everything else (the domain folders, ``core``, the ORM models) is
internal, and ``scripts/import_contract.py`` fails the build on an import of it from
``nms``.
"""

__all__ = [
    "app",  # build_services, create_app, CaseWorkers
    "cli",  # the apikey commands, to mount in a host CLI
    "clock",  # the Clock protocol it takes
    "coverage",  # which NTUs maintenance covers now
    "database",  # engine, sessions, migrations, errors
    "feed",  # the case timeline as a feed
    "incidents",  # the detector -> case contract and its service
    "inventory",  # customers, NTUs and nodes into the case tables
    "mailbox",  # the mail channel: ingest, IMAP poller, MTA pipe
    "organisation",  # teams, members and routing rules into the case tables
    "secrets",  # secret keys, encryption at rest, stored webhook secrets
    "settings",  # its settings sections and durations
    "stats",  # case statistics for the NOC
]
