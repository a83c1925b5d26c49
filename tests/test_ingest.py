"""The ingest stage end to end: a zhwiki dump excerpt and FineWeb2 parquet through the configured pipeline."""

from __future__ import annotations

import re

from _wiki_pages import assert_reconciles, filler_pages, read_documents, stage_stats, web_rows, wiki_pages
from datatrove.executor import LocalPipelineExecutor

from twbert.config import load
from twbert.dumps import write_fineweb_parquet, write_wiki_dump
from twbert.pipeline.ingest import stages

REFERENCE_TEXT = ("某書", "官方網站", "官方网站", "新北市", "參考", "参考", "外部連結")


def build(tmp_path, **overrides):
    write_wiki_dump(tmp_path / "in" / "wiki" / "zhwiki-20260101-pages-articles-multistream.xml.bz2", wiki_pages() + filler_pages(120))
    write_fineweb_parquet(tmp_path / "in" / "web" / "000_00000.parquet", web_rows())
    cfg = load("build", overrides={"inputs": {"wiki": [str(tmp_path / "in" / "wiki")], "fineweb": [str(tmp_path / "in" / "web" / "000_00000.parquet")]},
                                   "executor": {"tasks": 2}, **overrides})
    (stage,) = stages(cfg, tmp_path / "documents")
    assert stage.name == "ingest" and stage.tasks == 2
    LocalPipelineExecutor(stage.pipeline, tasks=stage.tasks, workers=1, logging_dir=str(tmp_path / "logs")).run()
    return read_documents(tmp_path / "documents"), stage_stats(tmp_path / "logs")


def test_ingest_stage_end_to_end(tmp_path):
    # The default config, variant policy included: it tiers wiki pages but must not re-convert them.
    docs, steps = build(tmp_path)
    assert sorted((tmp_path / "documents").iterdir())[0].name.endswith(".jsonl.gz")
    wiki = {d["metadata"]["title"]: d for d in docs if d["metadata"]["source"] == "wiki"}
    web = {d["id"]: d for d in docs if d["metadata"]["source"] == "web"}
    assert set(wiki) == {"軟體", "臺北市"} | {p["title"] for p in filler_pages(120)}

    for d in wiki.values():
        for marker in ("-{", "}-", "{{", "}}", "[[", "]]", "<ref"):
            assert marker not in d["text"], (d["metadata"]["title"], marker)
        for ref in REFERENCE_TEXT:
            assert ref not in d["text"], (d["metadata"]["title"], ref)
    soft = wiki["軟體"]["text"]
    # zh-tw variants chosen (NoteTA, -{H|}-, inline choice), the pinned form kept, template text kept.
    for s in ("雪梨", "滑鼠", "記憶體", "資訊科技", "于爾班", "software", "logiciel", "阿蘭·圖靈", "葛麗絲·霍普", "編譯器"):
        assert s in soft, s
    for s in ("悉尼", "鼠标", "内存", "信息", "於爾班", "（，）"):
        assert s not in soft, s
    assert "位於臺灣北部" in wiki["臺北市"]["text"]
    assert "軟體" in wiki["條目7"]["text"]

    # FineWeb2 rows pass with their metadata; spam and low language score are dropped.
    assert set(web) == {"<urn:uuid:web-good>"}
    m = web["<urn:uuid:web-good>"]["metadata"]
    assert m["url"] == "https://news.example.com.tw/a/1" and m["minhash_cluster_size"] == 3 and m["language_score"] == 0.97
    assert m["pii"] == {"email": 1, "phone": 2}
    text = web["<urn:uuid:web-good>"]["text"]
    assert "<EMAIL>" in text and "https://" not in text and not re.search(r"09\d\d-\d{3}-\d{3}", text)

    names = [s["name"] for s in steps]
    assert any("zhwiki" in n for n in names) and any("FineWeb2" in n for n in names)
    by = {s["name"]: s["stats"] for s in steps}
    reader = next(v for k, v in by.items() if "zhwiki" in k)
    assert reader["total"] == len(wiki_pages()) + 120
    assert reader["dropped_redirect"] == 1 and reader["dropped_disambiguation"] == 1 and reader["dropped_namespace"] == 1
    assert_reconciles(steps)


def test_plain_jsonl_and_steps_switched_off(tmp_path):
    docs, steps = build(tmp_path, output={"compression": None}, quality={"enabled": False}, pii={"enabled": False},
                        web={"strip_references": False})
    assert all(f.suffix == ".jsonl" for f in (tmp_path / "documents").iterdir())
    web = {d["id"] for d in docs if d["metadata"]["source"] == "web"}
    assert web == {r["id"] for r in web_rows()}
    assert not any("quality" in s["name"] or "PII" in s["name"] for s in steps)
    assert_reconciles(steps)


def test_with_variant_steps_on(tmp_path):
    docs, steps = build(tmp_path)
    wiki = {d["metadata"]["title"]: d["text"] for d in docs if d["metadata"]["source"] == "wiki"}
    assert {"軟體", "臺北市"} <= set(wiki)
    for title, text in wiki.items():
        assert not re.search(r"-\{|\}-|\{\{|\}\}|\[\[|\]\]|<ref", text), title
        assert not any(ref in text for ref in REFERENCE_TEXT), title
    for s in ("雪梨", "滑鼠", "記憶體", "software", "葛麗絲·霍普", "編譯器"):
        assert s in wiki["軟體"], s
    web = [d for d in docs if d["metadata"]["source"] == "web"]
    assert [d["id"] for d in web] == ["<urn:uuid:web-good>"] and web[0]["metadata"]["minhash_cluster_size"] == 3
    assert_reconciles(steps)


def test_unreadable_inputs_fail_before_any_task(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    import pytest

    from twbert.errors import UsageError

    pq.write_table(pa.table({"content": ["x"]}), tmp_path / "bad.parquet")
    (tmp_path / "empty").mkdir()
    (tmp_path / "zhwiki.xml").write_text("<mediawiki></mediawiki>", encoding="utf-8")
    (tmp_path / "cfg.yaml").write_text("dedup:\n  enabled: false\n", encoding="utf-8")
    cases = [
        ({"wiki": [str(tmp_path / "missing.xml.bz2")]}, r"inputs.wiki: input not found: .*missing.xml.bz2"),
        ({"wiki": [str(tmp_path / "empty")]}, r"inputs.wiki: no \*.xml.bz2 dump under .*empty"),
        ({"wiki": [str(tmp_path / "zhwiki.xml")]}, r"inputs.wiki: .*zhwiki.xml: not a bz2 file; twbert reads \*.xml.bz2 dumps"),
        ({"wiki": [str(tmp_path / "cfg.yaml")]}, r"cfg.yaml: not a bz2 file.*put the config before --wiki"),
        ({"fineweb": [str(tmp_path / "cfg.yaml")]}, r"inputs.fineweb: .*cfg.yaml: not a parquet file.*before --fineweb"),
        ({"fineweb": [str(tmp_path / "bad.parquet")]}, r"bad.parquet: no `text` column \(columns: content\)"),
    ]
    for inputs, message in cases:
        cfg = load("build", overrides={"inputs": inputs})
        with pytest.raises(UsageError, match=message):
            stages(cfg, tmp_path / "documents")
