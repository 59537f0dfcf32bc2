"""The organisation file's ``oncall`` and ``escalation`` sections.

Parsed by ``caseapi.organisation.parse_oncall_sections`` (file/line/field problems, the
teams and members of the same file as context) and stored in the sync's transaction
(``replace_rotations`` / ``replace_tiers``): a file without a section clears it.
Importing this module registers both with the loader and the sync.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.organisation import (
    OncallModel,
    OrganisationWrite,
    TeamFacts,
    parse_oncall_sections,
    replace_rotations,
    replace_tiers,
)
from nms.organisation.loader import SectionInput, SectionParser, register_section
from nms.organisation.model import Organisation
from nms.organisation.sync import register_writer


def _parser(name: str) -> SectionParser:
    def parse(section: SectionInput, problems: list[str]) -> object:
        org = section.organisation
        teams = {t.id: TeamFacts(t.timezone, tuple(t.members)) for t in org.teams}
        members = tuple(m.id for m in org.members)
        found, model = parse_oncall_sections({name: section.value}, teams, members, section.source)
        bare = f"{section.source}: "
        # A problem of the section as a whole has no line of its own: the section's.
        problems.extend(
            f"{section.source}:{section.line}: {p.removeprefix(bare)}" if p.startswith(bare) else p
            for p in found
        )
        return model

    return parse


def _rotations(parsed: object, organisation: Organisation) -> OrganisationWrite:
    model = parsed if isinstance(parsed, OncallModel) else None

    async def write(session: AsyncSession) -> None:
        await replace_rotations(session, model.rotations.values() if model else ())

    return write


def _tiers(parsed: object, organisation: Organisation) -> OrganisationWrite:
    model = parsed if isinstance(parsed, OncallModel) else None

    async def write(session: AsyncSession) -> None:
        await replace_tiers(session, model.tiers.values() if model else ())

    return write


_WRITERS: dict[str, Callable[[object, Organisation], OrganisationWrite]] = {
    "oncall": _rotations,
    "escalation": _tiers,
}
for _name, _writer in _WRITERS.items():
    register_section(_name, _parser(_name))
    register_writer(_name, _writer)
