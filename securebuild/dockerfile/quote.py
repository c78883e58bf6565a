"""Go's ``strconv.Quote``, which OpenShift uses for every generated ENV and LABEL key and value.

The quoted form has no raw control character, no raw quote and no raw line break, so a value can
never end its instruction early or start a new one: ``"a\\nFROM evil"`` stays one string. Printable
Unicode is kept as is (``strconv.Quote`` is not ASCII-only), others become ``\\uXXXX``.

Note what Docker then does with it: inside double quotes Docker unescapes only ``\\"``, ``\\\\``
and ``\\$``, so a newline arrives in the image as the two characters ``\\n`` (as on OpenShift), and
``$NAME`` is expanded (as on OpenShift).
"""

from __future__ import annotations

_SHORT_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def _escape(ch: str) -> str:
    if ch in ('"', "\\"):
        return "\\" + ch
    code = ord(ch)
    if 0xD800 <= code <= 0xDFFF:  # a lone surrogate is not valid UTF-8: Go sees U+FFFD
        return "\ufffd"
    if ch.isprintable():
        return ch
    if ch in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[ch]
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def go_quote(value: str) -> str:
    """``strconv.Quote(value)``."""
    return '"' + "".join(_escape(ch) for ch in value) + '"'


def render_pairs(pairs: list[tuple[str, str]]) -> str:
    """``"K1"="V1" "K2"="V2"``: the argument text of a generated ENV or LABEL."""
    return " ".join(f"{go_quote(key)}={go_quote(value)}" for key, value in pairs)


def docker_unquote(word: str) -> str:
    """What Docker makes of one double-quoted word (for tests and for reading ENV back)."""
    if len(word) < 2 or word[0] != '"' or word[-1] != '"':
        raise ValueError(f"not a double-quoted word: {word!r}")
    out: list[str] = []
    body = word[1:-1]
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] in '"\\$':
            out.append(body[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)
