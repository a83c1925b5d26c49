"""Verified shards (`twbert.shards.format`): real shards from the real writer, damaged on disk, must fail
by the file's name in both readers (train's StreamingDataset path and `twbert inspect`); a crafted
index.json declaring a `pkl` column must be refused before anything is decoded."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from _shards_text import documents
from test_shards import build_shards, write_documents

from twbert.cli import main
from twbert.errors import UsageError
from twbert.shards import format as shards_format


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """OUT with shards/ written by the real shards stages (2 tasks, zstd, xxh64)."""
    from twbert.shards.tokenizer import train

    root = tmp_path_factory.mktemp("fmt")
    (root / "corpus.txt").write_text("\n".join(documents(60, seed=1)), encoding="utf-8")
    train([str(root / "corpus.txt")], vocab_size=800, out_dir=root / "tok", show_progress=False)
    write_documents(root / "docs")
    build_shards(root / "out", root / "tok", root / "docs")
    return root / "out"


@pytest.fixture
def run(built, tmp_path) -> Path:
    """A fresh copy of the built run, as the build left it (no decompressed copies), to damage."""
    shutil.copytree(built / "shards", tmp_path / "run" / "shards", ignore=shutil.ignore_patterns("*.mds"))
    return tmp_path / "run"


def train_dataset(shards: Path):
    """What `twbert train` reads shards with: the loader's StreamingDataset, built by training.dataset."""
    from streaming.base.util import clean_stale_shared_memory

    from twbert.training.dataset import build_dataset
    from twbert.training.loader import data_config

    clean_stale_shared_memory()
    return build_dataset(str(shards), data_config({"shuffle": False}), seed=0)


def a_shard(shards: Path, suffix: str = ".mds.zstd") -> Path:
    """A shard file of wiki-tw, a sub-dataset training samples (web-other has weight 0 by default)."""
    return sorted(shards.glob(f"wiki-tw/part-*/*{suffix}"))[0]


def flip_byte(path: Path, at: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if at is None else at
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def inspect_fails(run: Path, capsys) -> str:
    assert main(["inspect", str(run), "--dup-sample", "0", "--samples", "0", "--quiet"]) == 2
    return capsys.readouterr().err


def test_intact_shards_read_whole(run):
    meta = shards_format.read_meta(run / "shards")
    counted = {name: sum(len(s["input_ids"]) for s in shards_format.iter_samples(run / "shards" / name))
               for name in shards_format.dataset_names(run / "shards")}
    assert counted == {k: v["tokens"] for k, v in meta["datasets"].items()}
    ds = train_dataset(run / "shards")
    assert sum(len(ds[i]["input_ids"]) for i in range(ds.num_samples)) == meta["tokens"]


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_damaged_shard_fails_naming_the_file(run, damage, capsys):
    shard = a_shard(run / "shards")
    if damage == "flip":
        flip_byte(shard)
    elif damage == "truncate":
        shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    else:
        shard.unlink()
    with pytest.raises(UsageError) as e:
        train_dataset(run / "shards")
    assert shard.name in str(e.value) and str(shard.parent) in str(e.value) and "rebuild" in str(e.value)
    err = inspect_fails(run, capsys)
    assert shard.name in err and "Traceback" not in err


def test_a_flipped_byte_in_the_data_is_not_trained_on(run):
    """A flip inside a sample's token bytes still decodes (no format error, same size): only the hash catches it.
    Here the shard is there only decompressed, as streaming leaves it for a remote cache."""
    from streaming.base.compression import decompress

    shard = a_shard(run / "shards")
    raw = bytearray(decompress("zstd", shard.read_bytes()))
    raw[-3] ^= 0x01  # inside the last sample's columns
    shard.with_suffix("").write_bytes(bytes(raw))
    shard.unlink()
    with pytest.raises(UsageError, match="hash"):
        train_dataset(run / "shards")


def test_decompressed_copies_are_verified(run, caplog):
    """`twbert train` leaves a decompressed `.mds` beside each `.mds.zstd` in the data folder: a corrupt
    copy is re-derived from its verified compressed file; when both are bad, the read fails by name."""
    ds = train_dataset(run / "shards")
    before = [np.asarray(ds[i]["input_ids"]).tolist() for i in range(ds.num_samples)]
    raw = a_shard(run / "shards", ".mds")
    assert raw.name.endswith(".mds"), "streaming decompressed the shards into the data folder"
    flip_byte(raw, at=raw.stat().st_size - 2)
    with caplog.at_level("WARNING"):
        ds = train_dataset(run / "shards")
        assert [np.asarray(ds[i]["input_ids"]).tolist() for i in range(ds.num_samples)] == before
    assert raw.name in caplog.text and "decompressed again" in caplog.text
    flip_byte(raw, at=raw.stat().st_size - 2)
    flip_byte(Path(str(raw) + ".zstd"))
    with pytest.raises(UsageError, match=raw.name):
        train_dataset(run / "shards")


def write_pkl_dataset(ds_dir: Path, marker: Path) -> None:
    """An MDS dataset whose index.json declares a `pkl` column: decoding it would create `marker`."""
    from streaming import MDSWriter

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    with MDSWriter(out=str(ds_dir), columns={"input_ids": "ndarray:uint32", "evil": "pkl"}, hashes=["xxh64"]) as w:
        w.write({"input_ids": np.arange(5, dtype=np.uint32), "evil": Payload()})


def test_crafted_pkl_column_is_refused_before_decoding(run, tmp_path, capsys):
    from streaming.base.format import reader_from_json

    marker = tmp_path / "pwned"
    write_pkl_dataset(run / "shards" / "evil-tw", marker)
    # the fixture is real: streaming's decoder, as inspect called it, runs the payload
    control = tmp_path / "control"
    write_pkl_dataset(control, tmp_path / "ran")
    shard = json.loads((control / "index.json").read_text())["shards"][0]
    reader = reader_from_json(str(control), None, shard)
    reader.decode_sample(reader.get_sample_data(0))
    assert (tmp_path / "ran").exists()

    err = inspect_fails(run, capsys)
    assert "'evil'" in err and "pkl" in err and "evil-tw" in err
    assert not marker.exists()
    with pytest.raises(UsageError, match="pkl"):
        train_dataset(run / "shards")
    assert not marker.exists()


def test_meta_json_is_validated(run, capsys):
    meta_file = run / "shards" / "meta.json"
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    meta["max_len"] = "8192"
    meta_file.write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(UsageError, match="max_len"):
        shards_format.read_meta(run / "shards")
    meta_file.write_text("{not json", encoding="utf-8")
    assert "meta.json" in inspect_fails(run, capsys)


def test_train_cli_names_the_damaged_shard(run, tmp_path, capsys):
    """`twbert train` itself: a usage error (exit 2) naming the file, before any step."""
    shard = a_shard(run / "shards")
    flip_byte(shard)
    tiny = Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml"
    rc = main(["train", str(tiny), "--data", str(run / "shards"), "--out", str(tmp_path / "t")])
    err = capsys.readouterr().err
    assert rc == 2 and shard.name in err and "rebuild" in err and "Traceback" not in err
    assert not list((tmp_path / "t").glob("checkpoints/step_*"))
