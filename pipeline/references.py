"""Reference-like headings, and stripping of trailing reference / link-list blocks from web text.

Headings are compared after normalisation: NFKC, lower case, every space, punctuation mark and
symbol removed, and the script folded to Simplified (OpenCC `t2s`), so `== 參考 資料 ==`,
`參考資料：` and `【參考資料】` all read `参考资料`, and so do the mixed-script headings real zhwiki
writes (`== 参見 ==`, `== 註釋及参考資料 ==`). A heading
is reference-like when it is one listed term or several joined by 與/和/及/与/and
(`注釋與參考文獻`, `參考資料和外部連結`).

`WebReferenceStripper` (web documents only) applies two line-level rules, from the end of the text:

1. **Reference heading.** The last line that is a reference-like heading (alone on its line, an
   optional trailing colon allowed) is cut together with everything after it, provided what follows
   is at most `max_tail_fraction` of the document's characters: a "參見" in the middle of an article
   is not a reference block.
2. **Trailing link list.** Then, repeatedly, the last non-blank line is cut while it is a
   *reference line*: it contains a URL (`http://`, `https://`, `www.`); or it starts with a
   citation marker (`[3]`, `^`, `↑`) ; or it is a source credit, `資料來源：…`, `原文網址：…`,
   `圖片來源：…`, `轉載自…`, `Source: …` (the heading list plus `source_prefixes`, followed by a
   colon); or it is a reference heading left at the end.

A document left empty is dropped with reason `empty`. Stats: `ref_lines_stripped`, and
`ref_stripped` for every document that lost a block.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

# zhwiki's reference-section headings, plus the English ones that turn up in both zhwiki and web
# text. Compared in folded script, so each is listed once: 參考資料 also matches 参考资料 and 参考資料.
DEFAULT_REFERENCE_HEADINGS = [
    "參考資料", "參考文獻", "參考來源", "參考", "參考書目", "參考網址", "外部連結", "外部鏈接", "外部連接", "外部鏈結",
    "延伸閱讀", "擴展閱讀", "擴充閱讀", "參見", "參看", "另見", "相關條目", "相關項目", "相關連結", "相關鏈接",
    "相關連接", "相關文章", "注釋", "注解", "腳註", "註腳", "附註", "資料來源", "來源", "書目", "文獻", "引用",
    "引註", "出處",
    "references", "reference", "externallinks", "seealso", "notes", "furtherreading", "bibliography", "sources",
]

CONNECTORS = re.compile(r"與|和|及|与|以及|暨|and")
_URL = re.compile(r"https?://|www\.", re.I)
_CITATION = re.compile(r"^\s*(?:\[\d+\]|\^|↑|［\d+］)")

# Source credits seen at the foot of Chinese web pages, besides the headings themselves.
DEFAULT_SOURCE_PREFIXES = [
    "原文網址", "原文网址", "原文連結", "原文链接", "本文來源", "本文来源", "圖片來源", "图片来源",
    "新聞來源", "新闻来源", "轉載自", "转载自", "引用自", "文章來源", "文章来源", "source", "via",
]


@cache
def _t2s():
    # Module-level, not on the steps: OpenCC handles do not pickle to datatrove's workers.
    import opencc

    return opencc.OpenCC("t2s")


def normalise(heading: str) -> str:
    """NFKC, lower-cased, without spaces, punctuation or symbols, in Simplified script."""
    s = unicodedata.normalize("NFKC", heading).lower()
    s = "".join(c for c in s if unicodedata.category(c)[0] not in "PSZC")
    return _t2s().convert(s) if s else s


class ReferenceHeadings:
    """Decides whether a heading is reference-like."""

    def __init__(self, headings: list[str] | None = None):
        terms = {normalise(h) for h in (headings if headings is not None else DEFAULT_REFERENCE_HEADINGS)}
        self.terms = {t for t in terms if t}
        self._longest = max((len(t) for t in self.terms), default=0)
        self._seen: dict[str, bool] = {}

    def __contains__(self, heading: str) -> bool:
        # Headings repeat across pages (歷史, 參考資料 …) and normalising one costs an OpenCC call.
        found = self._seen.get(heading)
        if found is None:
            found = self._is_reference(heading)
            if len(self._seen) < 100_000:
                self._seen[heading] = found
        return found

    def _is_reference(self, heading: str) -> bool:
        s = normalise(heading)
        if not s:
            return False
        if s in self.terms:
            return True
        parts = [p for p in CONNECTORS.split(s) if p]
        return len(parts) > 1 and all(self._segments(p) for p in parts)

    def _segments(self, s: str) -> bool:
        # Whole string covered by listed terms ("參考資料外部連結" after the connector was a comma).
        ok = [True] + [False] * len(s)
        for i in range(1, len(s) + 1):
            for j in range(max(0, i - self._longest), i):
                if ok[j] and s[j:i] in self.terms:
                    ok[i] = True
                    break
        return ok[-1]


class WebReferenceStripper(BaseFilter):
    """Cut trailing reference blocks and link lists from web documents (rules in the module docstring).

    Args:
        headings: reference-like headings (default `DEFAULT_REFERENCE_HEADINGS`).
        source_prefixes: extra line prefixes that, followed by a colon, mark a source credit line.
        max_tail_fraction: rule 1 cuts at a heading only if what follows is at most this share of the text.
        exclusion_writer: keeps dropped documents (pipeline/removed.py).
    """

    name = "✂️ web reference stripper"
    type = "✂️ - FORMAT"

    def __init__(self, headings: list[str] | None = None, source_prefixes: list[str] | None = None, max_tail_fraction: float = 0.3,
                 exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.headings = ReferenceHeadings(headings)
        prefixes = set(self.headings.terms) | {normalise(p) for p in (source_prefixes if source_prefixes is not None else DEFAULT_SOURCE_PREFIXES)}
        alt = "|".join(sorted((re.escape(p) for p in prefixes if p), key=len, reverse=True))
        self._credit = re.compile(r"^\s*[【\[(（]?\s*(?:" + alt + r")\s*[】\])）]?\s*[:：]", re.I)
        self.max_tail_fraction = max_tail_fraction

    def is_reference_line(self, line: str) -> bool:
        if _URL.search(line) or _CITATION.match(line):
            return True
        # Prefixes are compared in folded script, like headings; a credit prefix is short.
        return bool(self._credit.match(_t2s().convert(unicodedata.normalize("NFKC", line[:40]))))

    def _is_heading(self, line: str) -> bool:
        line = line.strip().rstrip(":：")
        return bool(line) and len(line) <= 30 and line in self.headings

    def strip(self, text: str) -> tuple[str, int]:
        """(text without its trailing reference block, number of non-blank lines removed)."""
        lines = text.split("\n")
        n = len(lines)
        total = len(text) or 1
        # Rule 1: last reference heading with a short enough tail.
        tail = 0
        for i in range(n - 1, -1, -1):
            tail += len(lines[i]) + 1
            if self._is_heading(lines[i]):
                if tail - len(lines[i]) - 1 <= self.max_tail_fraction * total:
                    lines = lines[:i]
                break
        # Rule 2: trailing reference lines (and a heading they leave dangling at the end).
        while lines and (not lines[-1].strip() or self.is_reference_line(lines[-1]) or self._is_heading(lines[-1])):
            lines.pop()
        if len(lines) == n:
            return text, 0
        removed = sum(1 for ln in text.split("\n")[len(lines):] if ln.strip())
        return "\n".join(lines), removed

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if doc.metadata.get("source") != "web":
            return True
        text, removed = self.strip(doc.text)
        if removed:
            self.stat_update("ref_stripped")
            self.stat_update("ref_lines_stripped", value=removed)
        if not text.strip():
            return False, "empty"  # the exclusion writer keeps the text as it came: all reference lines
        doc.text = text
        return True
