"""Names a card embosser can print: upper-case A–Z, space and a few marks, at most 26 characters.

Names are transliterated with anyascii (Zażółć → ZAZOLC, Владимир → VLADIMIR, 李小龍 → LIXIAOLONG),
never with a hand table, then stripped of anything an embosser cannot print.
"""

import re

from anyascii import anyascii

MAX_LENGTH = 26
_NOT_EMBOSSABLE = re.compile(r"[^A-Z .'\-]")
_SPACES = re.compile(r"\s+")


def embossable(text: str) -> str:
    upper = anyascii(text).upper()
    return _SPACES.sub(" ", _NOT_EMBOSSABLE.sub(" ", upper)).strip(" .-'")


def embossing_names(first: str, middle: str | None, last: str) -> list[str]:
    """Variants from the fullest to the shortest, each fitting the card; never empty."""
    first, last = embossable(first), embossable(last)
    middle = embossable(middle) if middle else ""
    candidates = [
        f"{first} {middle} {last}" if middle else "",
        f"{first} {last}",
        f"{first} {middle[0]} {last}" if middle else "",
        f"{first[:1]} {middle[:1]} {last}" if middle else "",
        f"{first[:1]} {last}",
        f"{first[:1]}{middle[:1]} {last}" if middle else "",
    ]
    names: list[str] = []
    for candidate in candidates:
        candidate = _SPACES.sub(" ", candidate).strip()
        if candidate and len(candidate) <= MAX_LENGTH and candidate not in names:
            names.append(candidate)
    if not names:
        # Even "J SMITH" is too long: a very long surname, cut at the card's edge.
        names.append(f"{first[:1]} {last}".strip()[:MAX_LENGTH].rstrip())
    return names
