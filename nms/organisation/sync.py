"""The organisation file into the case service: ``caseapi.organisation`` records.

Teams, members and routing rules become records; every other parsed section is
written by the writer registered for it (``register_writer``: e.g. on-call
rotations), in the same transaction, so a file is stored as a whole or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.organisation import (
    MemberRecord,
    OrganisationDiff,
    OrganisationWrite,
    RuleRecord,
    TeamRecord,
)
from caseapi.organisation import sync_organisation as store_organisation
from nms.organisation.model import Organisation

#: A section writer: what ``Organisation.sections[name]`` holds (``None``: the file
#: has no such section) -> its write (run inside the sync's transaction).
SectionWriter = Callable[[object, Organisation], OrganisationWrite]

_WRITERS: dict[str, SectionWriter] = {}

#: An organisation with nothing in it (no file configured).
EMPTY: Final = Organisation()


def register_writer(name: str, writer: SectionWriter) -> None:
    """Store section ``name`` of organisation files with ``writer``."""
    _WRITERS[name] = writer


async def sync_organisation(
    sessionmaker: async_sessionmaker[AsyncSession], organisation: Organisation
) -> OrganisationDiff:
    """Make the case service's teams, members and routing rules match ``organisation``."""
    # Every registered writer runs, with ``None`` for a section the file lacks: a
    # section taken out of the file is emptied, not left as it was.
    also = [
        writer(organisation.sections.get(name), organisation) for name, writer in _WRITERS.items()
    ]
    return await store_organisation(
        sessionmaker,
        teams=[
            TeamRecord(
                id=t.id,
                name=t.name,
                level=t.level,
                timezone=t.timezone,
                calendar=t.calendar,
                members=t.members,
                expertise=t.expertise.model_dump(),
            )
            for t in organisation.teams
        ],
        members=[
            MemberRecord(
                id=m.id,
                name=m.name,
                email=m.email,
                timezone=m.timezone,
                language=m.language,
                webhook=m.webhook,
                mqtt=m.mqtt,
            )
            for m in organisation.members
        ],
        rules=[
            RuleRecord(team=r.team, when=r.when.conditions() if r.when is not None else {})
            for r in organisation.routing
        ],
        also=also,
    )
