"""The bus between probes and detector: in-process queue (embedded) and MQTT v5
(distributed), with its wire codec.
"""
