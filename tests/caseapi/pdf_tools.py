"""Read PDFs back with Debian's poppler-utils (``pdftotext``, ``pdftoppm``, ``pdfinfo``).

Shared by the PDF tests: a PDF is real when poppler parses it, its text holds the
figures and every page renders to PNG.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import require

#: Seconds any one poppler command may take (a few pages take milliseconds).
TIMEOUT = 30


def require_poppler() -> None:
    """Skip (fail under CI) when poppler-utils is not installed (scripts/setup --dev)."""
    for tool in ("pdftotext", "pdftoppm", "pdfinfo"):
        require(shutil.which(tool) is not None, f"needs {tool} (Debian poppler-utils)")


def pdf_text(data: bytes, tmp_path: Path, *, layout: bool = False) -> str:
    """The text of the PDF ``data`` as ``pdftotext`` extracts it."""
    source = tmp_path / "text-input.pdf"
    source.write_bytes(data)
    args = ["pdftotext", "-enc", "UTF-8", *(["-layout"] if layout else []), str(source), "-"]
    done = subprocess.run(args, capture_output=True, check=True, timeout=TIMEOUT)
    return done.stdout.decode("utf-8")


def page_count(data: bytes, tmp_path: Path) -> int:
    """The number of pages ``pdfinfo`` reports."""
    source = tmp_path / "info-input.pdf"
    source.write_bytes(data)
    done = subprocess.run(
        ["pdfinfo", str(source)], capture_output=True, check=True, timeout=TIMEOUT, text=True
    )
    for line in done.stdout.splitlines():
        if line.startswith("Pages:"):
            return int(line.split()[1])
    raise AssertionError(f"pdfinfo gave no page count:\n{done.stdout}")


def render_pages(data: bytes, tmp_path: Path, *, dpi: int = 50) -> list[Path]:
    """Render every page to PNG with ``pdftoppm``; fails on any error poppler reports.

    Returns:
        The PNG files, one per page, in page order.
    """
    source = tmp_path / "render-input.pdf"
    source.write_bytes(data)
    out = tmp_path / "page"
    done = subprocess.run(
        ["pdftoppm", "-r", str(dpi), "-png", str(source), str(out)],
        capture_output=True,
        timeout=TIMEOUT,
        text=True,
    )
    # pdftoppm exits 0 on some damage but says so on stderr: either is a failure.
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    pages = sorted(tmp_path.glob("page-*.png"))
    for png in pages:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert png.stat().st_size > 1000, f"{png} is empty"
    return pages
