"""The train loop: plain PyTorch, one optimiser step per iteration, in named parts.

    run = setup(cfg)         model, optimizer, lr schedule, loader  <- config
    restore(run, ckpt)       weights, moments, loader position, RNGs  <- checkpoint (when resuming)
    wrap(run)                DDP across ranks, torch.compile
    for step:                (batches packed ahead by a background thread, training/prefetch.py)
        lr <- WSD(step)
        train_step(): grad_accum micro-batches -> token-weighted loss -> backward -> clip, AdamW
        MetricsLog.add(): device tensors queued; every `logging.every` steps one read of them all
                          -> one line per step in RUN/metrics.jsonl, console, TensorBoard
        save(): every `checkpoint.every` steps, at the end, and on SIGTERM/SIGINT

Between log steps nothing waits for the device (docs/training.md, the hot loop).

Exact resume: everything a step depends on (weights, optimizer moments, the loader's position,
packer buffer and masking RNG, every RNG) is in the checkpoint, and the lr and masking rate are
pure functions of the step, so on CPU a resumed run repeats an uninterrupted run's losses bit for
bit. Warmup and masking-ramp lengths given as fractions of max_steps keep the step counts of the
run's first start (`resolve_schedules`), so a resume with a larger --max-steps only moves the decay.

Distributed: run under `torchrun`; ranks find each other through its environment variables.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from twbert.training import checkpoint as ckpt
from twbert.training.hardware import peak_tflops_of
from twbert.training.loader import data_config
from twbert.training.prefetch import Prefetcher
from twbert.training.schedule import WSD, steps_of


class TrainError(Exception):
    """A problem with the config, data or run directory that the user can fix."""


# ---------------------------------------------------------------------------------------------
# distributed


def init_distributed(device_cfg: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device), joining the torchrun process group when there is one."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device_cfg == "auto":
        device_cfg = "cuda" if torch.cuda.is_available() else "cpu"
    if device_cfg == "cuda":
        if not torch.cuda.is_available():
            raise TrainError("train.device is 'cuda' but no CUDA device is visible")
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device(device_cfg)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":  # device_id: NCCL binds its communicator to this GPU up front
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
    return rank, world, device


# ---------------------------------------------------------------------------------------------
# building blocks


def build_model(model_cfg: dict, tokenizer: dict) -> torch.nn.Module:
    """The MLM encoder of `model_cfg`, sized and labelled for the shards' tokenizer
    (`shards.format.read_tokenizer_info`): vocabulary padded to a multiple of 64, BERT special ids."""
    from twbert.training.model import EncoderConfig, EncoderForMLM

    facts = {"vocab_size": -(-tokenizer["vocab_size"] // 64) * 64,
             **{f"{role}_token_id": tokenizer[role] for role in ("pad", "unk", "cls", "sep", "mask")}}
    try:
        config = EncoderConfig.from_dict({**facts, **model_cfg})
    except ValueError as e:
        raise TrainError(f"model: {e}") from None
    return EncoderForMLM(config)


def build_loader(cfg: dict, rank: int, world: int, tokenizer: dict, data_cfg: dict | None = None):
    from twbert.training.loader import MLMLoader

    return MLMLoader(cfg["data"] if data_cfg is None else data_cfg, cfg["data_dir"], tokenizer=tokenizer,
                     seed=cfg["seed"], rank=rank, world_size=world, total_steps=int(cfg["train"]["max_steps"]))


def resolve_schedules(cfg: dict, max_steps: int, saved: dict | None = None, say=lambda msg: None):
    """(lr schedule, data config for the loader, record for the checkpoint's trainer.json).

    Warmup (`schedule.warmup`) and the masking ramp (`data.masking.schedule_steps`, null = all of
    training) may be fractions of max_steps. On a run's first start they are resolved against
    max_steps and the step counts recorded (`saved` is that record, from the checkpoint). A resume
    whose settings are unchanged keeps the recorded counts, so that raising --max-steps does not send
    a run past its warmup back into it (0.05 x 4000 is not 0.05 x 1000) or stretch a ramp under way;
    the decay is resolved against the new max_steps, so it moves to the new end (extending a WSD run).
    A changed setting, or a checkpoint without the record (older ones), resolves against max_steps.
    """
    saved = saved or {}
    sched = dict(cfg["schedule"])
    warmup_setting = sched.get("warmup", 0)
    kept = saved.get("warmup")
    try:
        if kept is not None and kept["setting"] == warmup_setting:
            sched["warmup"] = int(kept["steps"])
            if steps_of(warmup_setting, max_steps) != sched["warmup"]:
                say(f"warmup: {sched['warmup']} steps, as the run's first start resolved schedule.warmup "
                    f"{warmup_setting}; the decay is resolved against max_steps {max_steps}")
        schedule = WSD(total=max_steps, **sched)
    except ValueError as e:
        raise ValueError(f"schedule: {e}") from None
    record = {"warmup": {"setting": warmup_setting, "steps": schedule.warmup_steps}, "mask_schedule": None}

    data_cfg = cfg["data"]
    masking = data_config(cfg["data"])["masking"]
    if masking["final_rate"] is not None:
        setting = masking["schedule_steps"]
        try:
            steps = max_steps if setting is None else steps_of(setting, max_steps)
        except ValueError as e:
            raise ValueError(f"data.masking.schedule_steps: {e}") from None
        kept = saved.get("mask_schedule")
        if kept is not None and kept["setting"] == setting:
            if kept["steps"] != steps:
                say(f"masking ramp: {kept['steps']} steps, as the run's first start resolved "
                    f"data.masking.schedule_steps {setting}")
            steps = int(kept["steps"])
        # as a step count the ramp no longer depends on max_steps (masking is not a loader resume key)
        data_cfg = {**cfg["data"], "masking": {**masking, "schedule_steps": steps}}
        record["mask_schedule"] = {"setting": setting, "steps": steps}
    return schedule, data_cfg, record


def param_groups(model: torch.nn.Module, weight_decay: float, no_decay: list[str]) -> list[dict]:
    """Two AdamW groups: parameters whose name contains any of `no_decay` get no weight decay."""
    decay, plain, seen = [], [], set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:  # tied weights appear once
            continue
        seen.add(id(p))
        (plain if any(pat in name.lower() for pat in no_decay) else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]


def build_optimizer(model: torch.nn.Module, optim_cfg: dict, device: torch.device):
    fused = optim_cfg["fused"]
    if fused is None:
        fused = device.type == "cuda"
    return torch.optim.AdamW(
        param_groups(model, optim_cfg["weight_decay"], optim_cfg["no_decay"]),
        lr=optim_cfg["lr"],
        betas=tuple(optim_cfg["betas"]),
        eps=optim_cfg["eps"],
        fused=fused or None,
    )


def peak_flops(device: torch.device, override: float | None) -> float | None:
    if override:
        return override * 1e12
    if device.type != "cuda":
        return None
    tf = peak_tflops_of(torch.cuda.get_device_name(device))
    return tf * 1e12 if tf else None


def batch_flops(model, batch: dict, n_masked: int) -> float:
    """Training FLOPs of one micro-batch, from the model's per-token count at the batch's effective
    contexts (each token attends within its own sequence; local layers within the window too).
    `batch` is the loader's CPU batch, so reading its cu_seqlens costs no GPU sync."""
    cu = np.asarray(batch["cu_seqlens"], dtype=np.int64)
    lengths = cu[1:] - cu[:-1]
    tokens = float(lengths.sum())
    ctx, local_ctx = model.attention_context(lengths)
    return model.num_flops_per_token(ctx, n_masked / tokens, local_ctx) * tokens


def grad_accum(t_cfg: dict, tokens_per_batch: int, world: int) -> int:
    """Micro-batches per step and rank: train.grad_accum, or derived from train.batch_tokens so that
    a config keeps its tokens per step on any number of GPUs."""
    if t_cfg["batch_tokens"] is None:
        return int(t_cfg["grad_accum"])
    per_step = world * tokens_per_batch
    if t_cfg["batch_tokens"] % per_step:
        raise TrainError(f"train.batch_tokens ({t_cfg['batch_tokens']:,}) is not a multiple of ranks x "
                         f"data.tokens_per_batch ({world} x {tokens_per_batch:,}); change one of them")
    return t_cfg["batch_tokens"] // per_step


# ---------------------------------------------------------------------------------------------
# run directory


def truncate_metrics(path: Path, last_step: int) -> None:
    """Keep the lines of steps <= `last_step` (and drop a half-written last line), so that after a
    resume the file has exactly one line per step."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("step", 0) <= last_step:
            keep.append(line)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{line}\n" for line in keep), encoding="utf-8")
    os.replace(tmp, path)


class StopFlag:
    """SIGTERM/SIGINT ask for a checkpoint and a clean exit after the current step; a second
    SIGINT interrupts at once."""

    def __init__(self):
        self.signal: int | None = None
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signal = signum
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


# ---------------------------------------------------------------------------------------------
# the run: setup, restore, step, log, save


@dataclass
class Run:
    """Everything the loop works with, built by `setup` (and `restore`)."""

    cfg: dict
    rank: int
    world: int
    device: torch.device
    say: Callable[[str], None]
    out: Path
    max_steps: int
    raw_model: torch.nn.Module  # the model itself (its state_dict is the checkpoint's)
    model: torch.nn.Module  # what runs the steps: raw_model, DDP-wrapped and/or compiled
    optimizer: torch.optim.Optimizer
    schedule: WSD
    resolved: dict  # schedule step counts, recorded in trainer.json (resolve_schedules)
    loader: Any
    accum: int
    autocast: Callable[[], Any]
    cpu_group: Any = None  # a gloo group for host-side counts (None on one rank)
    step: int = 0
    tokens: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(cfg: dict, resume: bool, log) -> tuple[Run, Path | None]:
    """Check the config, find the starting point, build model, optimizer, schedules and loader.
    Returns the run (at step 0) and the checkpoint to restore, if any."""
    t_cfg, o_cfg = cfg["train"], cfg["optim"]
    rank, world, device = init_distributed(t_cfg["device"])
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    say = log if rank == 0 else (lambda msg: None)

    if not cfg.get("data_dir"):
        raise TrainError("no training data: pass --data DIR/shards (or set data_dir in the config)")
    if not cfg.get("out"):
        raise TrainError("no run directory: pass --out RUN (or set out in the config)")
    if "://" not in str(cfg["data_dir"]):  # recorded absolute: export finds the tokenizer from anywhere
        cfg = {**cfg, "data_dir": str(Path(cfg["data_dir"]).resolve())}
    out = Path(cfg["out"])
    ckpt_root = out / "checkpoints"
    max_steps = int(t_cfg["max_steps"])

    # where to start from: our own checkpoint (resume), a previous phase's weights, or scratch
    start = None
    if resume:
        start = ckpt.latest(ckpt_root, say)
        if start is None:
            say(f"--resume: no checkpoint under {ckpt_root}; starting from step 0")
        elif (n := ckpt.load_json(start, "trainer")["world_size"]) != world:
            raise TrainError(f"{start} was written by {n} ranks; resume it with the same number (now {world}) "
                             "so that every rank's loader continues where it stopped")
    elif ckpt.listing(ckpt_root):
        raise TrainError(f"{ckpt_root} already holds checkpoints: pass --resume to continue that run, "
                         "or choose another --out")
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg, indent=1, ensure_ascii=False), encoding="utf-8")

    from twbert.shards.format import read_tokenizer_info
    from twbert.training.dataset import fetch_tokenizer

    tokenizer = read_tokenizer_info(fetch_tokenizer(cfg["data_dir"], data_config(cfg["data"])))
    # the same seed on every rank gives every rank the same initial weights
    torch.manual_seed(cfg["seed"])
    model = build_model(cfg["model"], tokenizer)
    model.model.checkpoint_layers = bool(t_cfg["activation_checkpointing"])
    if cfg["init_from"] and start is None:
        src = ckpt.resolve(cfg["init_from"], say)
        try:
            model.load_state_dict(ckpt.load_tensors(src, "model"))
        except RuntimeError as e:
            raise TrainError(f"init_from {src}: its weights do not fit this model (the phases must share "
                             f"the model's shape): {str(e).splitlines()[1:3]}") from None
        say(f"initialised weights from {src} (weights only: new optimizer, schedule and data)")
    model.to(device)
    optimizer = build_optimizer(model, o_cfg, device)
    try:
        saved = ckpt.load_json(start, "trainer").get("resolved") if start is not None else None
        schedule, loader_data, resolved = resolve_schedules(cfg, max_steps, saved, say)
    except ValueError as e:
        raise TrainError(str(e)) from None
    loader = build_loader(cfg, rank, world, tokenizer, loader_data)
    random.seed(cfg["seed"] + rank)
    np.random.seed(cfg["seed"] + rank)
    torch.manual_seed(cfg["seed"] + rank)  # dropout differs between ranks

    bf16 = t_cfg["precision"] == "bf16" or (t_cfg["precision"] == "auto" and device.type == "cuda")
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    accum = grad_accum(t_cfg, int(cfg["data"]["tokens_per_batch"]), world)
    run = Run(cfg=cfg, rank=rank, world=world, device=device, say=say, out=out, max_steps=max_steps,
              raw_model=model, model=model, optimizer=optimizer, schedule=schedule, resolved=resolved,
              loader=loader, accum=accum, autocast=autocast,
              cpu_group=dist.new_group(backend="gloo") if world > 1 else None)
    return run, start


def restore(run: Run, start: Path) -> None:
    """Weights, optimizer moments, this rank's loader position and RNGs, step and tokens from `start`."""
    o_cfg = run.cfg["optim"]
    meta = ckpt.load_json(start, "trainer")
    run.raw_model.load_state_dict(ckpt.load_tensors(start, "model", run.device))
    run.optimizer.load_state_dict(ckpt.load_tensors(start, "optimizer", run.device))
    for group, wd in zip(run.optimizer.param_groups, (o_cfg["weight_decay"], 0.0)):
        # the config's settings apply on resume (the moments come from the checkpoint)
        group.update(betas=tuple(o_cfg["betas"]), eps=o_cfg["eps"], weight_decay=wd)
    own = ckpt.load_json(start, f"rank_{run.rank:05d}")
    run.loader.load_state_dict(own["loader"])
    ckpt.set_rng_state(own["rng"])
    run.step, run.tokens = meta["step"], meta["tokens"]
    run.say(f"resumed from {start} at step {run.step} ({run.tokens:,} tokens)")


def wrap(run: Run) -> None:
    """DDP across ranks, then torch.compile: one graph for the whole model (dynamic shapes; the
    batches are padded so that varying token, sequence and masked counts do not recompile)."""
    model = run.raw_model
    if run.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[run.device.index] if run.device.type == "cuda" else None,
            gradient_as_bucket_view=True)  # gradients are views into the buckets: one copy, not two
    if run.cfg["train"]["compile"]:
        model = torch.compile(model, dynamic=True)
    run.model = model


