"""MLMLoader end to end on real MDS shards: token accounting, batch format, exact resume across processes."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loader_run import batch_hash, write_shards  # noqa: E402

from twbert.errors import UsageError
from twbert.training.loader import MLMLoader
from twbert.training.packing import part_from_json

RUN = str(Path(__file__).resolve().parent / "loader_run.py")
SIZES = {"wiki-tw": 60, "web-tw": 80, "web-other": 60}
# small enough that 2 x N batches run past an epoch's end (the resume must cross it)
CFG = {"max_len": 256, "tokens_per_batch": 2048, "read_batch": 8, "num_workers": 0,
       "clean_stale_shm": False, "masking": {"rate": 0.3, "final_rate": 0.15, "schedule_steps": 40}}
N = 25


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shards")
    write_shards(root, SIZES, seed=1)
    return root


def buffered_content(state: dict) -> int:
    return (sum(len(part_from_json(p)[0]) for seq in state["packer"]["seqs"] for p in seq)
            + sum(len(part_from_json(p)[0]) for p in state["concat"]["open"]))


def check_batch(b: dict, max_len: int, budget: int, cls: int, sep: int) -> None:
    ids, cu = b["input_ids"].numpy(), b["cu_seqlens"].numpy()
    assert b["cu_seqlens"].dtype.is_floating_point is False and cu.dtype == np.int32
    assert isinstance(b["max_seqlen"], int) and isinstance(b["num_tokens"], int)
    assert cu[0] == 0 and cu[-1] == len(ids) == b["num_tokens"] <= budget
    lens = np.diff(cu)
    assert (lens >= 3).all() and lens.max() == b["max_seqlen"] <= max_len
    pos = b["position_ids"].numpy()
    for s, e in zip(cu[:-1], cu[1:]):
        assert (pos[s:e] == np.arange(e - s)).all()
        assert ids[s] == cls and ids[e - 1] == sep
    labels = b["labels"].numpy()
    assert (labels[cu[:-1]] == -100).all() and (labels[cu[1:] - 1] == -100).all()


def test_accounting_and_format(shards):
    """Every token read is emitted once or still buffered; batches follow the contract."""
    loader = MLMLoader(CFG, shards, seed=3)
    tok = loader.tokenizer_info
    emitted = 0
    for _ in range(60):  # past an epoch's end
        b = next(loader)
        check_batch(b, CFG["max_len"], CFG["tokens_per_batch"], tok["cls"], tok["sep"])
        ids, free = b["input_ids"], b["labels"] == -100
        emitted += b["num_tokens"] - int((((ids == tok["cls"]) | (ids == tok["sep"])) & free).sum())
    state = loader.state_dict()
    json.dumps(state)  # JSON-serialisable, no pickle
    assert loader.epoch >= 1, "the test must cross an epoch boundary"
    assert emitted + buffered_content(state) == loader.tokens_read
    assert loader.stats()["fill"] > 0.9  # best fit leaves little of the budget empty
    loader.close()


def test_concat_fills_sequences(shards):
    loader = MLMLoader(CFG | {"concat": True}, shards, seed=3)
    tok = loader.tokenizer_info
    lens, emitted = [], 0
    for _ in range(30):
        b = next(loader)
        check_batch(b, CFG["max_len"], CFG["tokens_per_batch"], tok["cls"], tok["sep"])
        lens += np.diff(b["cu_seqlens"].numpy()).tolist()
        ids, free = b["input_ids"], b["labels"] == -100
        emitted += b["num_tokens"] - int((((ids == tok["cls"]) | (ids == tok["sep"])) & free).sum())
    assert emitted + buffered_content(loader.state_dict()) == loader.tokens_read
    # short documents were joined: most sequences are near max_len (without concat most are short)
    assert np.median(lens) > 0.8 * CFG["max_len"]
    loader.close()


def test_token_level_fallback(tmp_path):
    write_shards(tmp_path, {"web-tw": 30}, seed=2, word_ids=False)
    loader = MLMLoader(CFG, tmp_path, seed=0)
    b = next(loader)
    masked = (b["labels"] != -100).float().mean().item()
    assert 0.15 < masked < 0.4
    loader.close()


def test_weights_and_bad_config(shards):
    with pytest.raises(UsageError, match="not in the shards"):
        MLMLoader(CFG | {"weights": {"nope-tw": 1.0}}, shards)
    with pytest.raises(UsageError, match="tokens_per_batch"):
        MLMLoader(CFG | {"tokens_per_batch": 100}, shards)
    with pytest.raises(UsageError, match="unknown config key"):
        MLMLoader(CFG | {"max_lne": 5}, shards)
    # weight 0 leaves a sub-dataset out entirely
    loader = MLMLoader(CFG | {"weights": {"web-tw": 0.0, "web-other": 0.0}}, shards)
    assert len(loader.dataset.streams) == 1 and loader.dataset.num_samples == SIZES["wiki-tw"]
    st = loader.state_dict()
    loader.close()
    other = MLMLoader(CFG | {"max_len": 128}, shards)
    with pytest.raises(UsageError, match="max_len"):
        other.load_state_dict(st | {"settings": st["settings"]})
    other.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(tmp: Path, name: str, cfg: dict, n: int, world: int, port: int, **kw) -> list[subprocess.Popen]:
    procs = []
    for rank in range(world):
        args = [sys.executable, RUN, "--data", kw["data"], "--cfg", json.dumps(cfg), "--n", str(n),
                "--out", str(tmp / f"{name}.r{rank}.json")]
        if "save_at" in kw:
            args += ["--save-at", str(kw["save_at"]), "--state-out", str(tmp / f"state.{name}.r{rank}.json")]
        if kw.get("resume_from"):
            args += ["--state-in", str(tmp / f"state.{kw['resume_from']}.r{rank}.json")]
        env = os.environ | {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                            "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        procs.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    return procs


def wait(procs: list[subprocess.Popen]) -> None:
    outs = [p.communicate(timeout=600)[0] for p in procs]
    failed = [f"--- process {i} (exit {p.returncode}):\n{o[-2500:]}" for i, (p, o) in enumerate(zip(procs, outs))
              if p.returncode != 0]
    assert not failed, "\n".join(failed)


def take(loader: MLMLoader, n: int) -> list[str]:
    out = []
    for _ in range(n):
        loader.set_step(loader.batches)
        out.append(batch_hash(next(loader)))
    return out


def test_resume_in_process(shards):
    """A new loader loading the JSON state continues byte-identically (no workers, one rank)."""
    a = MLMLoader(CFG, shards, seed=3)
    first = take(a, N)
    state = json.dumps(a.state_dict())
    rest = take(a, N)
    assert a.epoch >= 1
    a.close()
    b = MLMLoader(CFG, shards, seed=3)
    b.load_state_dict(json.loads(state))
    assert take(b, N) == rest
    assert b.stats() == a.stats()
    b.close()
    c = MLMLoader(CFG, shards, seed=4)  # another seed: other batches
    assert not set(take(c, N)) & set(first)
    c.close()


# (name, workers, ranks); no workers and one rank: test_resume_in_process
SETUPS = [("w2", 2, 1), ("ranks2", 1, 2)]


@pytest.mark.slow
def test_resume_across_processes(shards, tmp_path):
    """N batches, state saved, a fresh process loads it and takes N more: the same bytes as 2N in one go.

    With 0 and 2 DataLoader workers and with 2 ranks (gloo), across an epoch boundary; the
    masking rate follows its schedule through the restart.
    """
    data = str(shards)
    # one setup at a time: streaming's shared-memory registration races between jobs starting at once
    for name, workers, world in SETUPS:
        cfg = CFG | {"num_workers": workers}
        # uninterrupted: 2N batches, saving the state after N
        wait(launch(tmp_path, name, cfg, 2 * N, world, free_port(), data=data, save_at=N))
        # a fresh process resumes from that state
        wait(launch(tmp_path, f"{name}-resumed", cfg, N, world, free_port(), data=data, resume_from=name))
    for name, _workers, world in SETUPS:
        for rank in range(world):
            ref = json.loads((tmp_path / f"{name}.r{rank}.json").read_text())
            res = json.loads((tmp_path / f"{name}-resumed.r{rank}.json").read_text())
            state = json.loads((tmp_path / f"state.{name}.r{rank}.json").read_text())
            assert len(set(ref["hashes"])) == 2 * N
            assert res["hashes"] == ref["hashes"][N:], f"{name} rank {rank}: batches differ after resume"
            assert res["rates"] == ref["rates"][N:]
            assert ref["stats"]["epoch"] >= 1, "the runs must cross an epoch boundary"
            # the resumed process read only what the first had not (streaming skipped the rest)
            assert res["stats"]["samples_read"] == ref["stats"]["samples_read"]
            assert state["samples_read"] < ref["stats"]["samples_read"]
            assert res["stats"] == ref["stats"] and res["buffered_tokens"] == ref["buffered_tokens"]
            # no token lost or doubled: emitted + still buffered == read
            assert ref["content_tokens"] + ref["buffered_tokens"] == ref["stats"]["tokens_read"]
    # masking schedule ran from 0.30 towards 0.15
    ref = json.loads((tmp_path / "w2.r0.json").read_text())
    assert ref["rates"][0] == pytest.approx(0.3) and ref["rates"][-1] == pytest.approx(0.15)
    # the two ranks read different samples
    r0, r1 = (json.loads((tmp_path / f"ranks2.r{r}.json").read_text()) for r in (0, 1))
    assert not set(r0["hashes"]) & set(r1["hashes"])


def shm_names() -> set[str]:
    return {n for n in os.listdir("/dev/shm") if re.fullmatch(r"\d{6}_\w+", n)}


@pytest.mark.skipif(not (os.path.isdir("/dev/shm") and os.path.isfile("/proc/self/maps")),
                    reason="needs Linux /dev/shm and /proc")
def test_stale_shared_memory_is_cleaned(shards):
    """Segments left by a dead streaming job are freed; a live loader's are left alone.

    (A plain SIGKILL leaves none: Python's resource tracker frees them. A job killed with its whole
    process group, e.g. by preemption, does; those are made here as POSIX shm, files in /dev/shm.)
    """
    live = MLMLoader(CFG, shards, seed=1)
    next(live)
    own = {n for n in shm_names() if n.startswith(f"{live.dataset._shm_prefix_int:06d}_")}
    assert own
    prefix = max(int(n[:6]) for n in shm_names()) + 1000
    stale = {f"{prefix:06d}_{name}" for name in ("locals", "barrier", "next_epoch", "shard_states")}
    for name in stale:
        Path("/dev/shm", name).write_bytes(b"\0" * 64)
    fresh = MLMLoader(CFG | {"clean_stale_shm": True}, shards)
    next(fresh)
    assert not stale & shm_names()
    assert own <= shm_names()  # the live loader's memory survived, and it still works
    for _ in range(5):
        next(live)
    fresh.close()
    live.close()
