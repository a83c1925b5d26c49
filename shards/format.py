"""The shards format: what `shards/writer.py` writes and what training, inspect and export read.

This module alone knows it (as streaming's `format/mds/` knows MDS); nothing else opens a shard,
an index.json, meta.json or twbert_tokenizer.json by hand.

    OUT/shards/
      <source>-<tier>/index.json   one MDS dataset per source x tier, merged from its parts
      <source>-<tier>/part-NNNNN/  shard.NNNNN.mds.zstd (+ shard.NNNNN.mds once streaming decompressed it)
      meta.json                    `new_meta` + what the merge counted (`write_meta` / `read_meta`)
      tokenizer/                   the prepared tokenizer the shards were made with (`read_tokenizer_info`)
      _tasks/                      per-task stats the merge sums

Shards are verified before they are read: every shard file against the xxh64 hash index.json records
for it, once per file (`verify_dataset`). A decompressed copy (`.mds`, which streaming writes next to the
`.mds.zstd` it came from) is checked too, and re-derived from its verified compressed file when it does
not match. Columns whose MDS encoding runs code when decoded (`pkl`) are refused before anything is
decoded (`check_columns`): a shards directory is data, and data never runs code.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from twbert.errors import UsageError

FORMAT = 1
COLUMNS = {
    "input_ids": "ndarray:uint32",  # content tokens, no [CLS]/[SEP]; at most max_len - 2
    "word_ids": "ndarray:int32",  # per token, its word within the chunk, from 0
    "doc_id": "str",
    "chunk_index": "int",
    "source": "str",
    "tier": "str",
    "weight": "float32",  # the variant policy's weight of the document
}
HASH = "xxh64"  # what the writer records for every shard file (raw and compressed)
INDEX_FILE = "index.json"
META_FILE = "meta.json"
TASKS_DIR = "_tasks"
TOKENIZER_DIR = "tokenizer"
TOKENIZER_INFO = "twbert_tokenizer.json"  # shards/tokenizer.py writes it: <role>_token_id, vocab sizes
SPECIAL_ROLES = ("cls", "sep", "mask", "pad", "unk")
_REBUILD = "rebuild the shards (rerun `twbert build` with a fresh --out) or restore the file from where it came"

log = logging.getLogger(__name__)


# --- meta.json -----------------------------------------------------------------------------------
def histogram_edges(limit: int) -> list[int]:
    """Upper bounds of the chunk-length buckets: 16, 32, 64 … up to the first power of two >= limit."""
    edges = [16]
    while edges[-1] < limit:
        edges.append(edges[-1] * 2)
    return edges


def new_meta(max_len: int, tokenizer: dict, segmenter: dict, chunking: dict) -> dict:
    """meta.json's facts known before any shard is written; the merge adds what it counted.

    `tokenizer` is `shards.tokenizer`'s info (twbert_tokenizer.json) of the installed tokenizer.
    """
    return {
        "format": FORMAT,
        "max_len": max_len,
        "max_chunk_tokens": max_len - 2,
        "columns": COLUMNS,
        "tokenizer": {
            "dir": TOKENIZER_DIR,
            **{k: tokenizer[k] for k in ("source", "vocab_size", "padded_vocab_size", "special_tokens")},
            **{k: v for k, v in tokenizer.items() if k.endswith("_token_id")},
        },
        "segmenter": segmenter,
        "chunking": chunking,
        "chunk_length_histogram_edges": histogram_edges(max_len - 2),
    }


def write_json(path: Path, obj) -> None:
    """Sorted keys, written beside and renamed into place: byte-identical for the same content."""
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def write_meta(shards_dir: str | Path, meta: dict) -> None:
    write_json(Path(shards_dir) / META_FILE, meta)


def read_meta(shards_dir: str | Path) -> dict | None:
    """The shards' meta.json, checked; None when there is none (shards_merge did not finish, or hand-made shards)."""
    path = Path(shards_dir) / META_FILE
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: cannot read ({e}); rebuild the shards (`twbert build`) to rewrite it") from None
    problems = []
    if not isinstance(meta, dict):
        raise UsageError(f"{path}: not a JSON object; rebuild the shards (`twbert build`) to rewrite it")
    if meta.get("format") != FORMAT:
        problems.append(f"format is {meta.get('format')!r}, this twbert reads {FORMAT}")
    if not isinstance(meta.get("max_len"), int) or meta["max_len"] < 3:
        problems.append(f"max_len is {meta.get('max_len')!r}, not an int >= 3")
    if not isinstance(meta.get("datasets", {}), dict):
        problems.append("datasets is not an object")
    else:
        for name, d in meta.get("datasets", {}).items():
            bad = [k for k in ("documents", "chunks", "tokens") if not isinstance(d.get(k, 0), int)]
            if not isinstance(d.get("weight", 1.0), (int, float)) or d.get("weight", 1.0) < 0:
                bad.append("weight")
            if bad:
                problems.append(f"datasets.{name}: {', '.join(bad)} not a count")
    if "columns" in meta and meta["columns"] != COLUMNS:
        problems.append(f"columns are {meta['columns']}, expected {COLUMNS}")
    if problems:
        raise UsageError(f"{path}: " + "; ".join(problems) + ". These shards were not written by this version of "
                         "`twbert build`: rebuild them")
    return meta


