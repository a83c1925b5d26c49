"""`twbert train` end to end on CPU: real shards, real loader, real model, real processes.

The shards are written here in the contract's MDS columns from a small synthetic language in which
each token mostly follows from the previous one, so a tiny model's loss visibly falls. Runs are
separate processes with one thread each, so that they can be killed, and so that runs compare
bit for bit (a different thread count changes float reduction order).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from twbert.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny.yaml"
CHARS = [chr(0x4E00 + i) for i in range(40)]  # the whole alphabet: 40 CJK ideographs
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
TWBERT = [str(Path(sys.executable).with_name("twbert"))]  # the installed console script


def write_tokenizer(out: Path) -> dict:
    """A prepared tokenizer dir (twbert.shards.tokenizer.prepare) over a character vocabulary."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    from twbert.shards.tokenizer import prepare

    tok = Tokenizer(models.WordLevel({c: i for i, c in enumerate(CHARS)}, unk_token=CHARS[0]))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    return prepare(tok, out, source="test alphabet")


def synthetic_chunk(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.empty(n, dtype=np.uint32)
    ids[0] = rng.integers(len(CHARS))
    for i in range(1, n):
        ids[i] = (ids[i - 1] * 7 + 3) % len(CHARS) if rng.random() < 0.85 else rng.integers(len(CHARS))
    starts = np.cumsum(rng.integers(1, 4, size=n))  # words of 1-3 tokens
    word_ids = np.searchsorted(starts, np.arange(n), side="right").astype(np.int32)
    return ids, word_ids


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    from streaming import MDSWriter

    out = tmp_path_factory.mktemp("data") / "shards"
    write_tokenizer(out / "tokenizer")
    columns = {"input_ids": "ndarray:uint32", "word_ids": "ndarray:int32", "doc_id": "str", "chunk_index": "int",
               "source": "str", "tier": "str", "weight": "float32"}
    rng = np.random.default_rng(0)
    for source in ("web", "wiki"):
        with MDSWriter(out=str(out / f"{source}-tw"), columns=columns, compression="zstd", hashes=["xxh64"],
                       size_limit=1 << 16) as w:
            for d in range(150):
                ids, word_ids = synthetic_chunk(rng, int(rng.integers(16, 120)))
                w.write({"input_ids": ids, "word_ids": word_ids, "doc_id": f"{source}-{d}", "chunk_index": 0,
                         "source": source, "tier": "tw", "weight": np.float32(1.0)})
    return out


def train_cmd(config: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [*TWBERT, "train", str(config), "--data", str(data), "--out", str(out), *extra]


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600, **kw)
    assert res.returncode == 0, f"{cmd} failed:\n{res.stderr[-3000:]}"
    return res


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def wait_for_lines(path: Path, n: int, proc: subprocess.Popen) -> None:
    deadline = time.time() + 300
    while time.time() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"training exited ({proc.returncode}) before {n} metrics lines:\n"
                                 f"{proc.stderr.read()[-3000:]}")
        time.sleep(0.02)
    raise AssertionError(f"no {n} metrics lines in {path} after 300 s")


@pytest.fixture(scope="module")
def reference(shards, tmp_path_factory) -> Path:
    """An uninterrupted run of configs/tiny.yaml (40 steps, checkpoints every 10)."""
    out = tmp_path_factory.mktemp("runs") / "reference"
    run(train_cmd(TINY, shards, out))
    return out


def test_tiny_model_trains_and_its_loss_falls(reference):
    rows = metrics(reference)
    assert [r["step"] for r in rows] == list(range(1, 41))
    assert all({"step", "loss", "lr", "tokens", "grad_norm", "tokens_per_s"} <= set(r) for r in rows)
    losses = [r["loss"] for r in rows]
    assert np.mean(losses[:5]) - np.mean(losses[-5:]) > 0.4, losses  # from ~ln(40) towards the chain's entropy
    tokens = [r["tokens"] for r in rows]
    assert all(b > a for a, b in zip(tokens, tokens[1:]))
    lrs = [r["lr"] for r in rows]
    assert lrs[0] < lrs[3] == max(lrs) and lrs[-1] == 0.0  # warmup 4 steps, decay to 0 at the end
    names = sorted(p.name for p in (reference / "checkpoints").iterdir())
    assert names == ["step_00000020", "step_00000030", "step_00000040"]  # keep: 3
    trainer = json.loads((reference / "checkpoints" / "step_00000040" / "trainer.json").read_text())
    assert trainer["step"] == 40 and trainer["tokens"] == tokens[-1]
    assert list((reference / "tensorboard").glob("events.out.tfevents.*"))


