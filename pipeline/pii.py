"""Replace personal data with placeholders: e-mails, IP addresses, Taiwan phone numbers and ID numbers.

| kind | placeholder | matches |
| --- | --- | --- |
| `email` | `<EMAIL>` | `name@host.tld` (ASCII local part and domain) |
| `ip` | `<IP>` | dotted IPv4 (each part 0–255) and IPv6 (any form `ipaddress` accepts, ≥ 2 colons, with a digit or ≥ 3 groups) |
| `phone` | `<PHONE>` | Taiwan mobiles `0912-345-678`, `0912 345 678`, `0912345678`, `+886 912 345 678`, `+886-9-1234-5678`; landlines `(02)2345-6789`, `(02) 2345 6789`, `02-2345-6789`, `037-123-456`, `+886-2-2345-6789`, `+886 (2) 2345 6789` (9–10 digits with the leading 0) |
| `id` | `<ID>` | national ID / resident certificate shaped `[A-Z][12]\\d{8}` (and the resident forms `[A-Z][A-D89]\\d{8}`), checksum-validated only when `validate_id_checksum` |

A match must not touch other letters or digits (`A1234567890` is not an ID, `10.0.0.256` not an IP).
Landlines need parentheses or a separator after the area code, so a bare run of digits (an order
number, a date like 20240101) is left alone. Counts go to the stats (`pii_email`, `pii_ip`,
`pii_phone`, `pii_id`) and to `metadata["pii"]` (`{kind: count}`, only when a document had any).
"""

from __future__ import annotations

import ipaddress
import re

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

PLACEHOLDERS = {"email": "<EMAIL>", "ip": "<IP>", "phone": "<PHONE>", "id": "<ID>"}

_A = r"(?<![0-9A-Za-z])"  # not glued to a preceding letter/digit (Han characters are fine)
_Z = r"(?![0-9A-Za-z])"
_SEP = r"[-\s.]?"
EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9])")
IPV4 = re.compile(r"(?<![0-9A-Za-z.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![0-9A-Za-z]|\.\d)")
IPV6_CANDIDATE = re.compile(r"(?<![0-9A-Za-z:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![0-9A-Za-z:])")
MOBILE = re.compile(
    _A + r"(?:(?:\+|00)886" + _SEP + r"\(?0?\)?9\d{2}|09\d{2})" + _SEP + r"\d{3}" + _SEP + r"\d{3}" + _Z
    + r"|(?:\+|00)886" + _SEP + r"9" + _SEP + r"\d{4}" + _SEP + r"\d{4}" + _Z
)
LANDLINE = re.compile(
    r"(?:\(0\d{1,3}\)\s?|" + _A + r"0\d{1,3}-)\d{3,4}[-\s]?\d{3,4}" + _Z
    + r"|(?:\+|00)886" + _SEP + r"\(?0?[2-8]\d{0,2}\)?" + _SEP + r"\d{3,4}" + _SEP + r"\d{3,4}" + _Z
)
NATIONAL_ID = re.compile(_A + r"[A-Z][12ABCD89]\d{8}" + _Z)

# What every match of the pattern above contains, as a pattern that starts with a character class:
# re scans for those fast, but tries a pattern that starts with a look-behind at every position
# (4x slower on web text). A document without it cannot match, and is not scanned again.
_QUICK = {
    IPV4: re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"),
    IPV6_CANDIDATE: re.compile(r"[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:"),
    MOBILE: re.compile(r"09\d\d|886"),
    LANDLINE: re.compile(r"\(0\d|0\d{1,3}-|886"),
    NATIONAL_ID: re.compile(r"[A-Z][12ABCD89]\d{8}"),
}

_LETTER_CODES = dict(zip("ABCDEFGHJKLMNPQRSTUVXYWZIO", range(10, 36)))


def valid_national_id(s: str) -> bool:
    """The checksum of a Taiwan ID / new-style resident certificate number (second char a digit)."""
    if not s[1].isdigit():
        return True  # old resident certificates encode sex as A-D: shape only
    code = _LETTER_CODES[s[0]]
    digits = [code // 10, code % 10] + [int(c) for c in s[1:]]
    weights = [1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1]
    return sum(d * w for d, w in zip(digits, weights)) % 10 == 0


def _digits(s: str) -> int:
    return sum(c.isdigit() for c in s)


class PIIScrubber(PipelineStep):
    """Replace e-mails, IPs, Taiwan phone numbers and ID numbers with placeholders (module docstring).

    Args:
        kinds: which kinds to scrub (default all four).
        validate_id_checksum: replace only ID-shaped strings whose checksum is valid. Off by default:
            a mistyped ID is still someone's ID.
        sources: document sources to scrub (`metadata.source`); others pass through untouched.
    """

    name = "🕵️ PII scrubber"
    type = "✂️ - FORMAT"

    def __init__(self, kinds: tuple[str, ...] = ("email", "ip", "phone", "id"), validate_id_checksum: bool = False,
                 sources: tuple[str, ...] = ("web", "wiki")):
        super().__init__()
        unknown = set(kinds) - set(PLACEHOLDERS)
        if unknown:
            raise ValueError(f"unknown PII kinds {sorted(unknown)}; known: {sorted(PLACEHOLDERS)}")
        self.kinds = tuple(kinds)
        self.validate_id_checksum = validate_id_checksum
        self.sources = frozenset(sources)

    def scrub(self, text: str) -> tuple[str, dict[str, int]]:
        counts: dict[str, int] = {}

        def sub(kind, pattern, text, accept=None):
            def repl(m):
                if accept is not None and not accept(m.group(0)):
                    return m.group(0)
                counts[kind] = counts.get(kind, 0) + 1
                return PLACEHOLDERS[kind]

            quick = _QUICK.get(pattern)
            if quick is not None and not quick.search(text):
                return text
            return pattern.sub(repl, text)

        if "email" in self.kinds and "@" in text:
            text = sub("email", EMAIL, text)
        if "ip" in self.kinds:
            if ":" in text:
                text = sub("ip", IPV6_CANDIDATE, text, _is_ipv6)
            text = sub("ip", IPV4, text)
        if "phone" in self.kinds:
            text = sub("phone", MOBILE, text)
            text = sub("phone", LANDLINE, text, lambda s: 9 <= _digits(s.replace("886", "0", 1) if "886" in s[:5] else s) <= 10)
        if "id" in self.kinds:
            text = sub("id", NATIONAL_ID, text, valid_national_id if self.validate_id_checksum else None)
        return text, counts

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            self.stat_update("total")
            if doc.metadata.get("source") in self.sources:
                with self.track_time():
                    doc.text, counts = self.scrub(doc.text)
                if counts:
                    doc.metadata["pii"] = counts
                    for kind, n in counts.items():
                        self.stat_update(f"pii_{kind}", value=n)
            self.stat_update("forwarded")
            yield doc


def _is_ipv6(s: str) -> bool:
    # Two letter-only hex groups around `::` are usually words (`ABC::DEF`, `ac::dc`): a real address
    # has a digit (`fe80::1`, `::1`) or at least three groups (`dead:beef::cafe`).
    if s.count(":") < 2 or not (any(c.isdigit() for c in s) or sum(1 for g in s.split(":") if g) >= 3):
        return False
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    return True
