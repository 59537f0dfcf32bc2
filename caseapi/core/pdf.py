"""Small PDF primitives on fpdf2, shared by the RFO and the service reports.

A :class:`PdfDocument` lays out one A4 portrait document from the top down: a title
block, headings, wrapped paragraphs, bullet lists, key/value tables, data tables
whose header row repeats on every page, and a horizontal bar chart drawn with
rectangles (values 0-100 %). Every page has a running header (the title) and a footer
with "Page n of N" and the generation time.

Deterministic: the same input gives the same bytes. The generation time is passed
in (never read from a clock) and is also the PDF's creation date; fpdf2 derives the
file identifier from the content, and nothing else varies between runs.

Fonts: DejaVu Sans from Debian's ``fonts-dejavu-core`` (any Unicode text). When that
font is missing the document falls back to the PDF core font Helvetica, which holds
only Latin-1: every other character is transliterated (:func:`transliterate`: dashes,
quotes, ellipsis and the like get their ASCII forms, accented letters lose the
accent, anything else becomes ``?``) rather than failing the whole document.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from fpdf import FPDF
from fpdf.enums import (
    Align,
    TableBordersLayout,
    TableHeadingsDisplay,
    VAlign,
    WrapMode,
    XPos,
    YPos,
)
from fpdf.fonts import FontFace

#: Where Debian's ``fonts-dejavu-core`` installs its TrueType files.
DEJAVU_DIR: Final = Path("/usr/share/fonts/truetype/dejavu")
DEFAULT_FONT: Final = DEJAVU_DIR / "DejaVuSans.ttf"
DEFAULT_BOLD_FONT: Final = DEJAVU_DIR / "DejaVuSans-Bold.ttf"

_FAMILY: Final = "body"
_CORE_FAMILY: Final = "helvetica"
_MARGIN: Final = 18.0  # mm
_BODY_SIZE: Final = 10.0
_LINE: Final = 5.0  # mm per line of body text
_GREY: Final = (90, 90, 90)
_BAR_COLOUR: Final = (46, 117, 182)
_BAR_TRACK: Final = (225, 229, 235)
_HEADING_FILL: Final = (230, 236, 244)

#: Transliterations for the core-font fallback, for characters NFKD does not reduce
#: to Latin-1 (``unicodedata`` decomposes accents and ligatures; these it cannot).
_ASCII: Final = {
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "--",
    "\u2015": "--",
    "\u2212": "-",
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2026": "...",
    "\u2022": "*",
    "\u2192": "->",
    "\u2190": "<-",
    "\u2264": "<=",
    "\u2265": ">=",
    "\u2248": "~",
    "\u2260": "!=",
    "\u20ac": "EUR",
    "\u2122": "(TM)",
    "\u00a0": " ",
    "\u202f": " ",
    "\u2009": " ",
    "\u200b": "",
    "\ufeff": "",
}


def transliterate(text: str) -> str:
    """Reduce ``text`` to Latin-1 for the core font (used when no TTF is available).

    Latin-1 characters stay; known punctuation gets its ASCII form; other letters are
    decomposed (NFKD) and lose their combining marks (``Ł`` has no decomposition and
    becomes ``?``, ``ő`` becomes ``o``); whatever is left becomes ``?``.
    """
    out: list[str] = []
    for char in text:
        if ord(char) < 256:
            out.append(char)
        elif char in _ASCII:
            out.append(_ASCII[char])
        else:
            base = "".join(
                part
                for part in unicodedata.normalize("NFKD", char)
                if not unicodedata.combining(part)
            )
            out.append(base if base and all(ord(c) < 256 for c in base) else "?")
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of :meth:`PdfDocument.bar_chart`: a label and a percentage."""

    label: str
    value: float


