"""Statement texts as the page shows them: values out, shape kept, length capped.

The process list and the slow log show statements with their values (e-mail addresses,
tokens, ...); the dashboard shows their shape, like performance_schema's digest text, so no
customer data reaches a page, a log or a notification through a statement.
"""
from __future__ import annotations

import functools
import re

NOW_TEXT_MAX = 500

_TOKEN = re.compile(r"""
    (?P<ident>`[^`]*`)
  | (?P<hex>\b0x[0-9a-fA-F]+\b | \b[xX]'[0-9a-fA-F]*')
  | (?P<str>'(?:[^'\\]|\\.|'')*(?:'|$) | "(?:[^"\\]|\\.|"")*(?:"|$))
  | (?P<comment>/\*.*?(?:\*/|$) | --[ \t][^\n]* | \#[^\n]*)
  | (?P<num>(?<![\w$.])\d+(?:\.\d*)?(?:[eE][-+]?\d+)? | (?<![\w$.])\.\d+)
  | (?P<ws>\s+)
""", re.X | re.S)
_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)+\s*\)")
_ROWS = re.compile(r"(\(\.\.\.\))(?:\s*,\s*\(\.\.\.\))+")


def normalize_sql(sql: str, limit: int = NOW_TEXT_MAX) -> str:
    """Literals become ``?``, comments go, whitespace collapses; cut at ``limit`` characters."""
    def sub(m: re.Match) -> str:
        kind = m.lastgroup
        if kind in ("hex", "str", "num"):
            return "?"
        if kind in ("comment", "ws"):
            return " "
        return m.group(0)

    text = _TOKEN.sub(sub, sql)
    text = _LIST.sub("(...)", text)
    text = _ROWS.sub(r"\1", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@functools.lru_cache(maxsize=512)
def statement_shape(sql: str) -> str:
    """One form for a statement we send and for its performance_schema digest text, so the
    reader can tell the dashboard's own digests (``SET NAMES `utf8mb4` `` is ``SET NAMES
    utf8mb4``): literals and ``%s`` parameters as ``?``, no backticks, no whitespace, lower case."""
    text = normalize_sql(sql.replace("%s", "?"), 4096).replace("`", "")
    return "".join(text.split()).lower()
