"""`twbert build` end to end on the embedded sample: real dumps, real datatrove executors."""

import json
import re
from pathlib import Path

import pytest
from _wiki_pages import read_documents as read_folder

from twbert import sample
from twbert.cli import main


def read_documents(out: Path) -> list[dict]:
    return read_folder(out / "documents")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return sample.write(tmp_path_factory.mktemp("sample"), n_generated_pages=120, n_web=60)


@pytest.fixture(scope="module")
def built(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    rc = main(["build", "--wiki", str(inputs["wiki"]), "--fineweb", str(inputs["fineweb"].parent),
               "--out", str(out), "--tasks", "2", "--workers", "1"])
    assert rc == 0
    return out


def test_funnel_accounts_for_every_document(built):
    stats = json.loads((built / "stats.json").read_text(encoding="utf-8"))
    assert stats["funnel"], "no step reported a funnel"
    for row in stats["funnel"]:
        assert "UNEXPLAINED" not in row["dropped"], row
        assert row["read"] == row["kept"] + sum(row["dropped"].values()), row


def test_funnel_chains_from_readers_to_documents(built):
    stats = json.loads((built / "stats.json").read_text(encoding="utf-8"))
    docs = read_documents(built)
    # The last step of the last stage keeps exactly what landed in documents/.
    assert stats["funnel"][-1]["kept"] == len(docs)
    reasons = {r for row in stats["funnel"] for r in row["dropped"]}
    assert {"redirect", "disambiguation"} <= reasons


def test_documents_are_clean_and_carry_metadata(built, inputs):
    docs = read_documents(built)
    wiki = [d for d in docs if d["metadata"]["source"] == "wiki"]
    web = [d for d in docs if d["metadata"]["source"] == "web"]
    assert wiki and web
    for d in wiki:
        assert not re.search(r"-\{|\}-|\{\{|\}\}|\[\[|\]\]|<ref", d["text"]), d["text"][:200]
        assert {"title", "page_id", "rev_id"} <= set(d["metadata"])
    titles = {d["metadata"]["title"] for d in wiki}
    assert "臺北捷運" in titles and "台北捷运" not in titles  # the article kept, its redirect not
    for d in web:
        assert {"url", "language_score", "minhash_cluster_size"} <= set(d["metadata"])


def test_rerun_skips_completed_tasks_and_keeps_the_funnel(built, inputs):
    before = (built / "stats.json").read_text(encoding="utf-8")
    docs_before = read_documents(built)
    written = {f: f.stat().st_mtime_ns for f in built.rglob("*") if f.is_file() and f.name not in ("stats.json", "build.lock")}
    rc = main(["build", "--wiki", str(inputs["wiki"]), "--fineweb", str(inputs["fineweb"]),
               "--out", str(built), "--tasks", "2", "--workers", "1"])
    assert rc == 0
    # No task ran again: every output and log file is untouched.
    assert {f: f.stat().st_mtime_ns for f in written} == written
    assert json.loads((built / "stats.json").read_text(encoding="utf-8"))["funnel"] == json.loads(before)["funnel"]
    assert read_documents(built) == docs_before


def test_missing_inputs_and_output_are_usage_errors(tmp_path, capsys):
    assert main(["build", "--out", str(tmp_path)]) == 2
    assert "no inputs" in capsys.readouterr().err
    assert main(["build", "--wiki", str(tmp_path)]) == 2
    assert "no output directory" in capsys.readouterr().err


def test_a_config_after_wiki_paths_is_a_usage_error(inputs, tmp_path, capsys):
    # `--wiki` takes every path after it, so the config lands among the dumps.
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("dedup:\n  enabled: false\n", encoding="utf-8")
    assert main(["build", "--wiki", str(inputs["wiki"]), str(cfg), "--out", str(tmp_path / "out"),
                 "--tasks", "1", "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}: not a bz2 file" in err and "put the config before --wiki" in err
    assert not (tmp_path / "out" / "documents").exists()


@pytest.mark.slow
def test_ray_executor_gives_the_same_documents_as_local(inputs, tmp_path):
    ray = pytest.importorskip("ray", reason="the Ray executor test needs `pip install ray` (in the dev extra)")
    # Four bands instead of 28 keep the task count down (every Ray task pays seconds of start-up);
    # the multi-task dedup (two pair-verification tasks, then the cluster merge) runs as on a cluster.
    runs = {}
    for kind in ("local", "ray"):
        cfg = tmp_path / f"{kind}.yaml"
        cfg.write_text(f"executor:\n  type: {kind}\n  ray:\n    mem_per_cpu_gb: 0.5\n"
                       "dedup:\n  buckets: 4\n  hashes_per_bucket: 2\n  pair_tasks: 2\n", encoding="utf-8")
        runs[kind] = tmp_path / kind
        try:
            rc = main(["build", str(cfg), "--wiki", str(inputs["wiki"]), "--fineweb", str(inputs["fineweb"]),
                       "--out", str(runs[kind]), "--tasks", "2", "--workers", "2"])
        finally:
            ray.shutdown()
        assert rc == 0
    key = lambda d: d["id"]
    assert read_documents(runs["ray"]) and sorted(read_documents(runs["ray"]), key=key) == sorted(
        read_documents(runs["local"]), key=key)
    funnels = {k: json.loads((v / "stats.json").read_text(encoding="utf-8"))["funnel"] for k, v in runs.items()}
    assert funnels["ray"] == funnels["local"]
    dedup_row = next(r for r in funnels["ray"] if r["stage"] == "dedup_filter" and r["dropped"])
    assert dedup_row["dropped"]["near_duplicate"] > 0
