"""A rerun repairs rather than trusts: a task marked complete whose outputs are missing or damaged runs
again, and the result is byte for byte the clean build's. Real builds on the embedded sample."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

import pytest
from _shards_text import documents

from twbert import sample
from twbert.cli import main


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return sample.write(tmp_path_factory.mktemp("sample"), n_generated_pages=60, n_web=30)


@pytest.fixture(scope="module")
def tokenizer(inputs, tmp_path_factory):
    from twbert.shards.tokenizer import train

    tmp = tmp_path_factory.mktemp("tok")
    (tmp / "corpus.txt").write_text("\n".join(documents(60, seed=1)), encoding="utf-8")
    train([str(tmp / "corpus.txt")], vocab_size=800, out_dir=tmp / "tok", show_progress=False)
    return tmp / "tok"


def build(inputs, tokenizer, out: Path, capsys) -> str:
    rc = main(["build", "--wiki", str(inputs["wiki"]), "--fineweb", str(inputs["fineweb"]), "--out", str(out),
               "--tasks", "2", "--workers", "1", "--tokenizer", str(tokenizer)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    return captured.out + captured.err


def digest(out: Path) -> dict[str, str]:
    """Every output byte: documents/, work/ and shards/ (not the logs, which hold timings). A .gz file
    by its content: its header records the time it was written."""
    def content(f: Path) -> bytes:
        return gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes()

    return {str(f.relative_to(out)): hashlib.sha256(content(f)).hexdigest()
            for d in ("documents", "work", "shards") for f in sorted((out / d).rglob("*")) if f.is_file()}


@pytest.fixture(scope="module")
def clean(inputs, tokenizer, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    rc = main(["build", "--wiki", str(inputs["wiki"]), "--fineweb", str(inputs["fineweb"]), "--out", str(out),
               "--tasks", "2", "--workers", "1", "--tokenizer", str(tokenizer)])
    assert rc == 0
    return digest(out)


@pytest.fixture
def built(inputs, tokenizer, clean, tmp_path, capsys):
    out = tmp_path / "out"
    build(inputs, tokenizer, out, capsys)
    assert digest(out) == clean  # the build itself is deterministic
    return out


def test_a_deleted_document_file_is_written_again(inputs, tokenizer, clean, built, capsys):
    victim = built / "documents" / "00001.jsonl.gz"
    victim.unlink()
    said = build(inputs, tokenizer, built, capsys)
    assert f"dedup_filter task 1 runs again: {victim} is missing" in said, said
    assert digest(built) == clean


def test_a_truncated_work_file_is_written_again(inputs, tokenizer, clean, built, capsys):
    victim = built / "work" / "ingest" / "00000.jsonl.gz"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    said = build(inputs, tokenizer, built, capsys)
    assert f"ingest task 0 runs again: {victim}" in said and "truncated or corrupt" in said, said
    # Every stage after a repaired one runs again: they read what it wrote.
    assert "dedup_signatures: every task runs again" in said, said
    assert digest(built) == clean


def test_a_jsonl_file_with_lines_lost_is_written_again(inputs, tokenizer, clean, built, capsys):
    # A complete gzip stream with fewer documents than the task wrote (e.g. copied back from an old run).
    victim = built / "documents" / "00000.jsonl.gz"
    lines = gzip.decompress(victim.read_bytes()).splitlines(keepends=True)
    victim.write_bytes(gzip.compress(b"".join(lines[:-1])))
    said = build(inputs, tokenizer, built, capsys)
    assert f"dedup_filter task 0 runs again: {victim} holds {len(lines) - 1} documents" in said, said
    assert digest(built) == clean


def test_a_damaged_shard_is_written_again(inputs, tokenizer, clean, built, capsys):
    part = next(p for p in sorted((built / "shards").glob("*/part-00001")) if any(p.glob("shard.*")))
    shard = sorted(part.glob("shard.*"))[0]
    shard.write_bytes(shard.read_bytes()[:-7])
    said = build(inputs, tokenizer, built, capsys)
    assert f"shards task 1 runs again: {shard}" in said, said
    assert "shards_merge: every task runs again" in said, said
    assert digest(built) == clean


def test_a_missing_part_index_is_written_again(inputs, tokenizer, clean, built, capsys):
    index = next(p for p in sorted((built / "shards").glob("*/part-00000/index.json")))
    index.unlink()
    shutil.rmtree(built / "shards" / "tokenizer")  # (the tokenizer is installed again before any task)
    said = build(inputs, tokenizer, built, capsys)
    assert f"shards task 0 runs again: {index} is missing" in said, said
    assert digest(built) == clean


def test_an_intact_rerun_repairs_nothing(inputs, tokenizer, built, capsys):
    said = build(inputs, tokenizer, built, capsys)
    assert "runs again" not in said


def test_a_task_without_its_stats_runs_again(inputs, tokenizer, clean, built, capsys):
    # The funnel is read from the per-task stats: a task whose stats are gone is not complete.
    stats = built / "logs" / "ingest" / "stats" / "00001.json"
    stats.unlink()
    said = build(inputs, tokenizer, built, capsys)
    assert f"ingest task 1 runs again: its stats {stats} are missing" in said, said
    assert stats.is_file()
    assert digest(built) == clean
