"""The detector: pure availability, quality and topology machines, the engine that executes
their actions, and its own durable state.
"""