def built_weights(shards_dir: str | Path) -> dict[str, float]:
    """The sampling weight the build's variant policy gave each sub-dataset (meta.json), by name."""
    meta = read_meta(shards_dir) or {}
    return {name: float(d["weight"]) for name, d in meta.get("datasets", {}).items() if "weight" in d}


def dataset_names(shards_dir: str | Path) -> list[str]:
    """Names of the MDS sub-datasets (directories holding index.json) under a local shards dir."""
    root = Path(shards_dir)
    if not root.is_dir():
        raise UsageError(f"{root}: shards directory not found (pass the shards/ dir `twbert build` wrote)")
    names = sorted(p.parent.name for p in root.glob(f"*/{INDEX_FILE}"))
    if not names:
        raise UsageError(f"{root}: no MDS sub-datasets (<source>-<tier>/{INDEX_FILE}) found")
    return names


# --- index.json, columns, verification ---------------------------------------------------------
def check_columns(where: str, names: list[str], encodings: list[str], need: tuple[str, ...] = ("input_ids",)) -> None:
    """Refuse columns that would run code when decoded, columns of another encoding than twbert's,
    and a shard lacking a column in `need`. `where` names the file in the message."""
    from streaming.base.format.mds.encodings import is_mds_encoding, is_mds_encoding_safe

    for name, enc in zip(names, encodings):
        if not is_mds_encoding(enc) or not is_mds_encoding_safe(enc):
            raise UsageError(f"{where}: column {name!r} is declared {enc!r}, an encoding that runs code when "
                             f"decoded (or is not MDS); twbert never decodes it. Shards from `twbert build` hold "
                             f"only {sorted(set(COLUMNS.values()))}: use those, or rebuild the shards")
        if name in COLUMNS and enc != COLUMNS[name]:
            raise UsageError(f"{where}: column {name!r} is {enc!r}, twbert's shards hold it as {COLUMNS[name]!r}; "
                             f"rebuild the shards with `twbert build`")
    missing = [c for c in need if c not in names]
    if missing:
        raise UsageError(f"{where}: no column {', '.join(missing)} (it has {names}); rebuild the shards with `twbert build`")


def read_index(ds_dir: str | Path, need: tuple[str, ...] = ("input_ids",)) -> dict:
    """A sub-dataset's index.json, its shards' columns checked (`check_columns`)."""
    path = Path(ds_dir) / INDEX_FILE
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
        shards = index["shards"]
        if index.get("version") != 2 or not isinstance(shards, list):
            raise ValueError(f"MDS index version {index.get('version')!r}, expected 2")
        for s in shards:
            if s.get("format") != "mds":
                raise ValueError(f"a shard of format {s.get('format')!r}, expected mds")
            s["raw_data"]["basename"], s["samples"]
    except FileNotFoundError:
        raise UsageError(f"{path} not found: {_REBUILD}") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"{path}: not an MDS index ({type(e).__name__}: {e}); {_REBUILD}") from None
    for s in shards:
        check_columns(f"{path} (shard {s['raw_data']['basename']})", s["column_names"], s["column_encodings"], need)
    return index


def _file_problem(path: Path, info: dict) -> str | None:
    """Why `path` is not the file `info` (index.json's raw_data or zip_data) describes, or None."""
    if not path.is_file():
        return "missing"
    want = (info.get("hashes") or {}).get(HASH)
    try:
        size = path.stat().st_size
        if info.get("bytes") is not None and size != info["bytes"]:
            return f"{size:,} bytes where index.json records {info['bytes']:,} (truncated or overwritten)"
        if want is None:
            return f"index.json records no {HASH} hash for it, so it cannot be verified"
        if _xxh64(path) != want:
            return f"its {HASH} hash differs from the one index.json records (corrupt)"
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    return None


def _xxh64(path: Path) -> str:
    import xxhash

    h = xxhash.xxh64()
    with open(path, "rb") as f:
        while block := f.read(1 << 23):
            h.update(block)
    return h.hexdigest()


