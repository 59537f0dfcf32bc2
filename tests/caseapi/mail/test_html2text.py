"""HTML to safe text, and charset fallbacks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caseapi.mail.html2text import decode_bytes, html_to_text


def test_scripts_styles_head_and_remote_content_are_dropped() -> None:
    text = html_to_text(
        "<html><head><title>T</title><style>p{}</style></head><body>"
        "<script>steal()</script><p>Visible</p><img src='https://t.example/p.gif'>"
        "<iframe src='https://evil.example'>inner</iframe><noscript>ns</noscript></body></html>"
    )
    assert text == "Visible"


def test_links_keep_text_and_show_the_target_but_never_javascript() -> None:
    text = html_to_text(
        "<p><a href='https://x.example/a'>docs</a>, <a href='mailto:n@x.example'>n@x.example</a>,"
        " <a href='javascript:evil()'>click</a>, <a href='https://y.example'>https://y.example</a>"
        "</p>"
    )
    assert text == "docs [https://x.example/a], n@x.example, click, https://y.example"


def test_blocks_lists_tables_entities_and_whitespace() -> None:
    text = html_to_text(
        "<h1>Title</h1>  <div>one\n   two</div><div>three<br>four</div>"
        "<ul><li>a &amp; b</li><li>&lt;c&gt; &euro;&nbsp;1</li></ul>"
        "<table><tr><td>k</td><td>v</td></tr></table><hr><p>end</p>"
    )
    assert text == "Title\n\none two\nthree\nfour\n\n- a & b\n- <c> € 1\n\nk v\n\n----\n\nend"


def test_blockquote_becomes_quoted_lines_and_pre_keeps_layout() -> None:
    text = html_to_text(
        "<div>Reply</div><blockquote><p>old</p><blockquote>older</blockquote></blockquote>"
        "<pre>a  b\n  c</pre>"
    )
    assert text == "Reply\n\n> old\n>\n> > older\n>\na  b\n  c"


def test_images_show_only_their_alt_text() -> None:
    assert html_to_text("<p>Logo: <img src='cid:x' alt='ACME  logo'></p>") == "Logo: [ACME logo]"


@pytest.mark.parametrize(
    "markup", ["<![foo[ bar ]]><p>hi</p>", "<p>hi", "<!-- never closed <p>x", "</p></div>hi<"]
)
def test_malformed_markup_never_raises(markup: str) -> None:
    assert isinstance(html_to_text(markup), str)


def test_unclosed_head_ends_at_body() -> None:
    assert html_to_text("<html><head><title>t</title><meta x><body><p>Kept</p>") == "Kept"


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.text(alphabet=st.sampled_from(list("<>/!-[]&;#abpscript =\"'x\n")), max_size=300))
def test_any_markup_gives_text_without_tags_of_ours(markup: str) -> None:
    text = html_to_text(markup)
    assert isinstance(text, str)
    assert "\x00" not in text


def test_marked_section_fallback_still_drops_scripts() -> None:
    assert html_to_text("<![foo[ x ]]><p>hi</p><script>bad()</script>") == "hi"


@pytest.mark.parametrize(
    ("data", "charset", "text", "defect"),
    [
        ("caffè".encode(), "utf-8", "caffè", None),
        ("caffè".encode(), None, "caffè", None),
        ("caffè".encode("latin-1"), None, "caffè", "no charset declared; decoded as cp1252"),
        ("€".encode("iso-8859-15"), "ISO-8859-15", "€", None),
        ("\u201cq\u201d".encode("cp1252"), "iso-8859-1", "\u201cq\u201d", None),
        ("è".encode(), "iso-8859-1", "è", "charset 'iso-8859-1' did not fit; decoded as utf-8"),
        (
            "è".encode("cp1252"),
            "x-unknown",
            "è",
            "charset 'x-unknown' did not fit; decoded as cp1252",
        ),
        (b"plain", "base64", "plain", None),
        (b"\x81\x8d", "us-ascii", "\x81\x8d", "charset 'us-ascii' did not fit; decoded as latin-1"),
    ],
)
def test_decode_bytes_fallbacks(
    data: bytes, charset: str | None, text: str, defect: str | None
) -> None:
    assert decode_bytes(data, charset) == (text, defect)
