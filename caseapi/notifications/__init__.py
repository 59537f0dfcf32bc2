"""Customer notifications: transactional outbox, dispatcher, e-mail, webhooks, MQTT.

- ``outbox``: ``enqueue`` (in the caller's transaction), ``OutboxSource`` (another
  domain's outbox fed in per pass) and ``backlog`` (counts for metrics). What a case
  change tells the customer is the cases' business (``caseapi.cases.notices``):
  this package knows no domain that uses it.
- ``dispatcher``: ``NotificationDispatcher`` (delivery guarantee and retries are
  documented there).
- ``channels``: SMTP, webhook and MQTT senders (topic tree documented there); every
  case mail threads (``caseapi.mail.threading``).
- ``render``, ``templating`` and ``languages``: the payload and the e-mails, from
  template files per language (``templates/<language>/<kind>.txt``).
- ``routes``: webhook subscriptions and the NOC's view of failed deliveries.
- ``addresses`` (pure) and ``transport``: where a webhook may be delivered, checked
  at subscription and at every connection (SSRF, DNS rebinding, no redirects).
- ``at_rest``: the stored webhook secrets under the secret keys (start-up check,
  rotation); the keys themselves are ``caseapi.core.secrets``.
"""
