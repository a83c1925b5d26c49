"""Write MDS datasets (streaming's format) without importing streaming.

`import streaming` imports torch, torchvision and transformers: about 10 CPU seconds and 700 MB
resident in every shards task, for a writer that needs numpy, zstd and xxhash. This module writes
the same bytes as streaming's `MDSWriter` (joint shards, `index.json`) and `merge_index` (parts
in the order given) for the column encodings the shards use; tests/test_mds_writer.py checks it
byte for byte against streaming's own, and training reads the result with streaming.
"""

from __future__ import annotations

import bz2
import gzip
import json
import os
from pathlib import Path

import numpy as np

ENCODINGS = ("str", "int", "float32")  # plus "ndarray:<dtype>"
_NDARRAY_DTYPES = ("uint8", "int8", "uint16", "int16", "float16", "uint32", "int32", "float32", "uint64", "int64", "float64")
_SIZES = {"str": None, "int": 8, "float32": 4}
_COMPRESSION = {"zstd": (3, range(1, 23)), "gz": (9, range(10)), "bz2": (9, range(1, 10))}  # streaming's defaults


def check_compression(compression: str | None) -> tuple[str, int] | None:
    """(algorithm, level) of a `zstd[:LEVEL]`, `gz[:LEVEL]` or `bz2[:LEVEL]` setting; None for none."""
    if not compression:
        return None
    algo, _, level = compression.partition(":")
    if algo not in _COMPRESSION or (level and not (level.isdigit() and int(level) in _COMPRESSION[algo][1])):
        raise ValueError(f"MDS compression must be zstd, gz or bz2, optionally :LEVEL, or null; got {compression!r}")
    return algo, int(level) if level else _COMPRESSION[algo][0]


def _compress(algo: str, level: int, data: bytes) -> bytes:
    if algo == "zstd":
        import zstd  # the binding streaming uses: the same bytes

        return zstd.compress(data, level)
    if algo == "gz":
        return gzip.compress(data, level)
    return bz2.compress(data, level)


def _xxh64(data: bytes) -> str:
    import xxhash

    return xxhash.xxh64(data).hexdigest()


