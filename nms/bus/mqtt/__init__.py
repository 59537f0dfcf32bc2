"""The MQTT v5 bus of the distributed wiring (aiomqtt 2.x over paho-mqtt).

Topics (``<prefix>`` is ``bus.topic_prefix``, ``nms/v1`` by default; ``+``, ``#`` and
``/`` inside an id become ``_``)::

    <prefix>/probes/<sender>/ping|snmp|heartbeat   probe worker -> detector
    <prefix>/detector/ntus/<ntu id>                 NTU status, retained
    <prefix>/cases/<case ref>                       case timeline events
    <prefix>/control/skip                           detector -> probes, retained

``<sender>`` is ``probe-<I>of<N>`` for probe shard I/N (``MqttBus(sender=...)``): the
user name the broker knows the worker by (its certificate's common name), which the
broker's ACL (``deploy/mosquitto/acl``) lets it write under and nowhere else.

Security: ``mqtts://`` is TLS 1.2+ with the broker's certificate and host name checked
(``tls``: ``bus.tls_ca``) and, with ``bus.tls_cert``/``bus.tls_key``, a client
certificate; or a user name and password (``bus.username``/``bus.password``), which
are never shown in logs, ``repr`` or errors.

Delivery choices, and why:

- Observations, ``ntu_state``, ``case``, ``skip`` and the will go at QoS 1: the broker
  keeps and retries them until acknowledged. QoS 1 may deliver a message twice (a
  PUBACK lost in a reconnect), so every message carries ``(source, seq)`` and the
  receiver drops what it has already seen: effectively once, without QoS 2's second
  round trip per message.
- Heartbeats go at QoS 0: one comes every few seconds and only the latest matters; a
  lost one is replaced by the next, and the broker does not queue them for an absent
  detector (a backlog of old heartbeats says nothing).
- ``ntu_state`` and ``skip`` are retained: a late subscriber (a dashboard, a probe worker
  that just started or reconnected) needs the current value now, not at the next
  change. Observations and heartbeats are not: a retained old one would pass for news.
- ``persistent=True`` (the detector): ``clean_start=False``, a session expiry
  (``session_expiry``) and QoS 1 subscriptions. The broker keeps the subscriptions and
  queues what arrives while the detector is away - a restart, or a failover to the
  standby, which connects with the same client id - so a detector change loses nothing
  queued at the broker (up to the expiry and the broker's ``max_queued_messages``).
- ``persistent=False`` (probe workers): a clean session. They hold no subscription of
  value (the skip set is retained, so every reconnect brings the current one), and a
  session left behind by every restarted worker would only fill the broker.
- Sending never waits for the broker: a message goes into a bounded outgoing queue
  (``buffer_batches``) and leaves it only when the broker acknowledged it, so a
  connection lost mid-flight re-sends it (a duplicate, dropped by the receiver, never a
  gap). When the queue is full the OLDEST message is dropped and counted: for
  monitoring, newer data is worth more than older.
- The will, ``Heartbeat(alive=False)`` at QoS 1, is published by the broker when a
  worker vanishes without a DISCONNECT (crash, network cut), so the detector knows at
  once instead of waiting for the heartbeat to go stale. A clean stop discards it, so
  the worker sends ``alive=False`` itself (``send`` then ``flush``).

``run`` owns the connection: connect, (re)subscribe, send the queue in order (up to
``_WINDOW`` QoS 1 messages in flight), receive - sending and receiving run side by
side, and the receive loop is also what notices a dead connection. On any ``MqttError``
it logs once per outage, backs off (``reconnect_base`` doubling up to
``reconnect_cap``, with jitter so that a fleet of workers does not reconnect in step)
and connects again. Received messages are decoded, de-duplicated and queued for
``received()``; a bad one is counted by reason, logged (rate-limited) and skipped.

What callers must keep in mind:

- ``source`` must be unique per process instance (e.g. ``probe-1of2-<random>``): a
  restarted process that reused a source would start again at seq 1, and receivers
  that remember the old instance would drop its messages as duplicates.
- Two live connections with one client id take the session from each other in a loop;
  a standby detector must not run its bus until it is the leader.
- ``received()`` is unbounded, like aiomqtt's own queue behind it (paho acknowledges
  QoS 1 on receipt, so there is no back-pressure to give the broker): the consumer
  must keep up. ``stats.connected`` means connected *and* subscribed.

The modules: ``settings`` (broker URL, prefix, limits), ``tls`` (the TLS files and
the SSL context), ``topics`` (where each kind goes), ``outbox`` (the bounded outgoing
queue), ``intake`` (decode, dedupe, count rejects), ``session`` (one aiomqtt
connection: connect, publish, disconnect - and why a stop always ends), ``bus``
(``MqttBus``: the client loop that ties them together), ``stats`` (``BusStats``).
"""

from nms.bus.mqtt.bus import MqttBus
from nms.bus.mqtt.settings import MqttBusSettings
from nms.bus.mqtt.stats import BusStats
from nms.bus.mqtt.topics import topic_for

__all__ = ["BusStats", "MqttBus", "MqttBusSettings", "topic_for"]
