"""Atomic, verifiable checkpoints that load without pickle.

Layout of one checkpoint (a directory under RUN/checkpoints/):

    step_00001000/
      model.pt         model state_dict (plain tensors; torch.load(weights_only=True))
      optimizer.pt     optimizer state_dict (tensors and numbers; weights_only too)
      trainer.json     step, token counters, schedule, the full config
      rank_00000.json  per rank: loader state_dict and RNG states (torch, CUDA, numpy, random)
      manifest.json    size and sha256 of every file above: written last, it marks the checkpoint
                       complete

A checkpoint is written into `.tmp-step_...` beside its final name, every file and the directory
fsync'd, then renamed: a reader sees either nothing or the whole thing. A checkpoint whose manifest
is missing or whose files do not match it (a crash on a filesystem without atomic rename, a
truncated copy, bit rot) is reported and skipped, and the previous one is used.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

MANIFEST = "manifest.json"
FORMAT = 1
_NAME = re.compile(r"^step_(\d+)$")


def name_for(step: int) -> str:
    return f"step_{step:08d}"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 23):
            h.update(block)
    return h.hexdigest()


def save(
    root: str | Path,
    step: int,
    tensors: dict[str, Any],
    jsons: dict[str, Any],
    keep: int | None = None,
) -> Path:
    """Write checkpoint `step` under `root` atomically and return its path.

    `tensors` maps a file stem to an object of tensors/numbers/containers (saved as `<stem>.pt`),
    `jsons` a file stem to a JSON-serialisable object (`<stem>.json`). `keep` deletes all but the
    newest `keep` complete checkpoints afterwards.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / name_for(step)
    if final.exists() and verify(final) is None:
        return final  # already saved (e.g. a signal right after a periodic save)
    tmp = root / f".tmp-{name_for(step)}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    files = {}
    for stem, obj in tensors.items():
        torch.save(obj, tmp / f"{stem}.pt")
        files[f"{stem}.pt"] = tmp / f"{stem}.pt"
    for stem, obj in jsons.items():
        (tmp / f"{stem}.json").write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
        files[f"{stem}.json"] = tmp / f"{stem}.json"
    manifest = {"format": FORMAT, "step": step, "time": time.time(), "files": {}}
    for name, path in sorted(files.items()):
        _fsync(path)
        manifest["files"][name] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    _fsync(tmp / MANIFEST)
    _fsync(tmp)
    if final.exists():  # an incomplete leftover with this name: replace it
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync(root)
    if keep:
        prune(root, keep)
    return final


def verify(path: str | Path) -> str | None:
    """None if the checkpoint at `path` is complete and intact, else why it is not."""
    path = Path(path)
    mf = path / MANIFEST
    if not mf.is_file():
        return "no manifest.json (the write did not finish)"
    try:
        manifest = json.loads(mf.read_text(encoding="utf-8"))
        files = manifest["files"]
    except (ValueError, KeyError, TypeError) as e:
        return f"unreadable manifest.json ({e})"
    if manifest.get("format") != FORMAT:
        return f"checkpoint format {manifest.get('format')!r}, this twbert reads {FORMAT}"
    for name, want in files.items():
        f = path / name
        if not f.is_file():
            return f"{name} is missing"
        if f.stat().st_size != want["bytes"]:
            return f"{name} has {f.stat().st_size} bytes, manifest says {want['bytes']}"
        if _sha256(f) != want["sha256"]:
            return f"{name} does not match its sha256 in manifest.json"
    return None


def listing(root: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint directory under `root`, newest first, complete or not."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _NAME.match(p.name))]
    return sorted(out, reverse=True)


def latest(root: str | Path, log: Callable[[str], None] = print) -> Path | None:
    """The newest intact checkpoint under `root`; damaged ones are reported through `log`."""
    for _, path in listing(root):
        problem = verify(path)
        if problem is None:
            return path
        log(f"skipping checkpoint {path}: {problem}")
    return None


def resolve(path: str | Path, log: Callable[[str], None] = print) -> Path:
    """A checkpoint directory from a checkpoint dir, a RUN/checkpoints dir, or a RUN dir.

    Raises FileNotFoundError (with the reason) when there is no intact checkpoint there.
    """
    path = Path(path)
    if (path / MANIFEST).exists() or _NAME.match(path.name):
        problem = verify(path)
        if problem:
            raise FileNotFoundError(f"checkpoint {path} is not usable: {problem}")
        return path
    for root in (path / "checkpoints", path):
        if listing(root):
            found = latest(root, log)
            if found is None:
                raise FileNotFoundError(f"no intact checkpoint under {root}")
            return found
    raise FileNotFoundError(f"no checkpoint found at {path} (expected RUN/, RUN/checkpoints/ or a step_* dir)")


def prune(root: str | Path, keep: int) -> None:
    """Delete all but the newest `keep` intact checkpoints, and leftovers of interrupted writes."""
    root = Path(root)
    kept = 0
    for _, path in listing(root):
        if kept < keep and verify(path) is None:
            kept += 1
        elif kept >= keep:
            shutil.rmtree(path, ignore_errors=True)
    for p in root.glob(".tmp-step_*"):
        if not p.name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(p, ignore_errors=True)


def load_tensors(path: str | Path, stem: str, map_location: str | torch.device = "cpu") -> Any:
    """`<stem>.pt` of a checkpoint, loaded with weights_only=True (no arbitrary pickle)."""
    return torch.load(Path(path) / f"{stem}.pt", map_location=map_location, weights_only=True)


def load_json(path: str | Path, stem: str) -> Any:
    return json.loads((Path(path) / f"{stem}.json").read_text(encoding="utf-8"))


# RNG states as JSON: byte tensors as base64, Mersenne Twister keys as int lists.


def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.numpy().tobytes()).decode("ascii")


def _unb64(s: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8).clone()


def rng_state() -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": _b64(torch.get_rng_state()),
        "cuda": [_b64(s) for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": [version, list(internal), gauss_next],
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(_unb64(state["torch"]))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_unb64(s) for s in state["cuda"]])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