def verify_shard(ds_dir: Path, shard: dict, missing_ok: bool = False) -> Path | None:
    """Check one shard's files against index.json; returns the file to read (raw, else compressed).

    A raw copy that does not match is deleted when its compressed file matches (streaming re-derives it,
    hash-checked, when it reads the shard); anything else wrong raises UsageError naming the file.
    `missing_ok`: a shard absent altogether is fine (a cache that streaming fills and checks as it goes).
    """
    raw, z = shard["raw_data"], shard.get("zip_data")
    raw_path = ds_dir / raw["basename"]
    zip_path = ds_dir / z["basename"] if z else None

    def zip_problem() -> str:
        return _file_problem(zip_path, z) if z else "missing"

    if raw_path.is_file():
        problem = _file_problem(raw_path, raw)
        if problem is None:
            return raw_path  # what streaming reads; the compressed file is not read, so not checked
        if zip_problem() is None:
            log.warning(f"{raw_path}: {problem}; removed, it is decompressed again from {zip_path.name}")
            raw_path.unlink(missing_ok=True)  # another rank may have got there first
            return zip_path
        raise UsageError(f"{raw_path}: shard {problem}; {_REBUILD}")
    zp = zip_problem()
    if zp is None:
        return zip_path
    if zp == "missing":
        if missing_ok:
            return None
        names = raw_path.name + (f" nor {zip_path.name}" if zip_path else "")
        raise UsageError(f"{raw_path.parent}: shard file missing (neither {names} is there, index.json lists it); {_REBUILD}")
    raise UsageError(f"{zip_path}: shard {zp}; {_REBUILD}")


def verify_dataset(ds_dir: str | Path, missing_ok: bool = False, need: tuple[str, ...] = ("input_ids",)) -> dict:
    """Check a sub-dataset before it is read: index.json, its columns, and every shard file's hash.

    Returns the index. One pass over the bytes of every shard file; a cost paid once per process.
    """
    ds_dir = Path(ds_dir)
    index = read_index(ds_dir, need)
    for shard in index["shards"]:
        verify_shard(ds_dir, shard, missing_ok)
    return index


def iter_samples(ds_dir: str | Path, need: tuple[str, ...] = tuple(COLUMNS)) -> Iterator[dict]:
    """Every sample of one sub-dataset in index order, each shard verified, then decoded by streaming's
    MDS reader (compressed shards decompressed in memory; nothing is written)."""
    from streaming.base.compression import decompress
    from streaming.base.format import reader_from_json

    ds_dir = Path(ds_dir)
    index = read_index(ds_dir, need)
    for shard in index["shards"]:
        path = verify_shard(ds_dir, shard)
        data = path.read_bytes()
        if path.name != Path(shard["raw_data"]["basename"]).name:
            data = decompress(shard["compression"], data)
        n = int(np.frombuffer(data, np.uint32, count=1)[0]) if len(data) >= 4 else -1
        if n != shard["samples"]:
            raise UsageError(f"{path}: holds {n} samples, index.json says {shard['samples']}; {_REBUILD}")
        reader = reader_from_json(str(ds_dir), None, shard)
        offsets = np.frombuffer(data, np.uint32, count=n + 1, offset=4)
        for a, b in zip(offsets[:-1], offsets[1:]):
            yield reader.decode_sample(data[a:b])


# --- the tokenizer -------------------------------------------------------------------------------
def tokenizer_dir(shards_dir: str | Path) -> Path:
    return Path(shards_dir) / TOKENIZER_DIR


def read_tokenizer_info(tok_dir: str | Path) -> dict:
    """Special ids ({cls,sep,mask,pad,unk}: id), vocab_size, padded_vocab_size and special_ids of a
    prepared tokenizer dir.

    Reads `twbert_tokenizer.json` (written by `twbert tokenizer prepare`) when present, and falls
    back to tokenizer.json's added tokens ([CLS] [SEP] [MASK] [PAD] [UNK]).
    """
    tok_dir = Path(tok_dir)
    tj = tok_dir / "tokenizer.json"
    if not tj.is_file():
        raise UsageError(f"{tj} not found: the shards dir must hold the tokenizer/ it was made with")
    try:
        data = json.loads(tj.read_text(encoding="utf-8"))
        added = {t["content"]: int(t["id"]) for t in data.get("added_tokens", [])}
        meta = tok_dir / TOKENIZER_INFO
        m = json.loads(meta.read_text(encoding="utf-8")) if meta.is_file() else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise UsageError(f"{tok_dir}: unreadable tokenizer ({type(e).__name__}: {e}); prepare it again with "
                         f"`twbert tokenizer prepare`") from None
    info = {role: m[f"{role}_token_id"] for role in SPECIAL_ROLES if isinstance(m.get(f"{role}_token_id"), int)}
    for key in ("vocab_size", "padded_vocab_size"):
        if isinstance(m.get(key), int):
            info[key] = m[key]
    for role in SPECIAL_ROLES:
        if role not in info:
            content = f"[{role.upper()}]"
            if content not in added:
                raise UsageError(f"{tj}: no {content} token; prepare the tokenizer with `twbert tokenizer prepare`")
            info[role] = added[content]
    if "vocab_size" not in info:
        from tokenizers import Tokenizer

        info["vocab_size"] = Tokenizer.from_file(str(tj)).get_vocab_size(with_added_tokens=True)
    info.setdefault("padded_vocab_size", -(-info["vocab_size"] // 64) * 64)
    specials = {t["content"] for t in data.get("added_tokens", []) if t.get("special")}
    info["special_ids"] = sorted({info[r] for r in SPECIAL_ROLES} | {i for t, i in added.items() if t in specials})
    return info