def _utc_label(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


class _Canvas(FPDF):
    """fpdf2's ``FPDF`` with our running header and footer."""

    def __init__(self, *, running_title: str, footer_left: str, family: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.running_title = running_title
        self.footer_left = footer_left
        self.family = family

    def header(self) -> None:
        if self.page_no() == 1:
            return  # the first page carries the full title block instead
        self.set_font(self.family, "", 8)
        self.set_text_color(*_GREY)
        self.cell(0, 5, self.running_title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(*_GREY)
        self.line(self.l_margin, self.y, self.w - self.r_margin, self.y)
        self.ln(4)
        self.set_text_color(0, 0, 0)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.family, "", 8)
        self.set_text_color(*_GREY)
        self.cell(0, 5, self.footer_left, align=Align.L)
        self.set_x(self.l_margin)
        self.cell(0, 5, f"Page {self.page_no()} of {{nb}}", align=Align.R)
        self.set_text_color(0, 0, 0)


class PdfDocument:
    """One PDF document, laid out top-down by its methods; :meth:`output` gives the bytes.

    Example::

        doc = PdfDocument(title="Monthly report", generated_at=now)
        doc.heading("Availability")
        doc.bar_chart([Bar("site A", 99.95)])
        data = doc.output()
    """

    def __init__(
        self,
        *,
        title: str,
        generated_at: datetime,
        subtitle: str | None = None,
        font: Path | None = DEFAULT_FONT,
        bold_font: Path | None = DEFAULT_BOLD_FONT,
    ) -> None:
        """Start a document with its title block on the first page.

        Args:
            title: Document title (title block, running header, PDF metadata).
            generated_at: When it was generated (timezone-aware): footer and the
                PDF creation date. Passed in so that output is deterministic.
            subtitle: A line under the title.
            font: The TrueType font for all text; ``None`` or a missing file falls
                back to the core font Helvetica with transliterated text.
            bold_font: Its bold face; the regular face is used when missing.

        Raises:
            ValueError: ``generated_at`` is naive.
        """
        if generated_at.tzinfo is None or generated_at.utcoffset() is None:
            raise ValueError("generated_at must be timezone-aware")
        self.unicode = font is not None and font.is_file()
        family = _FAMILY if self.unicode else _CORE_FAMILY
        self._pdf = _Canvas(
            running_title=self.text(title),
            footer_left=self.text(f"Generated {_utc_label(generated_at)}"),
            family=family,
        )
        pdf = self._pdf
        if self.unicode:
            assert font is not None
            pdf.add_font(_FAMILY, "", str(font))
            bold = bold_font if bold_font is not None and bold_font.is_file() else font
            pdf.add_font(_FAMILY, "B", str(bold))
        self._family = family
        pdf.set_creation_date(generated_at.astimezone(UTC))
        pdf.set_title(self.text(title))
        pdf.set_creator("nms caseapi")
        pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
        pdf.set_auto_page_break(auto=True, margin=_MARGIN)
        pdf.alias_nb_pages()
        pdf.add_page()
        pdf.set_font(family, "B", 18)
        pdf.multi_cell(0, 8, self.text(title), align=Align.L, new_x=XPos.LMARGIN)
        if subtitle:
            pdf.set_font(family, "", 11)
            pdf.set_text_color(*_GREY)
            pdf.multi_cell(0, 6, self.text(subtitle), align=Align.L, new_x=XPos.LMARGIN)
            pdf.set_text_color(0, 0, 0)
        pdf.ln(4)
        self._body()

    # -- text -------------------------------------------------------------------------

    def text(self, value: str) -> str:
        """``value`` as it can be drawn with this document's font."""
        return value if self.unicode else transliterate(value)

    def _body(self, style: str = "") -> None:
        self._pdf.set_font(self._family, style, _BODY_SIZE)

    def heading(self, text: str, *, level: int = 1) -> None:
        """A section heading (``level`` 1 or 2); never left alone at a page's foot."""
        size = 14.0 if level == 1 else 11.5
        pdf = self._pdf
        # A heading needs its first lines of content under it on the same page.
        if pdf.will_page_break(size + 3 * _LINE):
            pdf.add_page()
        pdf.ln(3 if level == 1 else 1.5)
        pdf.set_font(self._family, "B", size)
        pdf.multi_cell(0, size * 0.5, self.text(text), align=Align.L, new_x=XPos.LMARGIN)
        pdf.ln(1.5)
        self._body()

    def paragraph(self, text: str, *, muted: bool = False) -> None:
        """Wrapped text; blank-line separated paragraphs and line breaks are kept.

        Words longer than a line are broken where they reach the margin.
        """
        pdf = self._pdf
        self._body()
        if muted:
            pdf.set_text_color(*_GREY)
        pdf.multi_cell(
            0,
            _LINE,
            self.text(text.strip() or "-"),
            align=Align.L,
            new_x=XPos.LMARGIN,
            wrapmode=WrapMode.WORD,
        )
        pdf.set_text_color(0, 0, 0)
        pdf.ln(2)

    def bullets(self, items: Sequence[str]) -> None:
        """A bullet list; each item wraps under its own text, not under the bullet."""
        pdf = self._pdf
        self._body()
        indent = 5.0
        for item in items:
            pdf.set_x(pdf.l_margin)
            pdf.cell(indent, _LINE, "\u2022" if self.unicode else "-")
            pdf.multi_cell(
                pdf.epw - indent,
                _LINE,
                self.text(item),
                align=Align.L,
                new_x=XPos.LMARGIN,
                wrapmode=WrapMode.WORD,
            )
        pdf.ln(2)

    # -- tables -----------------------------------------------------------------------

    def key_values(self, rows: Sequence[tuple[str, str]], *, key_width: float = 0.35) -> None:
        """A two-column table of labels (bold) and values.

        Args:
            rows: ``(label, value)`` pairs, in order.
            key_width: The label column's share of the page width.
        """
        if not rows:
            return
        pdf = self._pdf
        self._body()
        widths = (key_width, 1.0 - key_width)
        with pdf.table(
            col_widths=widths,
            first_row_as_headings=False,
            borders_layout=TableBordersLayout.HORIZONTAL_LINES,
            v_align=VAlign.T,
            text_align=(Align.L, Align.L),
            line_height=_LINE,
            padding=(1.0, 1.5),
            wrapmode=WrapMode.WORD,
        ) as table:
            for key, value in rows:
                row = table.row()
                row.cell(self.text(key), style=FontFace(emphasis="BOLD"))
                row.cell(self.text(value or "-"))
        pdf.ln(3)

    def table(
        self,
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        *,
        col_widths: Sequence[float] | None = None,
        align: Sequence[str] | None = None,
    ) -> None:
        """A data table; its header row is repeated at the top of every page it spans.

        Args:
            header: Column titles.
            rows: Cell texts, one sequence per row (each as long as ``header``).
            col_widths: Relative column widths (default: equal).
            align: Per column ``"L"``, ``"C"`` or ``"R"`` (default: all left).

        Raises:
            ValueError: A row, ``col_widths`` or ``align`` does not match the header.
        """
        columns = len(header)
        for index, row_cells in enumerate(rows):
            if len(row_cells) != columns:
                raise ValueError(f"row {index} has {len(row_cells)} cells, expected {columns}")
        if col_widths is not None and len(col_widths) != columns:
            raise ValueError("col_widths must give one width per column")
        if align is not None and len(align) != columns:
            raise ValueError("align must give one alignment per column")
        pdf = self._pdf
        self._body()
        # A header row alone at the foot of a page helps nobody.
        if pdf.will_page_break(3 * (_LINE + 2)):
            pdf.add_page()
        with pdf.table(
            col_widths=tuple(col_widths) if col_widths else None,
            first_row_as_headings=True,
            repeat_headings=TableHeadingsDisplay.ON_TOP_OF_EVERY_PAGE,
            headings_style=FontFace(emphasis="BOLD", fill_color=_HEADING_FILL),
            borders_layout=TableBordersLayout.SINGLE_TOP_LINE,
            v_align=VAlign.T,
            text_align=tuple(align) if align else Align.L,
            line_height=_LINE,
            padding=(1.0, 1.5),
            wrapmode=WrapMode.WORD,
        ) as table:
            table.row([self.text(title) for title in header])
            for row_cells in rows:
                table.row([self.text(str(cell)) if str(cell) else "-" for cell in row_cells])
        pdf.ln(3)

    # -- chart ------------------------------------------------------------------------

    def bar_chart(
        self,
        bars: Sequence[Bar],
        *,
        label_width: float = 55.0,
        decimals: int = 2,
    ) -> None:
        """A horizontal bar chart of percentages (each value clamped to 0-100).

        Each bar is a grey track of the full width with a coloured bar of the value's
        share over it, the label on the left and the value (``99.95 %``) on the right.

        Args:
            bars: The bars, top to bottom.
            label_width: Width of the label column (mm); longer labels are cut with
                an ellipsis.
            decimals: Decimals of the value printed beside each bar.
        """
        pdf = self._pdf
        self._body()
        bar_height = 4.0
        pitch = 6.5
        value_width = 22.0
        track = pdf.epw - label_width - value_width - 2.0
        for bar in bars:
            if pdf.will_page_break(pitch):
                pdf.add_page()
                self._body()
            y = pdf.y
            x = pdf.l_margin
            pdf.set_xy(x, y)
            pdf.cell(label_width, pitch, self._fit(self.text(bar.label), label_width - 1.0))
            value = min(max(bar.value, 0.0), 100.0)
            top = y + (pitch - bar_height) / 2
            pdf.set_fill_color(*_BAR_TRACK)
            pdf.rect(x + label_width, top, track, bar_height, style="F")
            if value > 0:
                pdf.set_fill_color(*_BAR_COLOUR)
                pdf.rect(x + label_width, top, track * value / 100.0, bar_height, style="F")
            pdf.set_xy(x + label_width + track + 2.0, y)
            pdf.cell(value_width, pitch, f"{bar.value:.{decimals}f} %", align=Align.R)
            pdf.set_xy(x, y + pitch)
        pdf.set_fill_color(255, 255, 255)  # tables drawn next fill their rows with it
        pdf.ln(3)

    def _fit(self, text: str, width: float) -> str:
        """``text`` cut (with an ellipsis) to fit ``width`` mm in the current font."""
        pdf = self._pdf
        if pdf.get_string_width(text) <= width:
            return text
        ellipsis = "\u2026" if self.unicode else "..."
        while text and pdf.get_string_width(text + ellipsis) > width:
            text = text[:-1]
        return text + ellipsis

    # -- output -----------------------------------------------------------------------

    def spacer(self, height: float = 4.0) -> None:
        """Vertical space of ``height`` mm."""
        self._pdf.ln(height)

    @property
    def pages(self) -> int:
        """Pages laid out so far."""
        count: int = self._pdf.pages_count
        return count

    def output(self) -> bytes:
        """The finished PDF (call once, after the last element)."""
        return bytes(self._pdf.output())
