"""Converter artifacts: strings that exist only as Simplified→Traditional mis-conversions.

The list is data (`data/artifacts.tsv`, plus `convert.artifacts.extra`): 研究物件 (研究对象 read as a
software object), 擴充套件 (扩展), 被髮明 (发 read as hair), 少陣列織 (少数组织 split as 数组) …
Each entry may name longer correct strings that contain it (明瞭如何 contains 瞭如何); a match
inside one of those is not counted. Matching is one leftmost-longest pass (zhconv-rs's automaton),
so overlapping entries count once.

`ArtifactFilter` writes `convert_artifacts` (artifacts per 10,000 characters) to every document's
metadata and, with `max_per_10k` set, drops documents above it (reason `convert_artifacts`).
Web pages that other sites machine-converted carry the same strings, so the rate is a quality
signal for any source. `artifact_summary` aggregates it per source and tier for inspect.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache
from importlib import resources

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from twbert.errors import UsageError

METADATA_KEY = "convert_artifacts"
PER = 10_000  # the rate's unit: artifacts per this many characters

_HIT, _OK = "\U00108000", "\U00108001"  # automaton outputs: an artifact, an excepted correct string


def read_artifacts(text: str, where: str) -> tuple[dict[str, str], set[str]]:
    """artifacts.tsv lines → ({artifact: meant}, {exception})."""
    found, exceptions = {}, set()
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cols = [c.strip() for c in line.split("\t")]
        if not cols[0] or len(cols) > 3:
            raise UsageError(f"{where}:{i}: expected `artifact<TAB>meant[<TAB>exceptions]`, got {line!r}")
        found[cols[0]] = cols[1] if len(cols) > 1 else ""
        for e in (cols[2].split(",") if len(cols) > 2 else ()):
            if cols[0] not in e:
                raise UsageError(f"{where}:{i}: exception {e!r} does not contain the artifact {cols[0]!r}")
            exceptions.add(e.strip())
    return found, exceptions


@cache
def default_artifacts() -> tuple[dict[str, str], frozenset[str]]:
    text = resources.files("twbert.pipeline").joinpath("data/artifacts.tsv").read_text(encoding="utf-8")
    found, exceptions = read_artifacts(text, "twbert/pipeline/data/artifacts.tsv")
    return found, frozenset(exceptions)


class ArtifactDetector:
    """Counts listed artifacts in Taiwan-form text. Not picklable: build it in the worker."""

    def __init__(self, extra=None):
        found, exceptions = default_artifacts()
        self.artifacts = dict(found)
        for i, item in enumerate(extra or []):
            if not isinstance(item, str) or not item.strip():
                raise UsageError(f"convert.artifacts.extra[{i}]: give an artifact string, got {item!r}")
            self.artifacts.setdefault(item.strip(), "")
        self.exceptions = set(exceptions)
        import zhconv_rs

        pairs = [(e, _OK) for e in self.exceptions] + [(a, _HIT) for a in self.artifacts]
        self._mark = zhconv_rs.make_converter(None, pairs)
        alt = "|".join(re.escape(s) for s in sorted(set(self.artifacts) | self.exceptions, key=len, reverse=True))
        self._find = re.compile(alt)

    def count(self, text: str) -> int:
        return self._mark(text).count(_HIT) if text else 0

    def rate(self, text: str) -> float:
        """Artifacts per 10,000 characters."""
        return self.count(text) * PER / len(text) if text else 0.0

    def hits(self, text: str) -> list[str]:
        """The artifacts found, in order (for examples; `count` is the fast path)."""
        return [m.group(0) for m in self._find.finditer(text) if m.group(0) in self.artifacts]

    def contexts(self, text: str, width: int = 12, limit: int = 3) -> list[str]:
        out = []
        for m in self._find.finditer(text):
            if m.group(0) in self.artifacts:
                out.append(text[max(0, m.start() - width): m.end() + width].replace("\n", " "))
                if len(out) == limit:
                    break
        return out


class ArtifactFilter(BaseFilter):
    """Write `convert_artifacts` (per 10k chars) to every document; drop above `max_per_10k` if set.

    Args:
        max_per_10k: drop documents with more artifacts per 10,000 characters (null: tag only).
        extra: more artifact strings.
        exclusion_writer: where dropped documents go (datatrove's BaseFilter).

    Stats: `convert_artifacts` (total hits), `docs_with_artifacts`, and `dropped_convert_artifacts`.
    """

    name = "🧪 converter artifacts"

    def __init__(self, max_per_10k: float | None = None, extra=None, exclusion_writer=None):
        super().__init__(exclusion_writer)
        if max_per_10k is not None and (not isinstance(max_per_10k, (int, float)) or max_per_10k < 0):
            raise UsageError(f"convert.artifacts.max_per_10k: give a number >= 0 or null, got {max_per_10k!r}")
        self.max_per_10k = max_per_10k
        self.extra = list(extra or [])
        self._detector = None

    def __getstate__(self):
        return {**self.__dict__, "_detector": None}

    @property
    def detector(self) -> ArtifactDetector:
        if self._detector is None:
            self._detector = ArtifactDetector(self.extra)
        return self._detector

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        n = self.detector.count(doc.text)
        rate = n * PER / len(doc.text) if doc.text else 0.0
        doc.metadata[METADATA_KEY] = round(rate, 3)
        if n:
            self.stat_update(METADATA_KEY, value=n)
            self.stat_update("docs_with_artifacts")
        if self.max_per_10k is not None and rate > self.max_per_10k:
            return False, METADATA_KEY
        return True


def artifact_summary(docs, detector: ArtifactDetector | None = None, examples: int = 5) -> dict:
    """Artifact rate per source and tier, for inspect: a pure function over documents.

    `docs` yields datatrove Documents or dicts with `text` and `metadata`. Returns
    {"<source>/<tier>": {"docs", "chars", "artifacts", "per_100k", "docs_with", "top": [[artifact, n]],
    "examples": ["…context…"]}} with `tier` "-" for untiered documents, sorted by key.
    """
    detector = detector or ArtifactDetector()
    groups: dict[str, dict] = {}
    for doc in docs:
        text, meta = (doc.text, doc.metadata) if isinstance(doc, Document) else (doc["text"], doc.get("metadata") or {})
        key = f"{meta.get('source', '-')}/{meta.get('tier') or '-'}"
        g = groups.setdefault(key, {"docs": 0, "chars": 0, "artifacts": 0, "docs_with": 0, "top": Counter(), "examples": []})
        g["docs"] += 1
        g["chars"] += len(text)
        n = detector.count(text)
        if n:
            g["artifacts"] += n
            g["docs_with"] += 1
            g["top"].update(detector.hits(text))
            if len(g["examples"]) < examples:
                g["examples"] += detector.contexts(text, limit=examples - len(g["examples"]))
    out = {}
    for key in sorted(groups):
        g = groups[key]
        out[key] = {
            "docs": g["docs"], "chars": g["chars"], "artifacts": g["artifacts"],
            "per_100k": round(g["artifacts"] * 100_000 / g["chars"], 3) if g["chars"] else 0.0,
            "docs_with": g["docs_with"], "top": [[a, n] for a, n in g["top"].most_common(10)],
            "examples": g["examples"],
        }
    return out
