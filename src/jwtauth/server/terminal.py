"""Text for a person's terminal: what came from outside is shown, never obeyed.

An attempted username, a user agent or a path reaches ``jwtauth audit tail``, the user
and key listings, error messages and the text log format. Printed raw, a newline in it
forges a line (``... login_succeeded user=admin``), an ESC or C1 sequence drives the
operator's terminal (clear the screen, retitle the window, rewrite what is shown), and a
bidi control reorders what is displayed (Trojan Source, CVE-2021-42574). ``printable``
replaces every such character with a visible escape: ``\\n``, ``\\x1b``, ``\\u202e``.

Escaped: C0 controls (U+0000-U+001F, tab and newline included: one record is one line),
DEL (U+007F), C1 controls (U+0080-U+009F), and the bidi controls U+061C, U+200E, U+200F,
U+202A-U+202E and U+2066-U+2069. JSON output needs none of this when dumped with
``json.dumps``' default ``ensure_ascii``; JSON dumped without it (the JSON log lines, which
keep other non-ASCII text readable) goes through ``printable_json``.
"""

from __future__ import annotations

_CODEPOINTS = [
    *range(0x00, 0x20), 0x7F, *range(0x80, 0xA0),
    0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A),
]
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPES = {
    code: _NAMED.get(chr(code)) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    for code in _CODEPOINTS
}


# For JSON text that was dumped with ensure_ascii=False (the JSON log lines): JSON has
# escaped the C0 controls already; these may only occur inside strings, where a \u
# escape means the same character.
_JSON_ESCAPES = {code: f"\\u{code:04x}" for code in _CODEPOINTS if code >= 0x7F}


def printable(text: str) -> str:
    """``text`` with every control and bidi character written as a visible escape."""
    return text.translate(_ESCAPES)


def printable_json(text: str) -> str:
    """JSON text with DEL, the C1 controls and the bidi controls as ``\\u`` escapes:
    the same JSON value, and nothing a terminal would act on."""
    return text.translate(_JSON_ESCAPES)


__all__ = ["printable", "printable_json"]