def test_sigkill_corrupt_checkpoint_sigterm_and_resume_repeat_the_losses(reference, shards, tmp_path):
    out = tmp_path / "run"
    cmd = train_cmd(TINY, shards, out)
    path = out / "metrics.jsonl"

    # 1. killed outright after step 22: checkpoints 10 and 20 exist, metrics run ahead of them
    p = subprocess.Popen(cmd, env=ENV, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    wait_for_lines(path, 22, p)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert sorted(p.name for p in (out / "checkpoints").glob("step_*"))[-1] in ("step_00000020", "step_00000030")
    newest = sorted((out / "checkpoints").glob("step_*"))[-1]

    # 2. the newest checkpoint is damaged on disk: --resume skips it, says so, and goes back one
    data = bytearray((newest / "model.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (newest / "model.pt").write_bytes(bytes(data))
    p = subprocess.Popen(cmd + ["--resume"], env=ENV, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    wait_for_lines(path, 33, p)  # > what run 1 left, so these are run 2's lines
    p.send_signal(signal.SIGTERM)  # preemption: checkpoint after the current step, exit 0
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-3000:]
    assert f"skipping checkpoint {newest}" in err and "sha256" in err
    assert "resumed from" in err and "stopped by SIGTERM" in err
    stopped_at = len(metrics(out))
    assert 33 <= stopped_at < 40
    assert (out / "checkpoints" / f"step_{stopped_at:08d}" / "manifest.json").exists()

    # 3. resumed again, it runs to the end
    res = run(cmd + ["--resume"])
    assert f"resumed from {out / 'checkpoints' / f'step_{stopped_at:08d}'}" in res.stderr
    rows = metrics(out)
    assert [r["step"] for r in rows] == list(range(1, 41))  # exactly one line per step
    assert [r["loss"] for r in rows] == [r["loss"] for r in metrics(reference)]  # bit for bit
    assert [r["tokens"] for r in rows] == [r["tokens"] for r in metrics(reference)]


def test_two_rank_torchrun_trains_and_resumes_exactly(shards, tmp_path, capsys):
    cfg = yaml.safe_load(TINY.read_text())
    cfg["train"]["max_steps"] = 8
    cfg["checkpoint"].update(every=4, keep=None)
    config = tmp_path / "two.yaml"
    config.write_text(yaml.safe_dump(cfg))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                *TWBERT, "train", str(config), "--data", str(shards)]
    full = tmp_path / "full"
    run([*torchrun, "--out", str(full)])
    rows = metrics(full)
    assert [r["step"] for r in rows] == list(range(1, 9))
    ckpt8 = full / "checkpoints" / "step_00000008"
    assert json.loads((ckpt8 / "trainer.json").read_text())["world_size"] == 2
    assert {p.name for p in ckpt8.glob("rank_*.json")} == {"rank_00000.json", "rank_00001.json"}
    # both ranks' batches count: tokens per step are about 2 x tokens_per_batch
    assert rows[0]["tokens"] > 1.5 * cfg["data"]["tokens_per_batch"]

    # as if preempted after step 8 was logged but before its checkpoint: resume from step 4
    resumed = tmp_path / "resumed"
    shutil.copytree(full, resumed)
    shutil.rmtree(resumed / "checkpoints" / "step_00000008")
    run([*torchrun, "--out", str(resumed), "--resume"])
    assert metrics(resumed) == [{**r, "tokens_per_s": r2["tokens_per_s"], "mfu": r2["mfu"]}
                                for r, r2 in zip(rows, metrics(resumed))]

    # a different number of ranks cannot continue the run
    assert main(train_cmd(config, shards, resumed, "--resume")[len(TWBERT):]) == 2
    assert "resume it with the same number" in capsys.readouterr().err


def test_resume_with_more_steps_keeps_warmup_and_mask_ramp_and_moves_the_decay(shards, tmp_path):
    """Extending a WSD run: warmup and masking ramp given as fractions keep the step counts of the
    first start (0.25 x 8 = 2 warmup steps, not 0.25 x 24 = 6), while the decay moves to the new end."""
    cfg = yaml.safe_load(TINY.read_text())
    cfg["train"]["max_steps"] = 8
    cfg["schedule"].update(warmup=0.25, decay=0.25)
    cfg["data"]["masking"] = {"rate": 0.3, "final_rate": 0.15}  # ramp over all of training (null)
    cfg["checkpoint"].update(every=4, keep=None)
    config = tmp_path / "extend.yaml"
    config.write_text(yaml.safe_dump(cfg))
    short = tmp_path / "short"
    run(train_cmd(config, shards, short))
    before = metrics(short)
    peak = cfg["optim"]["lr"]
    # 2 warmup steps, 4 stable, 2 of 1-sqrt decay
    assert [r["lr"] for r in before] == pytest.approx([peak / 2] + [peak] * 5 + [peak * (1 - 0.5 ** 0.5), 0.0])

    # resume from step 4 (in the stable phase) with three times the steps
    longer = tmp_path / "longer"
    shutil.copytree(short, longer)
    shutil.rmtree(longer / "checkpoints" / "step_00000008")
    res = run(train_cmd(config, shards, longer, "--resume", "--max-steps", "24"))
    rows = metrics(longer)
    assert [r["step"] for r in rows] == list(range(1, 25))
    lrs = [r["lr"] for r in rows]
    assert lrs[:6] == [r["lr"] for r in before[:6]]  # continuous at the resume step (row 5 = step 4)
    assert lrs[4:18] == [peak] * 14  # stable until the new decay: 0.25 x 24 = 6 steps
    assert all(a > b for a, b in zip(lrs[17:], lrs[18:])) and lrs[-1] == 0.0
    rates = [r["mask_rate"] for r in rows]
    assert rates[:8] == [r["mask_rate"] for r in before]  # the ramp still ends at step 8
    assert rates[8:] == [0.15] * 16
    # same lr and masking until the old decay began: the same losses, bit for bit
    assert [r["loss"] for r in rows[:7]] == [r["loss"] for r in before[:7]]
    assert "warmup: 2 steps" in res.stderr and "masking ramp: 8 steps" in res.stderr
    trainer = json.loads((longer / "checkpoints" / "step_00000024" / "trainer.json").read_text())
    assert trainer["resolved"] == {"warmup": {"setting": 0.25, "steps": 2},
                                   "mask_schedule": {"setting": None, "steps": 8}}


def test_schedules_of_older_checkpoints_and_changed_settings_resolve_against_max_steps():
    from twbert import config as config_mod
    from twbert.training.trainer import resolve_schedules

    cfg = config_mod.load("train", TINY)  # warmup 0.1, decay 0.2
    cfg["data"]["masking"].update(final_rate=0.15, schedule_steps=0.5)
    first, _, record = resolve_schedules(cfg, 40)
    assert record == {"warmup": {"setting": 0.1, "steps": 4}, "mask_schedule": {"setting": 0.5, "steps": 20}}
    kept, data, _ = resolve_schedules(cfg, 80, record)
    assert (kept.warmup_steps, kept.decay_steps) == (4, 16) and data["masking"]["schedule_steps"] == 20
    old, data, _ = resolve_schedules(cfg, 80, None)  # a checkpoint without the record
    assert old.warmup_steps == 8 and data["masking"]["schedule_steps"] == 40
    cfg["schedule"]["warmup"] = 0.2
    cfg["data"]["masking"]["schedule_steps"] = 10
    changed, data, _ = resolve_schedules(cfg, 80, record)  # the user's new settings apply
    assert changed.warmup_steps == 16 and data["masking"]["schedule_steps"] == 10


def test_phase2_starts_from_phase1_weights(reference, shards, tmp_path, capsys):
    cfg = yaml.safe_load(TINY.read_text())
    cfg["init_from"] = str(reference)
    cfg["model"]["global_rope_theta"] = 160000.0
    cfg["data"].update(max_len=64, masking={"rate": 0.2, "final_rate": 0.1})
    cfg["optim"]["lr"] = 1e-3
    cfg["schedule"].update(warmup=2, decay=2)
    cfg["train"]["max_steps"] = 6
    config = tmp_path / "phase2.yaml"
    config.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "phase2"
    res = run(train_cmd(config, shards, out))
    assert f"initialised weights from {reference / 'checkpoints' / 'step_00000040'}" in res.stderr
    rows, phase1 = metrics(out), metrics(reference)
    assert [r["step"] for r in rows] == list(range(1, 7))  # a new run: step, schedule and tokens restart
    assert rows[0]["tokens"] <= 1024 and rows[0]["lr"] == pytest.approx(5e-4)  # its own warmup
    assert rows[0]["loss"] < phase1[0]["loss"] - 0.4  # trained weights, not a fresh init
    ckpt = out / "checkpoints" / "step_00000006"
    trainer = json.loads((ckpt / "trainer.json").read_text())
    assert trainer["model_config"]["global_rope_theta"] == 160000.0
    loader = json.loads((ckpt / "rank_00000.json").read_text())["loader"]
    assert loader["settings"]["max_len"] == 64 and loader["mask_rate"] < 0.2
    assert max(r["masked"] for r in rows[-2:]) < rows[0]["masked"] * 0.85  # 20% -> 10% masked

    # weights of another shape cannot start a phase
    cfg["model"]["hidden_size"] = 32
    config.write_text(yaml.safe_dump(cfg))
    assert main(train_cmd(config, shards, tmp_path / "bad")[len(TWBERT):]) == 2
    assert "do not fit this model" in capsys.readouterr().err


def test_export_reads_the_trainers_checkpoint(reference, tmp_path):
    """The checkpoint is what `twbert export` expects (model.pt + trainer.json)."""
    run([*TWBERT, "export", str(reference), str(tmp_path / "hf")])
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["hidden_size"] == 64 and config["num_hidden_layers"] == 4


def test_existing_run_needs_resume(reference, shards, capsys):
    assert main(["train", str(TINY), "--data", str(shards), "--out", str(reference)]) == 2
    assert "pass --resume" in capsys.readouterr().err


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for option in ("CONFIG.yaml", "--data", "--out", "--max-steps", "--resume", "torchrun"):
        assert option in text


@pytest.mark.parametrize("name", ["phase1", "phase2", "tiny"])
def test_shipped_configs_are_valid(name):
    import torch

    from twbert import config
    from twbert.training.model import EncoderConfig, EncoderForMLM
    from twbert.training.schedule import WSD
    from twbert.training.trainer import grad_accum

    cfg = config.load("train", REPO / "configs" / f"{name}.yaml")
    WSD(total=cfg["train"]["max_steps"], **cfg["schedule"])
    with torch.device("meta"):
        model = EncoderForMLM(EncoderConfig.from_dict({**cfg["model"], "vocab_size": 151680}))
    if name == "phase1":
        assert 105e6 < model.num_parameters(non_embedding=True) < 115e6  # ModernBERT-base's 110M body
        assert cfg["train"]["batch_tokens"] == 512 * 1024
        assert grad_accum(cfg["train"], cfg["data"]["tokens_per_batch"], 1) == 8
        assert grad_accum(cfg["train"], cfg["data"]["tokens_per_batch"], 8) == 1
        assert (cfg["optim"]["lr"], cfg["optim"]["betas"], cfg["optim"]["eps"], cfg["optim"]["weight_decay"]) \
            == (8e-4, [0.9, 0.999], 1e-8, 1e-5)
    if name == "phase2":
        assert cfg["data"]["max_len"] == 8192 and cfg["optim"]["lr"] == 3e-4 and cfg["init_from"]
        assert cfg["model"]["global_rope_theta"] == 160000.0


SYNC_OPS = ("_local_scalar_dense", "nonzero", "masked_select", "is_nonzero", "equal", "allclose", "_unique2",
            "unique_consecutive", "unique_dim")


def count_host_syncs(fn):
    """Run `fn` and return the operations on the main thread that make the host wait for the device
    on a GPU: reading a value (item, float, bool, tolist, numpy), and the ops whose output size
    depends on the data (nonzero, boolean indexing, repeat_interleave without output_size, ...). The
    loader's own thread works on host data and is not counted."""
    import threading

    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    main_thread = threading.main_thread()
    hits = []

    class Counter(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            name = func.overloadpacket.__name__
            if (name in SYNC_OPS
                    or (name in ("index", "index_put", "index_put_")
                        and any(getattr(i, "dtype", None) == torch.bool for i in args[1] if i is not None))
                    or (name == "repeat_interleave" and kwargs.get("output_size") is None)):
                hits.append(name)
            return func(*args, **kwargs)

    originals = {name: getattr(torch.Tensor, name) for name in ("tolist", "numpy")}

    def counted(name):
        def wrapper(self, *a, **kw):
            if threading.current_thread() is main_thread:
                hits.append(name)
            return originals[name](self, *a, **kw)
        return wrapper

    try:
        for name in originals:
            setattr(torch.Tensor, name, counted(name))
        with Counter():
            fn()
    finally:
        for name, f in originals.items():
            setattr(torch.Tensor, name, f)
    return hits


def test_hot_loop_makes_no_host_sync_between_log_steps(shards, tmp_path):
    """Syncs of a 3-step and an 8-step run, both logging only at their end, are the same: the steps
    in between read no device value (losses and grad norms are read in one go at log steps)."""
    from twbert import config as config_mod
    from twbert.training.trainer import train

    def syncs(steps: int) -> list[str]:
        cfg = config_mod.load("train", TINY, {"data_dir": str(shards), "out": str(tmp_path / f"run{steps}")})
        cfg["train"]["max_steps"] = steps
        cfg["checkpoint"]["every"] = cfg["logging"]["every"] = 100
        cfg["logging"].update(tensorboard=False, progress=False)
        # fused AdamW keeps its step count on the device, as on CUDA; the unfused CPU path reads it
        # with .item() from a host tensor, which on a GPU would be no sync
        cfg["optim"]["fused"] = True
        return count_host_syncs(lambda: train(cfg, log=lambda msg: None))

    short, long = syncs(3), syncs(8)
    assert short == long, (short, long)
    assert long.count("tolist") <= 2 and "nonzero" not in long, long  # the metrics read, once
