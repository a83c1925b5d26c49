"""WikiDumpReader on real-format bz2 MediaWiki dumps: splitting, metadata, drops, bad input."""

from __future__ import annotations

import bz2
import json

import pytest
from _wiki_pages import assert_reconciles, filler_pages, read_documents, stage_stats, wiki_pages
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.writers import JsonlWriter

from twbert.dumps import MEDIAWIKI_NS, SITEINFO, page_xml, write_wiki_dump
from twbert.pipeline import wiki
from twbert.pipeline.wiki import WikiDumpReader

KEPT = {101, 102, 106}  # ns 0, not a redirect, not a disambiguation page


def run(tmp_path, paths, tasks=2, name="run"):
    out, logs = tmp_path / name / "out", tmp_path / name / "logs"
    reader = WikiDumpReader(paths, exclusion_writer=JsonlWriter(str(tmp_path / name / "removed")))
    LocalPipelineExecutor([reader, JsonlWriter(str(out))], tasks=tasks, workers=1, logging_dir=str(logs)).run()
    return read_documents(out), stage_stats(logs), logs


def stats_of(reader: WikiDumpReader) -> dict:
    return {k: v.total for k, v in reader.stats.stats.items()}


def test_multistream_split_reads_every_page_once(tmp_path):
    pages = wiki_pages() + filler_pages(430)  # 5 bz2 streams of 100 pages
    dump, index = write_wiki_dump(tmp_path / "in" / "zhwiki-20260101-pages-articles-multistream.xml.bz2", pages)
    assert index is not None
    expected = KEPT | {p["id"] for p in filler_pages(430)}
    for tasks in (2, 3):
        docs, steps, logs = run(tmp_path, str(tmp_path / "in"), tasks=tasks, name=f"t{tasks}")
        ids = [d["metadata"]["page_id"] for d in docs]
        assert len(ids) == len(set(ids)) and set(ids) == expected
        reader = steps[0]["stats"]
        assert reader["total"] == len(pages)
        assert reader["dropped_redirect"] == 1 and reader["dropped_disambiguation"] == 1 and reader["dropped_namespace"] == 1
        removed = read_documents(tmp_path / f"t{tasks}" / "removed")
        assert {d["metadata"]["filter_reason"]: d["metadata"]["page_id"] for d in removed} == {
            "redirect": 103, "disambiguation": 104, "namespace": 105}
        assert_reconciles(steps)
        # Each task decoded only its own streams: per-task stream counts partition the 5 streams.
        per_task = [json.loads(f.read_text())[0]["stats"].get("input_streams", 0) for f in sorted((logs / "stats").glob("*.json"))]
        per_task = [v["total"] if isinstance(v, dict) else v for v in per_task]
        assert sum(per_task) == 5 and all(n >= 1 for n in per_task)


def test_metadata_title_ids_and_source(tmp_path):
    write_wiki_dump(tmp_path / "d.xml.bz2", wiki_pages(), multistream=False)
    docs, steps, _ = run(tmp_path, str(tmp_path / "d.xml.bz2"), tasks=1)
    by_id = {d["metadata"]["page_id"]: d for d in docs}
    assert set(by_id) == KEPT
    d = by_id[101]
    assert d["metadata"]["title"] == "軟體" and d["metadata"]["rev_id"] == 1011 and d["metadata"]["source"] == "wiki"
    assert d["id"] == "zhwiki/101"
    assert "{{NoteTA" in d["text"]  # the reader hands on raw wikitext; cleaning is the next step's job
    assert_reconciles(steps)


def test_files_and_directories_mixed(tmp_path):
    write_wiki_dump(tmp_path / "a" / "x" / "one.xml.bz2", filler_pages(3, start=1), multistream=False)
    write_wiki_dump(tmp_path / "a" / "two-pages-articles-multistream.xml.bz2", filler_pages(3, start=10))
    write_wiki_dump(tmp_path / "b.xml.bz2", filler_pages(2, start=20), multistream=False)
    (tmp_path / "a" / "notes.txt").write_text("not a dump")
    reader = WikiDumpReader([str(tmp_path / "a"), str(tmp_path / "b.xml.bz2")])
    ids = sorted(d.metadata["page_id"] for d in reader.run())
    assert ids == [1, 2, 3, 10, 11, 12, 20, 21]


