"""Customer notifications: transactional outbox, dispatcher, e-mail, webhooks, MQTT.

- ``outbox``: ``enqueue`` (in the caller's transaction), ``on_case_event`` (the
  case timeline hook) and ``backlog`` (counts for metrics).
- ``dispatcher``: ``NotificationDispatcher`` (delivery guarantee and retries are
  documented there).
- ``channels``: SMTP, webhook and MQTT senders (topic tree documented there).
- ``routes``: webhook subscriptions and the NOC's view of failed deliveries.
"""
