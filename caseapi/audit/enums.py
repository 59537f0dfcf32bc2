"""Audit vocabularies as ``StrEnum`` with stable lowercase values.

The values are stored in ``audit_events`` and appear in the API (``GET /v1/audit``
filters on them), so they never change; new members may be added. An action is
``<target type>.<verb>``, dotted, so a reader can group them by their first part.
"""

from __future__ import annotations

from enum import StrEnum


class AuditAction(StrEnum):
    # API keys (the API and ``nms apikey``)
    APIKEY_CREATE = "apikey.create"
    APIKEY_REVOKE = "apikey.revoke"
    # Cases
    CASE_CREATE = "case.create"
    CASE_PRIORITY = "case.priority"
    CASE_TRANSITION = "case.transition"
    CASE_ASSIGN = "case.assign"
    CASE_TAKE = "case.take"
    CASE_HANDOFF = "case.handoff"
    #: A hand-off naming a team or a person of the organisation (``/forward``).
    CASE_FORWARD = "case.forward"
    #: Support corrected the type / subject (``/classification``).
    CASE_CLASSIFY = "case.classify"
    CASE_COMMITMENT_SET = "case.commitment.set"
    CASE_COMMITMENT_MET = "case.commitment.met"
    CASE_ETR = "case.etr"
    CASE_ESCALATE = "case.escalate"
    CASE_REOPEN = "case.reopen"
    CASE_CANCEL = "case.cancel"
    CASE_REPLY = "case.reply"
    CASE_COMMENT = "case.comment"
    CASE_ATTACH = "case.attach"
    # RFOs
    RFO_UPDATE = "rfo.update"
    RFO_PUBLISH = "rfo.publish"
    # Maintenance windows
    MAINTENANCE_CREATE = "maintenance.create"
    MAINTENANCE_UPDATE = "maintenance.update"
    MAINTENANCE_CANCEL = "maintenance.cancel"
    MAINTENANCE_COMPLETE = "maintenance.complete"
    # Webhook subscriptions and deliveries
    WEBHOOK_CREATE = "webhook.create"
    WEBHOOK_UPDATE = "webhook.update"
    WEBHOOK_DELETE = "webhook.delete"
    WEBHOOK_ROTATE = "webhook.rotate"
    NOTIFICATION_RETRY = "notification.retry"
    # Inbound mail (the mail ingest and the held list)
    MAIL_INGEST = "mail.ingest"
    MAIL_RELEASE = "mail.release"
    # Reports (recorded by the reports feature)
    REPORT_EXPORT = "report.export"
    # Staff alerts (on-call): an acknowledgement by API key or by the signed link
    ALERT_ACK = "alert.ack"
    # Canned replies (sending one is a ``case.comment`` with its ``reply_id``)
    REPLY_CREATE = "reply.create"
    REPLY_UPDATE = "reply.update"
    REPLY_DELETE = "reply.delete"
    # Console accounts (the admin's pages, ``nms user``) and sign-ins
    USER_CREATE = "user.create"
    #: Role, customer, disabled/enabled, time zone or language changed.
    USER_UPDATE = "user.update"
    USER_PASSWORD = "user.password"
    USER_LOGIN = "user.login"
    USER_LOGOUT = "user.logout"
    #: "Sign out everywhere": every session of the account ended.
    USER_SIGNOUT_ALL = "user.signout_all"


class ActorKind(StrEnum):
    """Who acted: an API key, a person at the ``nms`` command line, or the system."""

    API_KEY = "api_key"
    CLI = "cli"
    SYSTEM = "system"
    #: A mail's sender (``mail:<address>``): what the mail ingest did on its behalf.
    MAIL = "mail"
    #: A person signed in to the web console (``actor_id`` is their account's id).
    USER = "user"


class AuditOutcome(StrEnum):
    """What the action did. Refused or failed actions roll back and leave no row."""

    SUCCESS = "success"
    #: Accepted but nothing changed: revoking a revoked key, an Idempotency-Key replay,
    #: a lifecycle event that changed nothing.
    UNCHANGED = "unchanged"
    #: A refused sign-in (unknown e-mail, wrong password, disabled account): the one
    #: refusal that is recorded, so that guessing shows in the log.
    REFUSED = "refused"


class AuditTarget(StrEnum):
    """The kind of object an action is about (``target_type``)."""

    API_KEY = "apikey"
    CASE = "case"
    RFO = "rfo"
    MAINTENANCE = "maintenance"
    WEBHOOK = "webhook"
    NOTIFICATION = "notification"
    REPORT = "report"
    MAIL = "mail"
    ALERT = "alert"
    REPLY = "reply"
    USER = "user"
