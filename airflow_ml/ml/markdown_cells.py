"""Data as inert markdown text: a slice value, a city's name or a trigger's reason shown in the approval body.

Airflow renders a HITL body as GitHub-flavoured markdown (raw HTML dropped): a ``|`` in a value would split
its table cell, a backtick close a code span, ``![..](..)`` load an outside image, a newline end the table.
"""

from __future__ import annotations

import re
from typing import Any

#: Every character markdown or GFM gives a meaning inline (CommonMark lets any ASCII punctuation be escaped).
_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~&$])")
#: Where GFM's autolinks start (``http://``, ``www.``, ``name@host``). Airflow's renderer finds them in the
#: parsed text, after escapes are gone, so a zero-width space goes in the middle: shown as written, no link.
_AUTOLINK = re.compile(r"(?i)(?:(?<=https:)|(?<=http:)|(?<=ftp:))(?=//)|(?<=www)(?=\.)|(?<=@)")
_ZERO_WIDTH_SPACE = "\u200b"
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c]+")


def md_cell(value: Any, *, limit: int | None = 80) -> str:
    """``value`` as one line of literal markdown text, at most ``limit`` characters of it (then ``…``).

    Line breaks become spaces, every markdown-active character is backslash-escaped (links, images, code
    spans, emphasis, HTML, table pipes) and a bare URL or e-mail address gets a zero-width space after its
    ``http:``, ``www`` or ``@`` (no autolink), so the text renders as given, in one cell.
    """
    text = _LINE_BREAKS.sub(" ", str(value))
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return _SPECIAL.sub(r"\\\1", _AUTOLINK.sub(_ZERO_WIDTH_SPACE, text))
