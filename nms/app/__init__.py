"""The composition root: settings, the CLI and the processes (nms run, probe, detector,
api, demo).
"""
