"""`twbert inspect` on real small builds: the figures it reports must reconcile with the data itself.

Two real builds of the embedded sample (real datatrove stages, real MDS shards), with different
configs: A without dedup and without the variant step, B with the defaults. Tokens are recounted here
with plain `streaming.StreamingDataset` (no twbert code in that read path), documents by reading the
JSONL back, and both are compared with what inspect and the build report.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from _wiki_pages import read_documents as read_folder

from twbert import sample
from twbert.cli import main

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.slow  # two real builds


def read_documents(run: Path) -> list[dict]:
    return read_folder(run / "documents")


def streaming_tokens(shards: Path) -> dict[str, int]:
    """Tokens per sub-dataset, read with streaming's own StreamingDataset."""
    from streaming import StreamingDataset
    from streaming.base.util import clean_stale_shared_memory

    clean_stale_shared_memory()
    out = {}
    for index in sorted(shards.glob("*/index.json")):
        ds = StreamingDataset(local=str(index.parent), shuffle=False, batch_size=1)
        out[index.parent.name] = sum(len(ds[i]["input_ids"]) for i in range(len(ds)))
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    import pyarrow.parquet as pq

    from twbert.shards.tokenizer import train

    root = tmp_path_factory.mktemp("inspect")
    inputs = sample.write(root / "sample", n_generated_pages=30, n_web=50)
    # a small BPE trained on the sample's web text: the shards need some tokenizer
    texts = pq.read_table(inputs["fineweb"], columns=["text"]).column("text").to_pylist()
    (root / "corpus.txt").write_text("\n".join(texts), encoding="utf-8")
    train([str(root / "corpus.txt")], vocab_size=1000, out_dir=root / "tok", show_progress=False)
    (root / "a.yaml").write_text("dedup: {enabled: false}\nvariant: {enabled: false}\n", encoding="utf-8")
    out = {}
    for name, config in (("a", [str(root / "a.yaml")]), ("b", [])):
        run = root / f"run_{name}"
        rc = main(["build", *config, "--wiki", str(inputs["wiki"]), "--fineweb", str(inputs["fineweb"]),
                   "--out", str(run), "--tasks", "1", "--workers", "1", "--tokenizer", str(root / "tok")])
        assert rc == 0
        out[name] = run
    out["root"] = root
    return out


@pytest.fixture(scope="module")
def report_b(runs):
    """`twbert inspect RUN_B --json --html`, and the JSON it wrote."""
    js, page = runs["root"] / "b.json", runs["root"] / "b.html"
    rc = main(["inspect", str(runs["b"]), "--json", str(js), "--html", str(page), "--samples", "3", "--seed", "1",
               "--dup-sample", "40", "--quiet"])
    assert rc == 0, "a reconciliation check failed"
    return json.loads(js.read_text(encoding="utf-8")), page


def test_funnel_reconciles(runs, report_b):
    r, _ = report_b
    stats = json.loads((runs["b"] / "stats.json").read_text(encoding="utf-8"))
    assert r["funnel"]["present"] and len(r["funnel"]["rows"]) == len(stats["funnel"])
    for row, raw in zip(r["funnel"]["rows"], stats["funnel"]):
        assert (row["stage"], row["step"], row["read"]) == (raw["stage"], raw["step"], raw["read"])
        if not row["sink"]:
            assert row["kept"] + sum(row["dropped"].values()) == row["read"] == raw["kept"] + sum(raw["dropped"].values())
    assert all(c["ok"] for c in r["checks"]) and r["ok"]