def test_small_read_chunks_cross_page_boundaries(tmp_path, monkeypatch):
    pages = wiki_pages() + filler_pages(150)
    write_wiki_dump(tmp_path / "m.xml.bz2", pages)
    write_wiki_dump(tmp_path / "s" / "s.xml.bz2", pages, multistream=False)
    monkeypatch.setattr(wiki, "CHUNK", 37)
    for path in (tmp_path / "m.xml.bz2", tmp_path / "s" / "s.xml.bz2"):
        reader = WikiDumpReader(str(path))
        ids = [d.metadata["page_id"] for d in reader.run()]
        assert len(ids) == len(KEPT) + 150
        assert stats_of(reader)["total"] == len(pages)


def test_missing_input_is_a_clear_error(tmp_path):
    with pytest.raises(wiki.WikiDumpError, match="input not found: .*nope"):
        list(WikiDumpReader(str(tmp_path / "nope.xml.bz2")).run())


def _raw_dump(path, page_blobs: list[bytes]):
    header = f'<mediawiki xmlns="{MEDIAWIKI_NS}" version="0.11" xml:lang="zh">\n{SITEINFO}'.encode()
    path.write_bytes(bz2.compress(header + b"".join(page_blobs) + b"</mediawiki>\n"))


def test_malformed_pages_and_invalid_utf8_are_counted_drops(tmp_path, caplog):
    good = [page_xml(p).encode() for p in filler_pages(3)]
    broken_xml = page_xml({"title": "壞", "id": 7, "text": "x"}).replace("</title>", "</titel>").encode()
    no_id = page_xml({"title": "無編號", "id": 8, "text": "x"}).replace("<id>8</id>", "<id>八</id>").encode()
    unclosed = page_xml({"title": "未結束", "id": 9, "text": "y"}).replace("</page>", "").encode()
    bad_utf8 = page_xml({"title": "亂碼", "id": 10, "text": "正常ZZ"}).encode().replace(b"ZZ", b"\xff\xfe")
    _raw_dump(tmp_path / "bad.xml.bz2", [good[0], broken_xml, no_id, good[1], unclosed, bad_utf8, good[2]])
    docs, steps, _ = run(tmp_path, str(tmp_path / "bad.xml.bz2"), tasks=1)
    assert sorted(d["metadata"]["page_id"] for d in docs) == [1000, 1001, 1002]
    s = steps[0]["stats"]
    assert s["total"] == 7 and s["dropped_malformed"] == 3 and s["dropped_invalid_utf8"] == 1
    assert_reconciles(steps)
    # The exclusion writer keeps each as its raw XML, with its position.
    removed = read_documents(tmp_path / "run" / "removed")
    assert sorted(d["metadata"]["filter_reason"] for d in removed) == ["invalid_utf8"] + ["malformed"] * 3
    assert any("<title>未結束</title>" in d["text"] for d in removed)
    assert all("bad.xml.bz2" in d["metadata"]["position"] for d in removed)


def test_truncated_multistream_counts_lost_pages_and_continues(tmp_path):
    pages = filler_pages(250)
    dump, index = write_wiki_dump(tmp_path / "in" / "t-pages-articles-multistream.xml.bz2", pages)
    data = dump.read_bytes()
    offsets = sorted({int(line.split(":")[0]) for line in bz2.decompress(index.read_bytes()).decode().splitlines()})
    dump.write_bytes(data[: offsets[1] + 200])  # second stream cut short, third gone
    write_wiki_dump(tmp_path / "in" / "ok.xml.bz2", filler_pages(2, start=5000), multistream=False)
    docs, steps, _ = run(tmp_path, str(tmp_path / "in"), tasks=2)
    ids = {d["metadata"]["page_id"] for d in docs}
    assert ids == {p["id"] for p in pages[:100]} | {5000, 5001}
    s = steps[0]["stats"]
    assert s["dropped_truncated"] == 150 and s["total"] == 252
    assert_reconciles(steps)


