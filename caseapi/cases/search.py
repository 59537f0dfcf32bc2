"""The ``q`` of ``GET /v1/cases``: what a search box's text means, with no SQL.

A search is a list of *terms*, the whitespace-separated parts of the text, all of
which must match (AND), each anywhere in the case: its reference, summary and
description, or one of its comments the caller may read. A term is split into
*tokens*, its runs of letters and digits; everything else (punctuation, quotes,
``*``, ``:``, ``&``, ``|``, ``!``, parentheses) only separates tokens, so no
character of ``q`` reaches either database's query syntax. A term of several
tokens is a phrase: its tokens must follow each other, which is how
``CS-2026-000042`` finds that case and not one whose text holds ``cs``, ``2026``
and ``000042`` apart. ``AND``, ``OR``, ``NOT`` and ``NEAR`` are words like any other.

The last term matches as a prefix (a search box is typed left to right:
``restar`` finds "restarted"), unless the text ends with a space or the term is a
whole case reference, which matches only that reference.

The documents are tokenised the same way on both backends (runs of letters and
digits, case-folded, no stemming, accents kept), so a search means the same on
SQLite and PostgreSQL; ``render_fts5`` and ``render_tsquery`` write a term in each
syntax.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Final

#: Longest ``q`` accepted (characters), documented in the API.
MAX_SEARCH_LENGTH: Final = 200
#: Most distinct terms in one search: each is an index lookup on every searched
#: table, and a search box rarely holds more than a few words.
MAX_SEARCH_TERMS: Final = 16

_TOKEN: Final = re.compile(r"[^\W_]+")
#: A whole case reference (``caseapi.cases.repository.format_case_ref``).
_CASE_REF: Final = re.compile(r"CS-\d{4}-\d{6,}", re.IGNORECASE)


class SearchSyntaxError(ValueError):
    """A search text that cannot be searched for (the message says why)."""


@dataclass(frozen=True, slots=True)
class Term:
    """Tokens that must appear one after the other; ``prefix``: the last may go on."""

    tokens: tuple[str, ...]
    prefix: bool


@dataclass(frozen=True, slots=True)
class Search:
    """A parsed search: every term must match."""

    terms: tuple[Term, ...]


def parse_search(text: str) -> Search:
    """Parse a search box's text.

    Raises:
        SearchSyntaxError: Longer than ``MAX_SEARCH_LENGTH``, more than ``MAX_SEARCH_TERMS``
            different words, or without a letter or digit.
    """
    if len(text) > MAX_SEARCH_LENGTH:
        raise SearchSyntaxError(f"at most {MAX_SEARCH_LENGTH} characters, got {len(text)}")
    words = text.split()
    terms: list[Term] = []
    for word in words:
        tokens = tuple(_lower(token) for token in _TOKEN.findall(word))
        if tokens:
            terms.append(Term(tokens=tokens, prefix=False))
    if not terms:
        raise SearchSyntaxError("must contain a letter or a digit")
    last = words[-1]
    typing = not text[-1].isspace() and _CASE_REF.fullmatch(last.strip("\"'()[]<>.,;")) is None
    if typing and _TOKEN.search(last):
        terms[-1] = Term(tokens=terms[-1].tokens, prefix=True)
    # A repeated word asks nothing more.
    distinct = tuple(dict.fromkeys(terms))
    if len(distinct) > MAX_SEARCH_TERMS:
        raise SearchSyntaxError(f"at most {MAX_SEARCH_TERMS} different words, got {len(distinct)}")
    return Search(terms=distinct)


def _lower(token: str) -> str:
    # Both databases fold case themselves, each as it folds the indexed text; this
    # only makes one search one cursor however ASCII is typed. Other letters are left
    # to them: Python knows newer letters than SQLite's tokeniser (U+037F, Unicode 7),
    # and lowering those here would look for a word the index never holds.
    return token.translate(_ASCII_LOWER)


_ASCII_LOWER: Final = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def render_fts5(term: Term) -> str:
    """``term`` as an SQLite FTS5 query: a quoted phrase, ``*`` for a prefix.

    Tokens are letters and digits only, so the double quotes need no escaping.
    """
    return f'"{" ".join(term.tokens)}"' + ("*" if term.prefix else "")


def render_tsquery(term: Term) -> str:
    """``term`` as PostgreSQL ``to_tsquery`` text: lexemes joined by ``<->``, ``:*``
    for a prefix.

    Each token is a quoted lexeme of letters and digits only (nothing to escape).
    """
    lexemes = [f"'{token}'" for token in term.tokens]
    if term.prefix:
        lexemes[-1] += ":*"
    return " <-> ".join(lexemes)
