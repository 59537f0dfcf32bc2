"""Benchmarks: scripts that print figures (``python bench/<name>.py``); not tests."""
