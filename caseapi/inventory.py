"""Public: how an inventory gets into the case service's tables.

The loader (``nms`` reads the inventory file) turns its entries into these records
and calls ``sync_inventory``; it never writes the tables itself.
"""

from __future__ import annotations

from caseapi.ntus.sync import (
    CustomerRecord,
    InventoryDiff,
    NodeRecord,
    NtuRecord,
    sync_inventory,
)

__all__ = ["CustomerRecord", "InventoryDiff", "NodeRecord", "NtuRecord", "sync_inventory"]
