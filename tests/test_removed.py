"""OUT/removed/: every document a build step drops is kept there, with its reason (the audit trail)."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
import yaml
from _wiki_pages import filler_pages, read_documents, web_rows, wiki_pages
from neardups import sentence

from twbert import sample
from twbert.cli import main
from twbert.dumps import write_fineweb_parquet, write_wiki_dump
from twbert.pipeline.removed import UNSAVABLE, step_folder


def _paragraph(rng) -> str:
    return "".join(sentence(rng) for _ in range(3)) + "在這裡的人都知道這件事。"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The embedded sample, plus pages and rows that every other dropping step drops."""
    root = tmp_path_factory.mktemp("inputs")
    sample_files = sample.write(root / "sample", n_generated_pages=60, n_web=60)
    write_wiki_dump(root / "wiki" / "x-pages-articles.xml.bz2", wiki_pages() + filler_pages(5), multistream=False)
    rng = random.Random(3)
    p = [_paragraph(rng) for _ in range(6)]
    rows = web_rows() + [
        {"text": "   ", "id": "blank-row"},  # the reader drops it: `empty`
        {"text": "參考資料\nhttps://example.com/a\nhttps://example.com/b", "id": "only-links"},  # stripped to nothing
        # Every paragraph of the third repeats one of the first two: the paragraph filter drops it.
        {"text": "\n".join([p[0], p[2], p[4]]), "id": "para-a"},
        {"text": "\n".join([p[1], p[3], p[5]]), "id": "para-b"},
        {"text": "\n".join([p[0], p[1]]), "id": "para-c"},
    ]
    write_fineweb_parquet(root / "web" / "x.parquet", rows)
    return {"wiki": [str(sample_files["wiki"]), str(root / "wiki")],
            "fineweb": [str(sample_files["fineweb"].parent), str(root / "web")]}


def build(inputs, out: Path, **cfg) -> dict:
    config = out.parent / f"{out.name}.yaml"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    rc = main(["build", str(config), "--wiki", *inputs["wiki"], "--fineweb", *inputs["fineweb"],
               "--out", str(out), "--tasks", "2", "--workers", "1"])
    assert rc == 0
    return json.loads((out / "stats.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def built(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("audit") / "run"
    # Hong Kong text dropped and paragraph dedup on, so the variant policy and the paragraph filter drop too.
    stats = build(inputs, out, variant={"policy": {"drop": ["hk"]}},
                  dedup={"paragraphs": {"enabled": True, "min_chars": 8, "shards": 2}})
    return out, stats


def test_removed_holds_each_dropped_document_with_its_reason(built):
    out, stats = built
    dropping = set()
    for row in stats["funnel"]:
        folder = out / "removed" / row["stage"] / step_folder(row["step"])
        docs = read_documents(folder) if folder.is_dir() else []
        expect = {r: n for r, n in row["dropped"].items() if n and r not in UNSAVABLE}
        got = Counter(d["metadata"].get("filter_reason") for d in docs)
        assert dict(got) == expect, (row["stage"], row["step"])
        for d in docs:
            assert {"text", "id", "metadata"} <= set(d)
        if expect:
            dropping.add(step_folder(row["step"]))
    assert dropping == {"zhwiki_dump", "fineweb2_parquet", "wikitext_text", "web_reference_stripper",
                        "chinese_quality_fineweb2_cmn_hani", "variant_policy", "minhash_filter", "paragraph_filter"}, stats["funnel"]


def test_every_removed_folder_is_a_funnel_step(built):
    out, stats = built
    steps = {(r["stage"], step_folder(r["step"])) for r in stats["funnel"]}
    folders = {(p.parent.name, p.name) for p in (out / "removed").glob("*/*") if p.is_dir()}
    assert folders and folders <= steps


def test_removed_documents_keep_what_was_dropped(built):
    out, _ = built
    wiki = read_documents(out / "removed" / "ingest" / "zhwiki_dump")
    redirects = [d for d in wiki if d["metadata"]["filter_reason"] == "redirect"]
    assert redirects and all(d["metadata"]["source"] == "wiki" and d["metadata"]["title"] for d in redirects)
    quality = read_documents(out / "removed" / "ingest" / step_folder("Chinese quality (FineWeb2 cmn_Hani)"))
    assert quality and all(d["text"] and d["metadata"]["source"] == "web" for d in quality)


def test_removed_off_writes_nothing(inputs, tmp_path):
    stats = build(inputs, tmp_path / "run", output={"removed": False})
    assert sum(sum(r["dropped"].values()) for r in stats["funnel"]) > 0
    assert not (tmp_path / "run" / "removed").exists()


def test_removed_exists_when_nothing_was_dropped(inputs, tmp_path):
    # Only FineWeb rows that pass every filter: nothing dropped, the folder is still there.
    out = tmp_path / "run"
    build_cfg = dict(quality={"enabled": False}, variant={"enabled": False}, dedup={"enabled": False})
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(build_cfg), encoding="utf-8")
    from twbert.dumps import write_fineweb_parquet

    web = write_fineweb_parquet(tmp_path / "web" / "a.parquet", [{"text": "臺北市今天天氣晴朗，適合出門走走。"}] * 3)
    assert main(["build", str(config), "--fineweb", str(web), "--out", str(out), "--tasks", "1"]) == 0
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert all(not any(r["dropped"].values()) for r in stats["funnel"])
    assert (out / "removed").is_dir()


def test_step_folder_is_stable_and_idempotent():
    assert step_folder("🧹 wikitext → text") == step_folder("wikitext → text") == "wikitext_text"
    assert step_folder("📖 - READER: 📚 zhwiki dump") == "zhwiki_dump"
    assert step_folder(step_folder("Variant policy")) == "variant_policy"
