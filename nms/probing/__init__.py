"""The probe loops: when each NTU is swept by ICMP and polled by SNMP, and which shard owns it."""
