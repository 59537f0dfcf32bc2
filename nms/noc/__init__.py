"""What the NOC sees: Prometheus collectors and the /metrics exposition."""
