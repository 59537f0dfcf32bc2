"""Public: the case timeline as a feed (what ``nms`` relays to the bus)."""

from __future__ import annotations

from caseapi.cases.feed import CaseFeed, FeedEntry, entries_after, newest_event_id

__all__ = ["CaseFeed", "FeedEntry", "entries_after", "newest_event_id"]