def test_documents_and_dedup_reconcile(runs, report_b):
    r, _ = report_b
    docs = read_documents(runs["b"])
    after = r["sources"]["after"]
    assert after["documents"] == len(docs) == r["lengths"]["doc_chars"]["count"]
    assert after["source"] == {s: sum(d["metadata"]["source"] == s for d in docs) for s in after["source"]}
    assert r["lengths"]["doc_chars"]["total"] == sum(len(d["text"]) for d in docs)
    assert sum(r["lengths"]["doc_chars_hist"].values()) == len(docs)
    sizes = {}
    for d in docs:
        k = str(d["metadata"]["dup_cluster_size"])
        sizes[k] = sizes.get(k, 0) + 1
    assert r["dedup"]["cluster_sizes"] == dict(sorted(sizes.items(), key=lambda x: int(x[0])))
    removed = r["dedup"]["build"]["removed"]
    assert removed > 0, "the sample plants near-duplicates: dedup must remove some"
    assert removed == sum((int(k) - 1) * v for k, v in sizes.items())
    rate = r["dedup"]["near_duplicate_rate"]
    assert set(rate) == {"before", "after"} and rate["before"]["rate"] > rate["after"]["rate"]


def test_tokens_counted_in_shards_equal_tokens_reported(runs, report_b):
    r, _ = report_b
    sh = r["shards"]
    meta = json.loads((runs["b"] / "shards" / "meta.json").read_text(encoding="utf-8"))
    counted = streaming_tokens(runs["b"] / "shards")
    assert counted and {k: v["tokens"] for k, v in sh["datasets"].items()} == counted
    assert {k: v["tokens"] for k, v in meta["datasets"].items()} == counted
    assert sh["counted"]["tokens"] == sum(counted.values()) == meta["tokens"] == sh["stats"]["tokens"]
    assert sh["stats"]["datasets"] == counted
    assert sh["counted"]["chunks"] == meta["chunks"] == sum(sh["chunk_hist"].values())
    for phase in sh["phases"].values():
        assert phase["chunks_fit"] + phase["chunks_cut"] == sh["counted"]["chunks"]


def test_samples_preview_the_masking(runs, report_b):
    from tokenizers import Tokenizer

    r, _ = report_b
    tok = Tokenizer.from_file(str(runs["b"] / "shards" / "tokenizer" / "tokenizer.json"))
    assert len(r["samples"]) == 3
    previews = [s["mask_preview"] for s in r["samples"]]
    assert all(p is not None for p in previews)
    docs = {str(d["id"]): d["text"] for d in read_documents(runs["b"])}
    for s, p in zip(r["samples"], previews):
        text = "".join(t for t, _ in p["segments"])
        assert "\ufffd" not in text
        assert docs[s["id"]].startswith(text) or text in docs[s["id"]]  # the chunk's own text, unaltered
        assert any(m for _, m in p["segments"]) and any(not m for _, m in p["segments"])
        assert p["masked_tokens"] == sum(p["replaced"].values())
        assert abs(p["masked_tokens"] / p["tokens"] - p["rate"]) < 0.15
        assert len(tok.encode(text, add_special_tokens=False).ids) == p["tokens"]


def test_against_shows_what_the_config_changed(runs, tmp_path):
    js = tmp_path / "cmp.json"
    rc = main(["inspect", str(runs["a"]), "--against", str(runs["b"]), "--json", str(js), "--dup-sample", "0",
               "--samples", "1", "--quiet"])
    assert rc == 0
    out = json.loads(js.read_text(encoding="utf-8"))
    diffs = {d["key"]: d for d in out["differences"]}
    a_docs, b_docs = len(read_documents(runs["a"])), len(read_documents(runs["b"]))
    assert a_docs > b_docs
    assert diffs["sources.after.documents"]["a"] == a_docs and diffs["sources.after.documents"]["b"] == b_docs
    assert diffs["sources.after.documents"]["delta"] == b_docs - a_docs
    # dedup ran only in B: its funnel rows and numbers are new
    new = [k for k, d in diffs.items() if k.startswith("funnel.dedup_filter/") and d["a"] is None]
    assert new and diffs["dedup.build.removed"]["b"] > 0 and "a" in diffs["dedup.build.removed"]
    assert diffs["shards.counted.tokens"]["b"] < diffs["shards.counted.tokens"]["a"]
    assert out["a"]["present"]["dedup"] is False and out["b"]["present"]["dedup"] is True


