"""Read MediaWiki `pages-articles` dumps (`*.xml.bz2`, multistream or not) as documents.

The dump is never held in memory: bytes are decompressed a chunk at a time, `<page>` elements are
cut out of the byte stream (a literal `<page>` inside wikitext is always escaped as `&lt;page&gt;`, so
the tags can only be real element boundaries) and each page is parsed on its own. That gives
resynchronisation for free: a malformed page or invalid UTF-8 costs that one page, counted with its
reason, and reading carries on at the next `<page>`.

Work is split across tasks by file and, for multistream dumps (which come with an
`-index.txt.bz2` listing `offset:page_id:title`), by bz2 stream: every stream of every file goes in
one list and each task takes a contiguous slice of it, seeks to its first byte and decodes only its
own byte ranges. A dump without an index is one unit of work; a corrupt bz2 stream in it costs that
stream only, as reading resumes at the next stream header.

Stats (docs/architecture.md): `total` counts raw `<page>` elements, `forwarded` the documents
yielded, and `dropped_<reason>` one of `namespace`, `redirect`, `disambiguation`, `malformed`,
`invalid_utf8`, `truncated`, `corrupt_stream` (the last two in pages: from the index, else estimated
from the file's fullest intact stream). Extras: `streams_lost`, `pages_recovered`.
"""

from __future__ import annotations

import bz2
import contextlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.logging import logger

CHUNK = 1 << 20  # compressed bytes read at a time

# zhwiki's disambiguation templates and their redirects (Template:Disambig and what links to it).
DEFAULT_DISAMBIGUATION_TEMPLATES = [
    "disambig", "disambiguation", "dab", "disamb", "消歧義", "消歧义", "消歧義頁", "消歧义页", "aimai",
    "hndis", "geodis", "numberdis", "shipindex", "letter-numbercombdisambig", "mountainindex",
    "roadindex", "set index article", "sia", "人名消歧義", "人名消歧义", "地名消歧義", "地名消歧义",
]

_DUMP_NAME = re.compile(r"(\.xml\.bz2|\.xml-p\d+p\d+\.bz2)$")


class WikiDumpError(ValueError):
    """A dump that cannot be read at all (missing file, unreadable index)."""


@dataclass(frozen=True)
class _Stream:
    path: str
    start: int  # byte offset of the bz2 stream; -1 = whole file (no index)
    pages: int  # pages the index lists in it (0 when unknown)


def is_dump_name(name: str) -> bool:
    return bool(_DUMP_NAME.search(name)) and "-index" not in name


def expand_paths(paths, predicate) -> list[str]:
    """Files named by `paths` (files or directories, searched recursively; local or fsspec URLs), sorted."""
    from fsspec.core import url_to_fs

    out = []
    for p in [paths] if isinstance(paths, str) else paths:
        fs, root = url_to_fs(str(p))
        if fs.isdir(root):
            found = sorted(f for f in fs.find(root) if predicate(f.rsplit("/", 1)[-1]))
        elif fs.exists(root):
            found = [root]
        else:
            raise WikiDumpError(f"input not found: {p}")
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        out += [f if protocol in ("file", "local") else f"{protocol}://{f}" for f in found]
    return out


def _open(path: str, mode: str = "rb"):
    import fsspec

    return fsspec.open(path, mode).open()


def index_path(dump: str) -> str | None:
    """The multistream index next to `dump`, if there is one."""
    from fsspec.core import url_to_fs

    head, _, name = dump.rpartition("/")
    candidates = [name.replace(".xml.bz2", "-index.txt.bz2")]
    if "multistream" in name:  # zhwiki-…-multistream1.xml-p1p187712.bz2 → …-multistream-index1.txt-p1p187712.bz2
        candidates.append(name.replace("multistream", "multistream-index", 1).replace(".xml", ".txt", 1))
    for c in candidates:
        if c == name:
            continue
        p = f"{head}/{c}" if head else c
        fs, root = url_to_fs(p)
        if fs.exists(root):
            return p
    return None


_INDEX_LINE = re.compile(rb"^(\d+):\d+:", re.M)
_NONBLANK_LINE = re.compile(rb"^[^\n]*?\S", re.M)


