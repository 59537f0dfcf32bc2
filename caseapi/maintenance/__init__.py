"""Maintenance windows: planned and emergency work that suppresses proactive cases."""
