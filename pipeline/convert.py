"""The one Simplified → Taiwan converter setting used wherever twbert converts (docs/pipeline.md).

Settings (config `convert.setting`):
- `mediawiki` (default): MediaWiki's own zh-tw tables (ZhConversion.php, through zhconv-rs), what a
  zh-tw reader of zhwiki sees before page rules. Character forms plus a few hundred Taiwan words
  that MediaWiki's editors keep safe (軟體, 滑鼠, 計程車, 資料庫, 伺服器).
- `mediawiki+phrases`: the same, with the conservative Taiwan-phrase layer (`data/tw_phrases.tsv`
  plus `convert.phrases`) merged into the table, so MediaWiki's longer entries still win.
- `s2tw`, `s2twp`, or any other OpenCC config name: OpenCC. `s2twp`'s phrase tables are written for
  software text and match across word boundaries (研究对象 → 研究物件, 少数组织 → 少陣列織).

Page rules (`-{H|…}-`, NoteTA) and conversion groups are not part of a setting: the wikitext
renderer applies them first, with `RuleTable`, each result protected from the conversion that follows.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from twbert.errors import UsageError

# Rule-table keys live in a private-use block of their own (plane 16's upper half); the renderer's
# placeholders use plane 15. Input is cleaned of both before rendering.
_KEY_FIRST = 0x108000
_KEY = re.compile("[\U00108000-\U0010FFFD]")
MAX_RULE_TARGETS = 0x10FFFD - _KEY_FIRST

MEDIAWIKI = "mediawiki"
MEDIAWIKI_PHRASES = "mediawiki+phrases"
SETTINGS = (MEDIAWIKI, MEDIAWIKI_PHRASES, "s2tw", "s2twp")  # and any other OpenCC config


def read_pairs(text: str, where: str) -> list[tuple[str, str]]:
    """`source<TAB or space>target` lines (`#` comments, blank lines skipped) → pairs."""
    pairs = []
    for i, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise UsageError(f"{where}:{i}: expected `source target` (two words), got {line!r}")
        pairs.append((parts[0], parts[1]))
    return pairs


@cache
def default_phrases() -> tuple[tuple[str, str], ...]:
    """The shipped conservative phrase list (pipeline/data/tw_phrases.tsv)."""
    text = resources.files("twbert.pipeline").joinpath("data/tw_phrases.tsv").read_text(encoding="utf-8")
    return tuple(read_pairs(text, "twbert/pipeline/data/tw_phrases.tsv"))


def phrase_pairs(extra=None) -> list[tuple[str, str]]:
    """Shipped phrases plus `convert.phrases` entries (`"软件 軟體"` strings or `[src, dst]` pairs)."""
    pairs = list(default_phrases())
    for i, item in enumerate(extra or []):
        if isinstance(item, str):
            pairs += read_pairs(item, f"convert.phrases[{i}]")
        elif isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(x, str) and x for x in item):
            pairs.append((item[0], item[1]))
        else:
            raise UsageError(f"convert.phrases[{i}]: give \"source target\" or [source, target], got {item!r}")
    return pairs


class Converter:
    """Simplified (or mixed) Chinese → Taiwan form with one setting. Not picklable: build it in the worker."""

    def __init__(self, setting: str = MEDIAWIKI, phrases=None):
        self.setting = setting
        if phrases and setting != MEDIAWIKI_PHRASES:
            raise UsageError(f"convert.phrases: only `mediawiki+phrases` uses a phrase list; the setting is {setting!r}")
        if setting in (MEDIAWIKI, MEDIAWIKI_PHRASES):
            import zhconv_rs

            if setting == MEDIAWIKI_PHRASES:
                self._convert = zhconv_rs.make_converter("zh-tw", phrase_pairs(phrases))
            else:
                self._convert = lambda text: zhconv_rs.zhconv(text, "zh-tw", False)
        else:
            import opencc

            try:
                cc = opencc.OpenCC(setting)
            except Exception as e:  # OpenCC raises a bare Exception for an unknown config
                raise UsageError(
                    f"convert.setting: {setting!r} is neither one of {', '.join(SETTINGS)} nor an OpenCC config "
                    f"that the installed opencc can load ({e})"
                ) from None
            self._convert = cc.convert

    def convert(self, text: str) -> str:
        return self._convert(text)


class RuleTable:
    """Rule sources → protected zh-tw forms, matched leftmost-longest (zhconv-rs's automaton).

    `apply(text, protect)` replaces every source with `protect(target)`: a placeholder the base
    converter passes through untouched, put back by the caller. Building one is cheap (~5 ms for
    4,000 pairs), so a page's own rules get a table per page, a group combination one per worker.
    """

    def __init__(self, pairs: dict[str, str]):
        self.pairs = {s: t for s, t in pairs.items() if s}
        self._targets = list(dict.fromkeys(self.pairs.values()))
        if len(self._targets) > MAX_RULE_TARGETS:
            raise UsageError(f"{len(self._targets)} distinct conversion-rule targets; at most {MAX_RULE_TARGETS} fit")
        self._automaton = None

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def apply(self, text: str, protect) -> str:
        if not self.pairs:
            return text
        import zhconv_rs

        # The automaton maps to one-character keys into the target list; `protect` turns each
        # into the caller's placeholder. Keys are private-use characters that never reach output.
        if self._automaton is None:
            index = {t: i for i, t in enumerate(self._targets)}
            self._automaton = zhconv_rs.make_converter(
                None, [(s, chr(_KEY_FIRST + index[t])) for s, t in self.pairs.items()])
        out = self._automaton(text)
        return _KEY.sub(lambda m: protect(self._targets[ord(m.group(0)) - _KEY_FIRST]), out)