def test_missing_parts_are_reported_absent(runs, tmp_path, capsys):
    partial = tmp_path / "partial"
    shutil.copytree(runs["a"] / "documents", partial / "documents")  # no stats.json, no shards
    js = tmp_path / "p.json"
    assert main(["inspect", str(partial), "--json", str(js), "--dup-sample", "0", "--samples", "1"]) == 0
    r = json.loads(js.read_text(encoding="utf-8"))
    assert r["present"] == {"stats": False, "documents": True, "shards": False, "dedup": False, "variant": False}
    assert r["samples"][0]["mask_preview"] is None and r["samples"][0]["excerpt"]
    assert "Shards: absent" in capsys.readouterr().out
    assert main(["inspect", str(tmp_path / "nothing-here")]) == 2


def test_html_renders_its_plots_in_chromium(report_b, tmp_path):
    """Load the report in headless Chromium: every embedded plot decodes, and the screenshot shows them."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium absent: install Debian's chromium (apt-get install -y chromium) to check the HTML")
    from PIL import Image

    _, page = report_b
    html = page.read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html.split("<body>")[0]  # nothing fetched: offline
    n_img = html.count("<img ")
    assert n_img >= 6
    # the same page plus a probe that writes each image's decoded size into the DOM once loaded
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", "<script>window.addEventListener('load',()=>{document.body.dataset.imgs="
                                  "[...document.images].map(i=>i.naturalWidth+'x'+i.naturalHeight).join(',')})</script></body>"),
                     encoding="utf-8")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=5000"]
    dom = subprocess.run([str(CHROMIUM), *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    sizes = dom.split('data-imgs="', 1)[1].split('"', 1)[0].split(",")
    assert len(sizes) == n_img and all(int(w) > 100 and int(h) > 100 for w, h in (s.split("x") for s in sizes))
    shot = page.with_suffix(".png")
    subprocess.run([str(CHROMIUM), *flags, "--window-size=1200,2400", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120)
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.std() > 20, "the screenshot is blank"
    # the funnel plot's bars: matplotlib's kept (#3b8a5a) and dropped (#c8553d) colours are on screen
    for rgb in ((0x3B, 0x8A, 0x5A), (0xC8, 0x55, 0x3D)):
        assert (np.abs(img - rgb).sum(axis=2) < 12).sum() > 500, f"no plot pixels of colour {rgb}"


def test_a_figure_that_does_not_reconcile_fails(runs, tmp_path, capsys):
    """Shards whose meta.json over-reports one sub-dataset's tokens: the check names it, the exit code is 1."""
    bad = tmp_path / "bad"
    shutil.copytree(runs["b"] / "shards", bad / "shards")
    shutil.copy(runs["b"] / "stats.json", bad / "stats.json")
    meta = json.loads((bad / "shards" / "meta.json").read_text(encoding="utf-8"))
    name = sorted(meta["datasets"])[0]
    meta["datasets"][name]["tokens"] += 1
    (bad / "shards" / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    js = tmp_path / "bad.json"
    assert main(["inspect", str(bad), "--json", str(js), "--dup-sample", "0", "--samples", "0", "--quiet"]) == 1
    r = json.loads(js.read_text(encoding="utf-8"))
    failed = [c for c in r["checks"] if not c["ok"]]
    assert [c["name"] for c in failed] == ["shards: tokens counted in the shards == shards/meta.json"]
    assert name in failed[0]["detail"] and not r["ok"]
    out = capsys.readouterr().out
    assert f"checks: {len(r['checks']) - 1}/{len(r['checks'])} pass" in out


def test_json_is_the_report_and_is_deterministic(runs, report_b):
    """--json writes exactly what inspect_run returns; the same run and seed give the same numbers and samples."""
    from twbert.inspection import inspect_run

    r, _ = report_b
    again = json.loads(json.dumps(inspect_run(runs["b"], samples=3, seed=1, dup_sample=40), ensure_ascii=False))
    assert again == r
    other_seed = inspect_run(runs["b"], samples=3, seed=2, dup_sample=0)
    assert [s["id"] for s in other_seed["samples"]] != [s["id"] for s in r["samples"]]
