"""The bus between probes and detector: ``batch`` (what it carries: ``PingBatch`` /
``SnmpBatch``), ``inprocess`` (the ``Bus`` protocol and the queue of the embedded
wiring), ``mqtt`` (MQTT v5, distributed) with its codec ``wire``, and ``case_relay``
(the case timeline onto the bus).
"""
