"""work/ingest's writer: ordinary .jsonl.gz that datatrove reads back, the same bytes on a rerun, and
the repair check still reads them (decompressed)."""

from __future__ import annotations

from datatrove.data import Document
from datatrove.pipeline.readers import JsonlReader

from twbert import outputs
from twbert.config import load
from twbert.pipeline import ingest
from twbert.pipeline.intermediate import WorkJsonlWriter


def docs(n: int = 30) -> list[Document]:
    return [Document(text=f"第{i}篇：臺灣的文字。" * 40, id=f"d{i}", metadata={"source": "web", "n": i}) for i in range(n)]


def write(folder, rank: int = 2) -> list:
    w = WorkJsonlWriter(str(folder))
    list(w.run(iter(docs()), rank=rank, world_size=4))
    return w


def test_reads_back_and_reruns_write_the_same_bytes(tmp_path):
    write(tmp_path / "a")
    write(tmp_path / "b")
    a, b = (tmp_path / "a" / "00002.jsonl.gz").read_bytes(), (tmp_path / "b" / "00002.jsonl.gz").read_bytes()
    assert a == b and a[4:8] == b"\0\0\0\0"  # no wall-clock time in the gzip header
    back = list(JsonlReader(str(tmp_path / "a"))())
    assert [(d.id, d.text, d.metadata["n"]) for d in back] == [(d.id, d.text, d.metadata["n"]) for d in docs()]


def test_repair_check_reads_the_files(tmp_path):
    w = write(tmp_path)
    verify = outputs.jsonl_writer(w)
    stats = [{"stats": {"total": 30}}]
    assert verify(2, stats) is None
    f = tmp_path / "00002.jsonl.gz"
    f.write_bytes(f.read_bytes()[:-40])
    assert "truncated or corrupt" in verify(2, stats)


def test_only_the_intermediate_gets_it(tmp_path):
    on = load("build", overrides={"dedup": {"enabled": True}})
    off = load("build", overrides={"dedup": {"enabled": False}})
    assert isinstance(ingest.writer(on, tmp_path), WorkJsonlWriter)
    assert type(ingest.writer(off, tmp_path)).__name__ == "JsonlWriter"  # documents/ is an output: unchanged