def read_index(index: str) -> list[tuple[int, int]]:
    """[(stream offset, pages in it)] from a multistream index (`offset:page_id:title` lines), in file order."""
    from collections import Counter

    counts: Counter = Counter()
    rest = b""
    lineno = 0
    with bz2.open(_open(index), "rb") as f:
        while True:
            chunk = f.read(1 << 23)
            data = rest + chunk
            cut = data.rfind(b"\n") + 1 if chunk else len(data)
            block, rest = data[:cut], data[cut:]
            offsets = _INDEX_LINE.findall(block)
            if len(offsets) != len(_NONBLANK_LINE.findall(block)):
                for i, line in enumerate(block.split(b"\n"), lineno + 1):
                    if line.strip() and not _INDEX_LINE.match(line):
                        raise WikiDumpError(f"{index}:{i}: not an `offset:page_id:title` line: {line[:80]!r}")
            counts.update(offsets)
            lineno += block.count(b"\n")
            if not chunk:
                break
    return sorted((int(o), n) for o, n in counts.items())


_STREAM_HEADER = re.compile(rb"BZh[1-9]1AY&SY")


def _next_stream(f, offset: int) -> int | None:
    """Compressed offset of the first bz2 stream header at or after `offset`, or None."""
    f.seek(offset)
    tail, at = b"", offset  # `at`: offset of the next byte read
    while raw := f.read(CHUNK):
        data = tail + raw
        m = _STREAM_HEADER.search(data)
        if m:
            return at - len(tail) + m.start()
        tail, at = data[-9:], at + len(raw)
    return None


@dataclass(frozen=True)
class _Gap:
    """Compressed bytes that could not be decoded: `truncated` (the file ends) or `corrupt_stream`."""

    reason: str
    message: str


_END = object()  # a bz2 stream ended cleanly


