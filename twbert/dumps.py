"""Write raw inputs in their real formats: MediaWiki XML dumps (bz2, multistream) and FineWeb2 parquet.

The embedded sample and the tests use these to make inputs that the readers cannot tell from the
real thing: the same XML export schema as a `zhwiki-*-pages-articles-multistream.xml.bz2` with its
`-index.txt.bz2`, and the same parquet columns as FineWeb2's `cmn_Hani` split.
"""

from __future__ import annotations

import bz2
from pathlib import Path
from xml.sax.saxutils import escape

MEDIAWIKI_NS = "http://www.mediawiki.org/xml/export-0.11/"

SITEINFO = """  <siteinfo>
    <sitename>维基百科</sitename>
    <dbname>zhwiki</dbname>
    <base>https://zh.wikipedia.org/wiki/Wikipedia:%E9%A6%96%E9%A1%B5</base>
    <generator>MediaWiki 1.45.0-wmf.1</generator>
    <case>first-letter</case>
    <namespaces>
      <namespace key="-2" case="first-letter">Media</namespace>
      <namespace key="-1" case="first-letter">Special</namespace>
      <namespace key="0" case="first-letter" />
      <namespace key="1" case="first-letter">Talk</namespace>
      <namespace key="2" case="first-letter">User</namespace>
      <namespace key="4" case="first-letter">Wikipedia</namespace>
      <namespace key="6" case="first-letter">File</namespace>
      <namespace key="10" case="first-letter">Template</namespace>
      <namespace key="14" case="first-letter">Category</namespace>
    </namespaces>
  </siteinfo>
"""

# Real dumps put 100 pages in each bz2 stream of a multistream file.
PAGES_PER_STREAM = 100


def page_xml(page: dict) -> str:
    """One `<page>` element. `page` has title, id, text and optionally ns, rev_id, redirect, timestamp."""
    ns = page.get("ns", 0)
    rev_id = page.get("rev_id", page["id"] * 10 + 1)
    redirect = f'    <redirect title="{escape(page["redirect"], {chr(34): "&quot;"})}" />\n' if page.get("redirect") else ""
    text = page["text"]
    return (
        "  <page>\n"
        f"    <title>{escape(page['title'])}</title>\n"
        f"    <ns>{ns}</ns>\n"
        f"    <id>{page['id']}</id>\n"
        f"{redirect}"
        "    <revision>\n"
        f"      <id>{rev_id}</id>\n"
        f"      <parentid>{rev_id - 1}</parentid>\n"
        f"      <timestamp>{page.get('timestamp', '2026-10-01T00:00:00Z')}</timestamp>\n"
        "      <contributor>\n        <username>Sample</username>\n        <id>1</id>\n      </contributor>\n"
        "      <model>wikitext</model>\n      <format>text/x-wiki</format>\n"
        f'      <text bytes="{len(text.encode("utf-8"))}" xml:space="preserve">{escape(text)}</text>\n'
        "      <sha1>0000000000000000000000000000000</sha1>\n"
        "    </revision>\n"
        "  </page>\n"
    )


def write_wiki_dump(path: str | Path, pages: list[dict], multistream: bool = True) -> tuple[Path, Path | None]:
    """Write `pages` as a bz2 MediaWiki dump at `path`.

    With `multistream`, the file is a concatenation of bz2 streams (header, then 100 pages per
    stream, then the footer) and an index `<name>-index.txt.bz2` with `offset:page_id:title` lines,
    exactly as Wikimedia publishes `pages-articles-multistream`. Returns (dump, index or None).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f'<mediawiki xmlns="{MEDIAWIKI_NS}" version="0.11" xml:lang="zh">\n{SITEINFO}'
    footer = "</mediawiki>\n"
    if not multistream:
        body = header + "".join(page_xml(p) for p in pages) + footer
        path.write_bytes(bz2.compress(body.encode("utf-8")))
        return path, None
    index_lines = []
    with open(path, "wb") as f:
        f.write(bz2.compress(header.encode("utf-8")))
        for start in range(0, len(pages), PAGES_PER_STREAM):
            offset = f.tell()
            chunk = pages[start : start + PAGES_PER_STREAM]
            index_lines += [f"{offset}:{p['id']}:{p['title']}" for p in chunk]
            f.write(bz2.compress("".join(page_xml(p) for p in chunk).encode("utf-8")))
        f.write(bz2.compress(footer.encode("utf-8")))
    name = path.name.replace(".xml.bz2", "")
    index = path.with_name(f"{name}-index.txt.bz2")
    index.write_bytes(bz2.compress(("\n".join(index_lines) + "\n").encode("utf-8")))
    return path, index


FINEWEB2_COLUMNS = [
    "text", "id", "dump", "url", "date", "file_path", "language",
    "language_score", "language_script", "minhash_cluster_size", "top_langs",
]


def write_fineweb_parquet(path: str | Path, rows: list[dict], row_group_size: int = 1000) -> Path:
    """Write rows with FineWeb2's cmn_Hani schema; missing columns get plausible values."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    full = []
    for i, r in enumerate(rows):
        full.append({
            "text": r["text"],
            "id": r.get("id", f"<urn:uuid:00000000-0000-4000-8000-{i:012d}>"),
            "dump": r.get("dump", "CC-MAIN-2024-10"),
            "url": r.get("url", f"https://example{i}.com.tw/a/{i}"),
            "date": r.get("date", "2024-02-21T12:00:00Z"),
            "file_path": r.get("file_path", "s3://commoncrawl/crawl-data/CC-MAIN-2024-10/segments/0/warc/0.warc.gz"),
            "language": r.get("language", "cmn"),
            "language_score": float(r.get("language_score", 0.98)),
            "language_script": r.get("language_script", "Hani"),
            "minhash_cluster_size": int(r.get("minhash_cluster_size", 1)),
            "top_langs": r.get("top_langs", '{"cmn_Hani_score": 0.98}'),
        })
    schema = pa.schema([
        ("text", pa.string()), ("id", pa.string()), ("dump", pa.string()), ("url", pa.string()),
        ("date", pa.string()), ("file_path", pa.string()), ("language", pa.string()),
        ("language_score", pa.float64()), ("language_script", pa.string()),
        ("minhash_cluster_size", pa.int64()), ("top_langs", pa.string()),
    ])
    table = pa.Table.from_pylist(full, schema=schema)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path
