"""caseapi.core.pdf: real PDFs, read back with poppler (pdftotext, pdfinfo, pdftoppm)."""

from __future__ import annotations

import re
import zlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from caseapi.core.pdf import DEFAULT_FONT, Bar, PdfDocument, transliterate
from tests.caseapi.pdf_tools import page_count, pdf_text, render_pages, require_poppler
from tests.conftest import require

AT = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
UNICODE = "Störung in Łódź — “Glasfaser” αβγ ≥ 99,9 % … ok"


@pytest.fixture(autouse=True)
def _poppler() -> None:
    require_poppler()


def _font() -> Path:
    require(DEFAULT_FONT.is_file(), f"needs {DEFAULT_FONT} (Debian fonts-dejavu-core)")
    return DEFAULT_FONT


def _document(font: Path | None, rows: int = 3) -> PdfDocument:
    doc = PdfDocument(title="Monthly service report", subtitle=UNICODE, generated_at=AT, font=font)
    doc.heading("Summary")
    doc.paragraph("Availability of the fleet was 99.953 % this month.")
    doc.key_values([("Customer", "ACME GmbH"), ("Outage minutes", "41")])
    doc.table(
        ["Case", "Minutes"],
        [[f"CASE-{i:04d}", str(i)] for i in range(rows)],
        col_widths=(3, 1),
        align=("L", "R"),
    )
    doc.bar_chart([Bar("Site Nord", 99.953), Bar("Site Süd", 87.5)])
    return doc


def test_text_and_figures_read_back_and_pages_render(tmp_path: Path) -> None:
    data = _document(_font()).output()
    assert data.startswith(b"%PDF-")
    text = pdf_text(data, tmp_path)
    for expected in (
        "Monthly service report",
        "Availability of the fleet was 99.953 %",
        "ACME GmbH",
        "Outage minutes",
        "CASE-0002",
        "Site Süd",
        "99.95 %",
        "87.50 %",
        "Generated 2026-12-06 09:30 UTC",
        "Page 1 of 1",
    ):
        assert expected in text, expected
    assert len(render_pages(data, tmp_path)) == 1


def test_unicode_round_trips_with_the_ttf(tmp_path: Path) -> None:
    doc = PdfDocument(title="Unicode", generated_at=AT, font=_font())
    assert doc.unicode
    doc.paragraph(UNICODE)
    assert UNICODE in pdf_text(doc.output(), tmp_path)


def test_missing_font_falls_back_to_helvetica_with_transliteration(tmp_path: Path) -> None:
    doc = _document(tmp_path / "no-such-font.ttf")
    assert not doc.unicode
    doc.paragraph(UNICODE)
    data = doc.output()
    text = pdf_text(data, tmp_path)
    # Latin-1 stays, the rest is transliterated, never an exception.
    assert 'Störung in ?ódz -- "Glasfaser" ??? >= 99,9 % ... ok' in text
    assert "Site Süd" in text
    assert "Helvetica" in data.decode("latin-1")
    render_pages(data, tmp_path)


def test_no_font_at_all_is_the_core_font(tmp_path: Path) -> None:
    doc = PdfDocument(title="Plain", generated_at=AT, font=None)
    assert not doc.unicode
    doc.paragraph("plain ascii")
    assert "plain ascii" in pdf_text(doc.output(), tmp_path)


def test_transliterate() -> None:
    assert transliterate("Ærø café") == "Ærø café"  # Latin-1 as it is
    assert transliterate("Łódź") == "?ódz"
    assert transliterate("ő ş ž") == "o s z"
    quotes = "a\u2013b \u2014 \u201cc\u201d \u2018d\u2019 \u2026"
    assert transliterate(quotes) == "a-b -- \"c\" 'd' ..."
    assert transliterate("5 € ≤ 6 → 7") == "5 EUR <= 6 -> 7"
    assert transliterate("日本") == "??"
    assert transliterate("ﬁ") == "fi"  # NFKD unfolds the ligature


