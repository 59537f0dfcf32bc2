"""The stored webhook secrets under the secret keys: start-up check and rotation.

``seal_webhook_secrets`` runs at every start-up, after the migrations: it opens every
encrypted secret (a wrong key stops start-up before anything is sent with it) and
encrypts those still in clear (rows written before a key was configured). ``rotate``
re-encrypts every one under the current key, in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.core.database import session_scope
from caseapi.core.secrets import SecretBox, SecretDecryptError, is_encrypted, open_secret
from caseapi.notifications.models import WebhookSubscription


@dataclass(frozen=True, slots=True)
class StoredSecrets:
    """What a pass over the stored secrets found and did."""

    subscriptions: int
    #: Secret values (current and previous) looked at.
    values: int
    #: Values written anew: encrypted from clear, or re-encrypted by a rotation.
    rewritten: int
    #: Values left in clear (no key configured).
    plain: int


async def _each_value(
    sessionmaker: async_sessionmaker[AsyncSession],
    change: Callable[[int, str], str | None],
) -> StoredSecrets:
    rewritten = values = plain = 0
    async with session_scope(sessionmaker, write=True) as session:
        rows = list(
            (
                await session.execute(
                    select(WebhookSubscription).order_by(WebhookSubscription.id).with_for_update()
                )
            ).scalars()
        )
        for row in rows:
            for field in ("secret", "previous_secret"):
                stored: str | None = getattr(row, field)
                if stored is None:
                    continue
                values += 1
                try:
                    new = change(row.id, stored)
                except SecretDecryptError as exc:
                    raise SecretDecryptError(
                        f"webhook subscription {row.id} ({field}): {exc}"
                    ) from None
                if new is not None and new != stored:
                    setattr(row, field, new)
                    rewritten += 1
                plain += not is_encrypted(new if new is not None else stored)
        await session.commit()
    return StoredSecrets(subscriptions=len(rows), values=values, rewritten=rewritten, plain=plain)


async def seal_webhook_secrets(
    sessionmaker: async_sessionmaker[AsyncSession], box: SecretBox | None
) -> StoredSecrets:
    """Check that every stored secret opens, and encrypt those in clear (with a key).

    Raises:
        SecretDecryptError: One does not open (names the subscription).
    """

    def seal(_: int, stored: str) -> str | None:
        open_secret(stored, box)
        if box is not None and not is_encrypted(stored):
            return box.encrypt(stored)
        return None

    return await _each_value(sessionmaker, seal)


async def rotate_webhook_secrets(
    sessionmaker: async_sessionmaker[AsyncSession], box: SecretBox
) -> StoredSecrets:
    """Re-encrypt every stored secret under ``box``'s current key (one transaction).

    Raises:
        SecretDecryptError: One opens with none of the keys; nothing is changed.
    """
    return await _each_value(sessionmaker, lambda _, stored: box.rotate(stored))