class WikiDumpReader(PipelineStep):
    """Yield namespace-0 article pages of zhwiki dumps as documents whose text is the raw wikitext.

    Args:
        paths: dump files or directories (recursively searched for `*.xml.bz2`), local or fsspec URLs.
        namespaces: namespaces kept (default: articles only).
        disambiguation_templates: template names (case-insensitive) that mark a disambiguation page.
        limit: stop after this many yielded documents per task (-1: no limit), for trial runs.
        default_metadata: merged under every document's metadata.
        exclusion_writer: keeps dropped pages (pipeline/removed.py): namespace, redirect and
            disambiguation pages as documents, malformed ones as their raw XML.
    """

    name = "📚 zhwiki dump"
    type = "📖 - READER"

    def __init__(
        self,
        paths: str | list[str],
        namespaces: tuple[int, ...] = (0,),
        disambiguation_templates: list[str] | None = None,
        limit: int = -1,
        default_metadata: dict | None = None,
        exclusion_writer=None,
    ):
        super().__init__()
        self.exclusion_writer = exclusion_writer
        self._excluded = None
        self.paths = [paths] if isinstance(paths, str) else list(paths)
        self.namespaces = set(namespaces)
        names = disambiguation_templates if disambiguation_templates is not None else DEFAULT_DISAMBIGUATION_TEMPLATES
        alt = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        self._disambig = re.compile(r"\{\{\s*(?:template:|模板:)?(?:" + alt + r")\s*(?:\||\}\})", re.I) if names else None
        self.limit = limit
        self.default_metadata = default_metadata or {}

    # ---- planning -------------------------------------------------------------------------------
    def streams(self) -> list[_Stream]:
        """Every unit of work, in a fixed order: all tasks compute the same list."""
        units = []
        for dump in expand_paths(self.paths, is_dump_name):
            index = index_path(dump)
            if index is None:
                units.append(_Stream(dump, -1, 0))
            else:
                units += [_Stream(dump, off, n) for off, n in read_index(index)]
        return units

    def shard(self, rank: int, world_size: int) -> list[_Stream]:
        units = self.streams()
        n = len(units)
        return units[rank * n // world_size : (rank + 1) * n // world_size]

    # ---- reading --------------------------------------------------------------------------------
    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        with self.exclusion_writer or contextlib.nullcontext() as writer:
            self._excluded = (writer, rank)
            units = self.shard(rank, world_size)
            yielded = 0
            i = 0
            while i < len(units) and yielded != self.limit:
                # Consecutive streams of one file are one contiguous byte range: one seek, one read.
                j = i + 1
                while j < len(units) and units[j].path == units[i].path and units[i].start >= 0:
                    j += 1
                for doc in self._read_range(units[i:j]):
                    yield doc
                    yielded += 1
                    if yielded == self.limit:  # stop before reading (and counting) another page
                        return
                i = j

    def _read_range(self, group: list[_Stream]):
        path = group[0].path
        if group[0].start < 0:
            self.stat_update("input_files")
        else:
            self.stat_update("input_streams", value=len(group))
        with _open(path) as f:
            if group[0].start < 0:
                yield from self._read_pages(path, self._decompress_whole(f, path), expected=None)
                return
            f.seek(group[0].start)
            for k, s in enumerate(group):
                end = group[k + 1].start if k + 1 < len(group) else None
                pos = f.tell()
                if pos != s.start:
                    f.seek(s.start)
                chunks = self._decompress_stream(f, path, s.start, end)
                yield from self._read_pages(path, chunks, expected=s)

    def _decompress_whole(self, f, path):
        """Decompressed bytes of a whole bz2 file, one stream or many back to back (multistream).

        Between the bytes: `_END` after each stream that ended cleanly, and a `_Gap` for compressed
        bytes that could not be decoded. After a corrupt stream, decoding resumes at the next stream
        header (`BZh1-9` and the block magic 0x314159265359, byte-aligned where a stream begins), so
        one bad stream of a multistream dump costs that stream only.
        """
        d, fed = bz2.BZ2Decompressor(), False
        start = 0  # compressed offset of the stream being decoded
        at = 0  # compressed offset of raw[0]
        f.seek(0)
        while raw := f.read(CHUNK):
            while raw:
                fed = True
                try:
                    out = d.decompress(raw)
                except OSError as e:
                    nxt = _next_stream(f, start + 1)
                    after = (f"reading resumes at the next bz2 stream, byte {nxt}" if nxt is not None
                             else "no bz2 stream after it")
                    yield _Gap("corrupt_stream", f"{path}: corrupt bz2 stream at compressed byte {start} ({e}); {after}")
                    if nxt is None:
                        return
                    f.seek(nxt)
                    d, fed, start, at = bz2.BZ2Decompressor(), False, nxt, nxt
                    break
                if out:
                    yield out
                if d.eof:
                    yield _END
                    at += len(raw) - len(d.unused_data)
                    raw, d, fed, start = d.unused_data, bz2.BZ2Decompressor(), False, at
                else:
                    at += len(raw)
                    raw = b""
        if fed:
            yield _Gap("truncated", f"{path}: bz2 stream at compressed byte {start} ends at byte {at} before its end "
                       "marker: the file is truncated (pages after the cut are unknown)")

    def _decompress_stream(self, f, path, start, end):
        """Decompressed bytes of the one bz2 stream at `start`, then `_END`, or a `_Gap` if it is truncated or corrupt."""
        d = bz2.BZ2Decompressor()
        pos = start
        while not d.eof:
            want = CHUNK if end is None else min(CHUNK, end - pos)
            raw = f.read(want) if want > 0 else b""
            if not raw:
                yield _Gap("truncated", f"{path}: bz2 stream at byte {start} ends at byte {pos} before its end marker: "
                           "the file is truncated")
                return
            pos += len(raw)
            try:
                out = d.decompress(raw)
            except OSError as e:
                yield _Gap("corrupt_stream", f"{path}: corrupt bz2 stream at byte {start} (near byte {pos}): {e}")
                return
            if out:
                yield out
        yield _END

    def _read_pages(self, path, chunks, expected: _Stream | None):
        """Cut `<page>…</page>` out of decompressed chunks and turn each into a document (or a counted drop).

        Lost streams are counted in pages: with an index, the pages it lists less those read; without
        one, as many as the file's fullest intact stream held (Wikimedia writes 100 a stream), less
        those read from the lost stream, and at least one.
        """
        buf = b""
        i = 0  # scan position in buf; buf is compacted once per chunk, never per page
        base = 0  # decompressed offset of buf[0], for error positions
        seen = 0  # pages cut from the current stream
        fullest = 0  # most pages an intact stream of this file held
        gaps: list[tuple[_Gap, int]] = []  # (gap, pages read from its stream before it)
        recovered = 0  # pages read after a lost stream (resynchronised on the next one)
        where = f"{path} (stream at byte {expected.start})" if expected else path
        for chunk in chunks:
            if chunk is _END:
                fullest = max(fullest, seen)
                seen = 0
                continue
            if isinstance(chunk, _Gap):
                logger.error(chunk.message)
                gaps.append((chunk, seen))
                # A page begun in the lost bytes is lost with them, not a malformed page of the next stream.
                base += len(buf)
                buf, i, seen = b"", 0, 0
                continue
            buf = buf[i:] + chunk
            base += i
            i = 0
            while True:
                s = buf.find(b"<page>", i)
                if s < 0:
                    i = max(i, len(buf) - 5)  # a tag may straddle the chunk boundary
                    break
                e = buf.find(b"</page>", s)
                nxt = buf.find(b"<page>", s + 6, e if e >= 0 else len(buf))
                if nxt >= 0:  # a page without its closing tag: drop it, resume at the next one
                    seen += 1
                    recovered += bool(gaps)
                    self._drop("malformed", f"{where}: <page> at decompressed byte {base + s} has no </page>",
                               self._raw_doc(buf[s:nxt], where, base + s))
                    i = nxt
                    continue
                if e < 0:
                    i = s
                    break
                seen += 1
                recovered += bool(gaps)
                doc = self._page(buf[s : e + 7], where, base + s)
                if doc is not None:
                    yield doc
                i = e + 7
        for gap, read in gaps:
            per_stream = expected.pages if expected and expected.pages else fullest
            lost = max(per_stream - read, 0 if expected and expected.pages else 1)
            self.stat_update("streams_lost")
            if lost:
                self.stat_update("total", "dropped", value=lost)
                self.stat_update(f"dropped_{gap.reason}", value=lost)
            known = "listed in the index" if expected and expected.pages else "estimated from the fullest intact stream"
            logger.error(f"{where}: {lost} page(s) lost ({gap.reason}; {read} read from that stream; {known})")
        if recovered:
            self.stat_update("pages_recovered", value=recovered)
        rest = buf[i:]
        if not gaps and b"<page>" in rest:
            self._drop("truncated", f"{where}: data ends inside a <page> at decompressed byte {base + i + rest.find(b'<page>')}")

    def _drop(self, reason: str, message: str | None = None, doc: Document | None = None):
        self.stat_update("total", "dropped", f"dropped_{reason}")
        if message:
            logger.warning(message)
        writer, rank = self._excluded or (None, 0)
        if doc is not None and writer is not None:
            doc.metadata["filter_reason"] = reason  # as datatrove's BaseFilter does
            writer.write(doc, rank)

    def _raw_doc(self, raw: bytes, where: str, pos: int) -> Document:
        """A page that could not be parsed, kept as its bytes for the audit trail."""
        return Document(text=raw.decode("utf-8", "replace"), id=f"{where}@{pos}",
                        metadata={"source": "wiki", "position": f"{where}, decompressed byte {pos}"})

    def _page(self, raw: bytes, where: str, pos: int) -> Document | None:
        try:
            xml = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            self._drop("invalid_utf8", f"{where}: invalid UTF-8 at decompressed byte {pos + e.start}; page dropped",
                       self._raw_doc(raw, where, pos))
            return None
        try:
            page = ET.fromstring(xml)
        except ET.ParseError as e:
            line, col = e.position
            self._drop("malformed", f"{where}: malformed <page> at decompressed byte {pos} (line {line}, column {col} of the page): {e}",
                       self._raw_doc(raw, where, pos))
            return None
        title = page.findtext("title")
        ns = page.findtext("ns")
        page_id = page.findtext("id")
        rev = page.find("revision")
        text = rev.find("text") if rev is not None else None
        try:
            ns = int(ns)
            page_id = int(page_id)
            rev_id = int(rev.findtext("id"))
        except (TypeError, ValueError, AttributeError):
            self._drop("malformed", f"{where}: <page> at decompressed byte {pos} ({title!r}) lacks a numeric ns, id or revision id",
                       self._raw_doc(raw, where, pos))
            return None
        if title is None or text is None:
            self._drop("malformed", f"{where}: <page> {page_id} at decompressed byte {pos} lacks a title or revision text",
                       self._raw_doc(raw, where, pos))
            return None
        wikitext = text.text or ""
        meta = dict(self.default_metadata)
        meta.update(source="wiki", title=title, page_id=page_id, rev_id=rev_id)
        doc = Document(text=wikitext, id=f"zhwiki/{page_id}", metadata=meta)
        if ns not in self.namespaces:
            meta["ns"] = ns
            self._drop("namespace", doc=doc)
            return None
        if page.find("redirect") is not None:
            meta["redirect"] = page.find("redirect").get("title")
            self._drop("redirect", doc=doc)
            return None
        if self._disambig is not None and self._disambig.search(wikitext):
            self._drop("disambiguation", doc=doc)
            return None
        self.stat_update("total", "forwarded")
        self.update_doc_stats(doc)
        return doc