def test_long_words_and_paragraphs_wrap_inside_the_page(tmp_path: Path) -> None:
    word = "Donaudampfschifffahrtsgesellschaftskapitän" * 6
    doc = PdfDocument(title="Wrap", generated_at=AT, font=_font())
    doc.paragraph(("fibre cut near the cabinet " * 60) + word)
    doc.key_values([("Root cause", word)])
    data = doc.output()
    text = pdf_text(data, tmp_path, layout=True)
    lines = [line for line in text.splitlines() if line.strip()]
    # Wrapped: many lines, none wider than an A4 text line can be.
    assert len(lines) > 10
    assert max(len(line) for line in lines) < 130
    # The long word is broken, not lost: all its letters are there in order.
    joined = re.sub(r"\s+", "", pdf_text(data, tmp_path))
    assert word + "RootCause" in joined or word in joined


def test_table_across_pages_repeats_its_header(tmp_path: Path) -> None:
    doc = _document(_font(), rows=150)
    data = doc.output()
    pages = page_count(data, tmp_path)
    assert pages >= 3
    assert doc.pages == pages
    text = pdf_text(data, tmp_path)
    # The header row starts the table on every page it spans.
    page_texts = text.split("\f")
    with_header = [p for p in page_texts if re.search(r"^Case\s*\n?\s*Minutes", p, re.M)]
    assert len(with_header) == pages
    assert all(f"CASE-{i:04d}" in text for i in range(150))
    assert f"Page {pages} of {pages}" in text
    assert len(render_pages(data, tmp_path)) == pages


def test_bar_chart_draws_rectangles_in_proportion(tmp_path: Path) -> None:
    doc = PdfDocument(title="Chart", generated_at=AT, font=_font())
    doc.bar_chart([Bar("full", 100.0), Bar("half", 50.0), Bar("none", 0.0), Bar("over", 140.0)])
    data = doc.output()
    # Filled rectangles ("x y w h re f") in page units; the track is as wide as a
    # full bar, the half bar half of it; nothing drawn for 0, 140 clamped to 100.
    content = _page_content(data)
    widths = [float(w) for w in re.findall(r"[\d.]+ [\d.]+ ([\d.]+) -?[\d.]+ re f", content)]
    track = max(widths)
    assert widths.count(track) == 4 + 2  # four tracks, the full bar and the clamped one
    assert any(abs(w - track / 2) < 0.01 for w in widths)
    assert len(widths) == 4 + 3  # four tracks, three bars
    text = pdf_text(data, tmp_path)
    assert "50.00 %" in text and "140.00 %" in text
    render_pages(data, tmp_path)


def _page_content(data: bytes) -> str:
    """The drawing operators of the PDF's (zlib-compressed) streams, as text."""
    out = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            out.append(zlib.decompress(stream).decode("latin-1"))
        except zlib.error:
            continue  # not a deflated stream (fonts are deflated too; harmless)
    return "\n".join(out)


def test_same_input_same_bytes(tmp_path: Path) -> None:
    first = _document(_font()).output()
    assert _document(_font()).output() == first
    later = _document(_font())
    later.paragraph("one more line")
    assert later.output() != first
    other_time = PdfDocument(title="Monthly service report", generated_at=AT + timedelta(1))
    assert (
        other_time.output() != PdfDocument(title="Monthly service report", generated_at=AT).output()
    )


def test_generation_time_is_shown_in_utc(tmp_path: Path) -> None:
    vienna = AT.astimezone(timezone(timedelta(hours=1)))
    doc = PdfDocument(title="T", generated_at=vienna, font=_font())
    assert "Generated 2026-12-06 09:30 UTC" in pdf_text(doc.output(), tmp_path)


def test_naive_generation_time_and_ragged_rows_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        PdfDocument(title="T", generated_at=datetime(2026, 1, 1))
    doc = PdfDocument(title="T", generated_at=AT, font=None)
    with pytest.raises(ValueError, match="row 1 has 1 cells, expected 2"):
        doc.table(["a", "b"], [["1", "2"], ["3"]])
    with pytest.raises(ValueError, match="col_widths"):
        doc.table(["a", "b"], [], col_widths=(1,))