class MDSWriter:
    """A local MDS dataset writer: `write(sample)` then `finish()` (or use it as a context manager).

    columns: name -> encoding (str, int, float32, ndarray:<dtype>); hashes: [] or ["xxh64"].
    """

    format = "mds"

    def __init__(self, out: str, columns: dict[str, str], compression: str | None = None,
                 hashes: list[str] | None = None, size_limit: int | None = 1 << 26):
        for name, enc in columns.items():
            dtype = enc.removeprefix("ndarray:")
            if enc not in _SIZES and not (enc.startswith("ndarray:") and dtype in _NDARRAY_DTYPES):
                raise ValueError(f"MDS column {name!r}: encoding {enc!r} is not one this writer supports "
                                 f"({', '.join(ENCODINGS)}, ndarray:<dtype>)")
        hashes = list(hashes or [])
        if hashes not in ([], ["xxh64"]):
            raise ValueError(f"MDS hashes must be [] or ['xxh64'], got {hashes}")
        if size_limit is not None and not 0 <= int(size_limit) < 2**32:
            raise ValueError(f"MDS size_limit must be in [0, 2**32) (offsets are uint32), got {size_limit}")
        self.local = str(out)
        self.compression = compression or None
        self._zip = check_compression(self.compression)
        self.hashes = hashes
        self.size_limit = int(size_limit) if size_limit else None
        self.column_names = sorted(columns)
        self.column_encodings = [columns[n] for n in self.column_names]
        self.column_sizes = [_SIZES.get(e) for e in self.column_encodings]
        self._encoders = [self._encoder(e) for e in self.column_encodings]
        self.config_data = json.dumps(self.get_config(), sort_keys=True).encode("utf-8")
        self.shards: list[dict] = []
        os.makedirs(self.local, exist_ok=True)
        self._reset()

    def _reset(self) -> None:
        self.new_samples: list[bytes] = []
        self.new_shard_size = 4 + 4 + len(self.config_data)

    @staticmethod
    def _encoder(enc: str):
        if enc == "str":
            def encode(v):
                if not isinstance(v, str):
                    raise ValueError(f"expected str, got {type(v).__name__}")
                return v.encode("utf-8")
            return encode
        if enc == "int":
            def encode(v):
                if not isinstance(v, int):
                    raise ValueError(f"expected int, got {type(v).__name__}")
                return np.int64(v).tobytes()
            return encode
        if enc == "float32":
            return lambda v: np.float32(v).tobytes()
        dtype = enc.removeprefix("ndarray:")

        def encode(v: np.ndarray) -> bytes:
            # [ndim | shape dtype] [shape] [values]: the dtype is fixed by the column, the shape is not.
            if v.dtype.name != dtype:
                raise ValueError(f"Wrong dtype: expected {dtype}, got {v.dtype.name}.")
            if v.size == 0:
                raise ValueError("Attempting to encode a numpy array with 0 elements.")
            shape = np.array(v.shape, np.int64)
            top = int(shape.max())
            code = 0 if top < 1 << 8 else 1 if top < 1 << 16 else 2 if top < 1 << 32 else 3
            head = bytes([(len(v.shape) << 2) | code]) + shape.astype(("uint8", "uint16", "uint32", "uint64")[code]).tobytes()
            return head + v.tobytes()
        return encode

    def get_config(self) -> dict:
        return {"version": 2, "format": self.format, "compression": self.compression, "hashes": self.hashes,
                "size_limit": self.size_limit, "column_names": self.column_names,
                "column_encodings": self.column_encodings, "column_sizes": self.column_sizes}

    def write(self, sample: dict) -> None:
        sizes, data = [], []
        for name, enc, size in zip(self.column_names, self._encoders, self.column_sizes):
            datum = enc(sample[name])
            if size is None:
                sizes.append(len(datum))
            data.append(datum)
        encoded = np.array(sizes, np.uint32).tobytes() + b"".join(data)
        n = len(encoded) + 4  # the sample's offset
        if self.size_limit and self.size_limit < self.new_shard_size + n:
            self._flush()
        self.new_samples.append(encoded)
        self.new_shard_size += n

    def _file_info(self, data: bytes, basename: str) -> dict:
        return {"basename": basename, "bytes": len(data), "hashes": {h: _xxh64(data) for h in self.hashes}}

    def _flush(self) -> None:
        raw_name = f"shard.{len(self.shards):05}.{self.format}"
        num = np.uint32(len(self.new_samples))
        offsets = np.array([0] + [len(s) for s in self.new_samples]).cumsum().astype(np.uint32)
        offsets += 4 + offsets.nbytes + len(self.config_data)
        raw = num.tobytes() + offsets.tobytes() + self.config_data + b"".join(self.new_samples)
        raw_info, zip_info = self._file_info(raw, raw_name), None
        data, name = raw, raw_name
        if self._zip:
            name = f"{raw_name}.{self._zip[0]}"
            data = _compress(*self._zip, raw)
            zip_info = self._file_info(data, name)
        with open(os.path.join(self.local, name), "wb") as f:
            f.write(data)
        self.shards.append({"samples": len(self.new_samples), "raw_data": raw_info, "zip_data": zip_info,
                            **self.get_config()})
        self._reset()

    def finish(self) -> None:
        if self.new_samples:
            self._flush()
        with open(os.path.join(self.local, "index.json"), "w") as f:
            json.dump({"version": 2, "shards": self.shards}, f, sort_keys=True)

    def __enter__(self) -> MDSWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.finish()


def merge_index(part_indexes: list[str | Path], out: str | Path) -> None:
    """Write `out/index.json` listing the shards of every part index, in the order given, each basename
    prefixed with its part's directory name (as streaming's `merge_index` does for local parts)."""
    shards = []
    for path in dict.fromkeys(str(p).rstrip("/").strip() for p in part_indexes):
        with open(path) as f:
            obj = json.load(f)
        part = os.path.basename(os.path.dirname(path))
        for shard in obj["shards"]:
            for key in ("raw_data", "zip_data", "raw_meta", "zip_meta"):
                if shard.get(key):
                    shard[key]["basename"] = os.path.join(part, shard[key]["basename"])
        shards += obj["shards"]
    target = Path(out) / "index.json"
    tmp = target.with_name(f".index.json.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump({"version": 2, "shards": shards}, f)
    os.replace(tmp, target)
