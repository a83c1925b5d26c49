"""FineWebReader on FineWeb2-schema parquet: metadata, paths, remotes, bad input."""

from __future__ import annotations

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _wiki_pages import assert_reconciles, read_documents, stage_stats, web_rows
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.writers import JsonlWriter

from twbert.dumps import write_fineweb_parquet
from twbert.pipeline.fineweb import FineWebError, FineWebReader


def test_rows_pass_through_with_metadata(tmp_path):
    write_fineweb_parquet(tmp_path / "in" / "000_00000.parquet", web_rows()[:2])
    write_fineweb_parquet(tmp_path / "in" / "sub" / "000_00001.parquet", web_rows()[2:])
    out, logs = tmp_path / "out", tmp_path / "logs"
    LocalPipelineExecutor([FineWebReader(str(tmp_path / "in")), JsonlWriter(str(out))], tasks=2, workers=1, logging_dir=str(logs)).run()
    docs = {d["id"]: d for d in read_documents(out)}
    assert set(docs) == {"<urn:uuid:web-good>", "<urn:uuid:web-spam>", "<urn:uuid:web-low-lid>"}
    m = docs["<urn:uuid:web-good>"]["metadata"]
    assert m["source"] == "web" and m["url"] == "https://news.example.com.tw/a/1" and m["id"] == "<urn:uuid:web-good>"
    assert m["language_score"] == pytest.approx(0.97) and m["minhash_cluster_size"] == 3
    assert m["dump"] == "CC-MAIN-2024-10" and m["date"] == "2024-02-21T12:00:00Z"
    assert docs["<urn:uuid:web-good>"]["text"] == web_rows()[0]["text"]
    steps = stage_stats(logs)
    assert steps[0]["stats"]["total"] == 3
    assert_reconciles(steps)


def test_empty_text_rows_are_counted_drops(tmp_path):
    write_fineweb_parquet(tmp_path / "a.parquet", [{"text": "有內容"}, {"text": ""}, {"text": "  \n"}])
    r = FineWebReader(str(tmp_path / "a.parquet"))
    assert [d.text for d in r.run()] == ["有內容"]
    s = {k: v.total for k, v in r.stats.stats.items()}
    assert s["total"] == 3 and s["forwarded"] == 1 and s["dropped_empty"] == 2


def test_fsspec_remote_path(tmp_path):
    local = write_fineweb_parquet(tmp_path / "a.parquet", web_rows())
    with fsspec.open("memory://bucket/cmn_Hani/train/000.parquet", "wb") as f:
        f.write(local.read_bytes())
    r = FineWebReader("memory://bucket/cmn_Hani")
    assert r.files() == ["memory:///bucket/cmn_Hani/train/000.parquet"]
    assert [d.id for d in r.run()] == [row["id"] for row in web_rows()]


def test_parquet_without_text_names_the_file(tmp_path):
    path = tmp_path / "notext.parquet"
    pq.write_table(pa.table({"content": ["x"], "id": ["1"]}), path)
    with pytest.raises(FineWebError, match=r"notext\.parquet: no `text` column \(columns: content, id\)"):
        list(FineWebReader(str(path)).run())


def test_corrupt_parquet_names_the_file(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(FineWebError, match="broken.parquet: not a readable parquet file"):
        list(FineWebReader(str(path)).run())


def test_limit_stops_without_counting_unread_rows(tmp_path):
    write_fineweb_parquet(tmp_path / "a.parquet", [{"text": f"第{i}列"} for i in range(20)])
    r = FineWebReader(str(tmp_path / "a.parquet"), limit=5)
    assert len(list(r.run())) == 5
    s = {k: v.total for k, v in r.stats.stats.items()}
    assert s["total"] == s["forwarded"] == 5