def test_truncated_plain_dump_keeps_what_precedes(tmp_path):
    # bz2 decodes in blocks of up to 900 kB: make the dump span a few so a cut loses only the tail.
    pages = filler_pages(4000)
    dump, _ = write_wiki_dump(tmp_path / "p.xml.bz2", pages, multistream=False)
    data = dump.read_bytes()
    dump.write_bytes(data[: len(data) * 2 // 3])
    reader = WikiDumpReader(str(dump))
    docs = list(reader.run())
    s = stats_of(reader)
    assert 0 < len(docs) < 4000
    assert [d.metadata["page_id"] for d in docs] == [p["id"] for p in pages[: len(docs)]]
    assert s["total"] == s["forwarded"] + s.get("dropped", 0)


def test_bad_index_line_names_index_and_line(tmp_path):
    dump, index = write_wiki_dump(tmp_path / "x-pages-articles-multistream.xml.bz2", filler_pages(3))
    lines = bz2.decompress(index.read_bytes()).decode().splitlines()
    index.write_bytes(bz2.compress(("\n".join(lines[:2] + ["not an index line"] + lines[2:]) + "\n").encode()))
    with pytest.raises(wiki.WikiDumpError, match=r"-index\.txt\.bz2:3: not an `offset:page_id:title` line"):
        list(WikiDumpReader(str(dump)).run())


def test_limit_stops_without_counting_unread_pages(tmp_path):
    write_wiki_dump(tmp_path / "l.xml.bz2", filler_pages(50))
    reader = WikiDumpReader(str(tmp_path / "l.xml.bz2"), limit=7)
    assert len(list(reader.run())) == 7
    s = stats_of(reader)
    assert s["total"] == s["forwarded"] == 7


def _multistream_without_index(tmp_path, n_pages: int):
    """A multistream dump and its stream offsets, the index deleted (as when only the dump was copied)."""
    pages = filler_pages(n_pages)
    dump, index = write_wiki_dump(tmp_path / "in" / "n-pages-articles-multistream.xml.bz2", pages)
    offsets = sorted({int(line.split(":")[0]) for line in bz2.decompress(index.read_bytes()).decode().splitlines()})
    index.unlink()
    return pages, dump, offsets


@pytest.fixture
def log():
    """What the reader logs (loguru, which pytest's capture does not see)."""
    from loguru import logger

    lines: list[str] = []
    handler = logger.add(lines.append, format="{message}")
    yield lines
    logger.remove(handler)


@pytest.mark.parametrize("chunk", [wiki.CHUNK, 7])  # 7 bytes: headers straddle every read
def test_garbage_in_one_stream_resumes_at_the_next_stream_without_index(tmp_path, log, monkeypatch, chunk):
    monkeypatch.setattr(wiki, "CHUNK", chunk)
    pages, dump, offsets = _multistream_without_index(tmp_path, 250)  # streams of 100, 100, 50 pages
    data = bytearray(dump.read_bytes())
    garbage_at = offsets[1] + 60
    data[garbage_at : garbage_at + 300] = bytes((i * 37 + 11) % 251 for i in range(300))
    dump.write_bytes(bytes(data))
    reader = WikiDumpReader(str(dump))
    docs = list(reader.run())
    # The intact streams after the bad one are read again.
    assert [d.metadata["page_id"] for d in docs] == [p["id"] for p in pages[:100] + pages[200:]]
    s = stats_of(reader)
    # The lost stream counts as many pages as the file's fullest intact stream: 100, not 1.
    assert s["dropped_corrupt_stream"] == 100 and s["total"] == 250
    assert s["total"] == s["forwarded"] + s["dropped"]
    assert s["streams_lost"] == 1 and s["pages_recovered"] == 50
    text = "".join(log)
    assert f"byte {offsets[1]}" in text and f"byte {offsets[2]}" in text


def test_truncated_dump_without_index_counts_its_lost_stream(tmp_path, log):
    pages, dump, offsets = _multistream_without_index(tmp_path, 250)
    dump.write_bytes(dump.read_bytes()[: offsets[1] + 200])  # second stream cut short, third gone
    reader = WikiDumpReader(str(dump))
    docs = list(reader.run())
    assert [d.metadata["page_id"] for d in docs] == [p["id"] for p in pages[:100]]
    s = stats_of(reader)
    assert s["dropped_truncated"] == 100 and s["total"] == s["forwarded"] + s["dropped"] == 200
    assert f"byte {offsets[1]}" in "".join(log)


def test_garbage_in_one_indexed_stream_costs_only_its_pages(tmp_path):
    pages = filler_pages(250)
    dump, index = write_wiki_dump(tmp_path / "in" / "g-pages-articles-multistream.xml.bz2", pages)
    offsets = sorted({int(line.split(":")[0]) for line in bz2.decompress(index.read_bytes()).decode().splitlines()})
    data = bytearray(dump.read_bytes())
    data[offsets[1] + 60 : offsets[1] + 360] = bytes((i * 37 + 11) % 251 for i in range(300))
    dump.write_bytes(bytes(data))
    docs, steps, _ = run(tmp_path, str(dump), tasks=1)
    assert sorted(d["metadata"]["page_id"] for d in docs) == [p["id"] for p in pages[:100] + pages[200:]]
    s = steps[0]["stats"]
    assert s["dropped_corrupt_stream"] == 100 and s["total"] == 250
    assert_reconciles(steps)
