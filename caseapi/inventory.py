"""Public: how an inventory gets into the case service's tables.

The loader (``nms`` reads the inventory file) turns its entries into these records
and calls ``sync_inventory``; it never writes the tables itself.
"""

from __future__ import annotations

from caseapi.core.localtime import check_zone
from caseapi.customers.contacts import CONTACT_ROLES, DEFAULT_ROLES, check_email
from caseapi.notifications.templating import shipped_languages
from caseapi.ntus.sync import (
    ContactRecord,
    CustomerRecord,
    InventoryDiff,
    NodeRecord,
    NtuRecord,
    sync_inventory,
)

__all__ = [
    "CONTACT_ROLES",
    "DEFAULT_ROLES",
    "ContactRecord",
    "CustomerRecord",
    "InventoryDiff",
    "NodeRecord",
    "NtuRecord",
    "check_email",
    "check_zone",
    "shipped_languages",
    "sync_inventory",
]