def host_sum(run: Run, values: list[float]) -> list[float]:
    """Sum host-side numbers over ranks (a gloo all-reduce of a CPU tensor: no device sync)."""
    if run.world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, group=run.cpu_group)
    return t.tolist()


def train_step(run: Run, batches: list, total_masked: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step over this rank's micro-batches. Returns (sum of the masked tokens' losses,
    gradient norm) as device tensors: nothing here waits for the device."""
    scale = run.world / max(total_masked, 1)  # every masked token of the global batch weighs the same;
    # `world` undoes DDP's average over ranks
    loss_sum = torch.zeros((), dtype=torch.float64, device=run.device)
    for i, mb in enumerate(batches):
        sync = run.world == 1 or i == len(batches) - 1
        with contextlib.nullcontext() if sync else run.model.no_sync():
            with run.autocast():
                out = run.model(**mb.inputs(run.device))
            (out["loss_sum"].float() * scale).backward()
        loss_sum += out["loss_sum"].detach().double()
    clip = run.cfg["optim"]["grad_clip"]
    grad_norm = torch.nn.utils.clip_grad_norm_(run.raw_model.parameters(), clip or float("inf"))
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    return loss_sum, grad_norm


class MetricsLog:
    """metrics.jsonl (one line per step), TensorBoard and the progress bar, written at log steps.

    Steps only queue their device tensors (loss sum, grad norm); `flush` reads them all with one
    device sync (and one all-reduce across ranks), every `logging.every` steps and before a save.
    Throughput is measured over the steps since the previous flush."""

    def __init__(self, run: Run):
        l_cfg = run.cfg["logging"]
        self.run, self.every = run, int(l_cfg["every"])
        self.pending: list[tuple[dict, torch.Tensor, torch.Tensor]] = []
        self.peak = peak_flops(run.device, l_cfg["peak_tflops"])
        self.since = time.perf_counter()
        self.last_loss = float("nan")
        self.tb = self.bar = self.file = None
        if run.main:
            truncate_metrics(run.out / "metrics.jsonl", run.step)
            if l_cfg["tensorboard"]:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(str(run.out / "tensorboard"), purge_step=run.step + 1)
            if l_cfg["progress"]:
                from tqdm import tqdm
                self.bar = tqdm(total=run.max_steps, initial=run.step, desc="train", unit="step", dynamic_ncols=True)
            self.file = open(run.out / "metrics.jsonl", "a", encoding="utf-8")

    def add(self, rec: dict, loss_sum: torch.Tensor, grad_norm: torch.Tensor) -> None:
        self.pending.append((rec, loss_sum, grad_norm))
        if rec["step"] % self.every == 0 or rec["step"] == self.run.max_steps:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        run = self.run
        losses = torch.stack([s for _, s, _ in self.pending])
        if dist.is_initialized():
            dist.all_reduce(losses)  # loss sums over ranks (every rank's grad norm is the global one)
        norms = torch.stack([g.double() for _, _, g in self.pending])
        values = torch.stack([losses, norms], dim=1).tolist()  # the one device sync of the interval
        dt = time.perf_counter() - self.since
        recs = [rec for rec, _, _ in self.pending]
        tokens_per_s = sum(r["step_tokens"] for r in recs) / dt
        mfu = sum(r["step_flops"] for r in recs) / dt / (self.peak * run.world) if self.peak else None
        lines = []
        for rec, (loss_sum, grad_norm) in zip(recs, values):
            rec = {k: v for k, v in rec.items() if not k.startswith("step_")}
            rec.update(loss=loss_sum / max(rec["masked"], 1), grad_norm=grad_norm, tokens_per_s=tokens_per_s,
                       mfu=mfu)
            lines.append(rec)
        self.pending, self.since = [], time.perf_counter()
        last = lines[-1]
        self.last_loss = last["loss"]
        if not run.main:
            return
        order = ("step", "loss", "lr", "grad_norm", "tokens", "masked", "mask_rate", "epoch", "tokens_per_s", "mfu")
        self.file.write("".join(json.dumps({k: r[k] for k in order}) + "\n" for r in lines))
        self.file.flush()
        if self.tb:
            for k in ("loss", "lr", "grad_norm", "tokens_per_s", "mfu", "mask_rate"):
                if last[k] is not None:
                    self.tb.add_scalar(f"train/{k}", last[k], last["step"])
            self.tb.add_scalar("train/tokens", last["tokens"], last["step"])
        if self.bar:
            self.bar.set_postfix(loss=f"{last['loss']:.4f}", lr=f"{last['lr']:.2e}", tok_s=f"{tokens_per_s:,.0f}",
                                 **({"mfu": f"{mfu:.1%}"} if mfu else {}), refresh=False)
            self.bar.update(len(lines))

    def close(self) -> None:
        self.flush()
        for thing in (self.bar, self.file, self.tb):
            if thing is not None:
                thing.close()


def save(run: Run, snapshot: dict | None) -> Path | None:
    """A checkpoint of the run at run.step; `snapshot` is the loader's position after that step's
    batches (the prefetching loader itself is ahead)."""
    rank_state = json.dumps({"loader": run.loader.state_dict(snapshot), "rng": ckpt.rng_state()})
    states = [None] * run.world
    if run.world > 1:
        dist.all_gather_object(states, rank_state, group=run.cpu_group)
    else:
        states = [rank_state]
    path = None
    if run.main:
        path = ckpt.save(
            run.out / "checkpoints", run.step,
            tensors={"model": run.raw_model.state_dict(), "optimizer": run.optimizer.state_dict()},
            jsons={"trainer": {"step": run.step, "tokens": run.tokens, "world_size": run.world,
                               "schedule": run.schedule.state_dict(), "resolved": run.resolved, "config": run.cfg,
                               "model_config": run.raw_model.config.to_dict()},
                   **{f"rank_{r:05d}": json.loads(s) for r, s in enumerate(states)}},
            keep=run.cfg["checkpoint"]["keep"])
    if run.world > 1:
        dist.barrier(group=run.cpu_group)
    return path


def train(cfg: dict, resume: bool = False, log=None) -> dict[str, Any]:
    """Train as `cfg` says (data dir in cfg["data_dir"], run dir in cfg["out"]); returns a summary."""
    run, start = setup(cfg, resume, log)
    if start is not None:
        restore(run, start)
    wrap(run)
    run.say(f"{run.world} rank(s) x {run.accum} micro-batch(es) x {run.cfg['data']['tokens_per_batch']:,} "
            "tokens per optimiser step")
    metrics = MetricsLog(run)
    raw, every = run.raw_model, run.cfg["checkpoint"]["every"]
    prefetch = Prefetcher(run.loader, run.accum, run.step, run.device,
                          flops_of=lambda b: batch_flops(raw, b, b["num_masked"]))
    peak_lrs = [run.cfg["optim"]["lr"]] * len(run.optimizer.param_groups)
    snapshot, stopped_by, path = None, None, None
    run.model.train()
    try:
        with StopFlag() as stop:
            while run.step < run.max_steps:
                lr_scale = run.schedule(run.step)
                for group, peak_lr in zip(run.optimizer.param_groups, peak_lrs):
                    group["lr"] = peak_lr * lr_scale
                try:
                    todo = prefetch.next()
                except StopIteration:
                    raise TrainError(f"the loader ran out of data at step {run.step}") from None
                masked, step_tokens, step_flops = host_sum(run, [
                    sum(b.num_masked for b in todo.batches), sum(b.num_tokens for b in todo.batches),
                    sum(b.flops for b in todo.batches)])
                loss_sum, grad_norm = train_step(run, todo.batches, int(masked))
                run.step += 1
                run.tokens += int(step_tokens)
                snapshot = todo.snapshot
                metrics.add({"step": run.step, "lr": run.optimizer.param_groups[0]["lr"], "tokens": run.tokens,
                             "masked": int(masked), "mask_rate": todo.mask_rate, "epoch": todo.epoch,
                             "step_tokens": step_tokens, "step_flops": step_flops}, loss_sum, grad_norm)
                (stop_votes,) = host_sum(run, [float(stop.signal is not None)])
                if stop_votes > 0:
                    stopped_by = signal.Signals(stop.signal).name if stop.signal else "another rank's signal"
                    break
                if run.step % every == 0 and run.step < run.max_steps:
                    metrics.flush()
                    save(run, snapshot)
            metrics.flush()
            path = save(run, snapshot)
    finally:
        prefetch.close()
        run.loader.close()
        metrics.close()
    if stopped_by:
        run.say(f"stopped by {stopped_by} after step {run.step}; checkpoint {path}. Continue with --resume.")
    elif run.main:
        run.say(f"done: {run.step} steps, {run.tokens:,} tokens, last loss {metrics.last_loss:.4f}; checkpoint {path}")
    if dist.is_initialized():
        dist.destroy_process_group()
    return {"step": run.step, "tokens": run.tokens, "loss": metrics.last_loss,
            "checkpoint": str(path) if path else None, "stopped": stopped_by is not None}
