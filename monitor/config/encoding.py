"""Names of the text encodings input files may be read in (the ``encoding`` setting and
every ``--encoding`` option): ``auto`` or a text codec Python knows."""

from __future__ import annotations

import codecs

from ..errors import did_you_mean

AUTO = "auto"  # UTF-8 (with or without a byte-order mark), else GB18030 — decided per file
# Offered by "did you mean" (any text codec Python knows is accepted).
KNOWN = (AUTO, "utf-8", "utf-8-sig", "gb18030", "gbk", "gb2312", "big5", "utf-16", "latin-1")


class EncodingProblem(ValueError):
    """An encoding name Python does not know; the message suggests one."""


def check_encoding(name: str) -> str:
    """``name`` if it is ``auto`` or a text encoding Python knows, else :class:`EncodingProblem`."""
    if name.strip().lower() == AUTO:
        return AUTO
    try:
        text_codec = codecs.lookup(name)._is_text_encoding
    except LookupError:
        text_codec = False
    if not text_codec:
        raise EncodingProblem(
            f"unknown encoding '{name}'{did_you_mean(name.lower(), KNOWN)}; use auto (UTF-8, "
            "else GB18030), utf-8, gb18030 (covers gbk), big5 or another Python codec name")
    return name
