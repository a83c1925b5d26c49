"""The train loop: plain PyTorch, one optimiser step per iteration.

    model, optimizer, lr schedule, loader  <- config (+ checkpoint when resuming)
    for step:
        lr <- WSD(step)
        grad_accum micro-batches -> token-weighted loss -> backward (DDP syncs on the last one)
        clip, AdamW step
        one line in RUN/metrics.jsonl; console/TensorBoard every `logging.every` steps
        checkpoint every `checkpoint.every` steps, at the end, and on SIGTERM/SIGINT

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
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from twbert.training import checkpoint as ckpt
from twbert.training.loader import data_config
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
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def all_sum(values: list[float], device: torch.device) -> list[float]:
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if dist.is_initialized():
        dist.all_reduce(t)
    return t.tolist()


# ---------------------------------------------------------------------------------------------
# building blocks


def build_model(model_cfg: dict, tokenizer: dict) -> torch.nn.Module:
    """The MLM encoder of `model_cfg`, sized and labelled for the shards' tokenizer
    (`dataset.read_tokenizer_info`): vocabulary padded to a multiple of 64, BERT special ids."""
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


# Peak dense bf16 tensor-core FLOP/s by device name, for MFU. Override with logging.peak_tflops.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10G": 70.0,
               "A10": 125.0, "4090": 165.0, "3090": 71.0, "V100": 125.0}


def peak_flops(device: torch.device, override: float | None) -> float | None:
    if override:
        return override * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, tf in PEAK_TFLOPS.items():
        if key in name:
            return tf * 1e12
    return None


def batch_flops(model, batch: dict, n_masked: int) -> float:
    """Training FLOPs of one micro-batch, from the model's per-token count at the batch's effective
    contexts (each token attends within its own sequence; local layers within the window too).
    `batch` is the loader's CPU batch, so reading its cu_seqlens costs no GPU sync."""
    lengths = batch["cu_seqlens"][1:] - batch["cu_seqlens"][:-1]
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
# the loop


def train(cfg: dict, resume: bool = False, log=None) -> dict[str, Any]:
    """Train as `cfg` says (data dir in cfg["data_dir"], run dir in cfg["out"]); returns a summary."""
    t_cfg, o_cfg, c_cfg, l_cfg = cfg["train"], cfg["optim"], cfg["checkpoint"], cfg["logging"]
    rank, world, device = init_distributed(t_cfg["device"])
    main = rank == 0
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    say = log if main else (lambda msg: None)

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
    if main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg, indent=1, ensure_ascii=False), encoding="utf-8")

    from twbert.training.dataset import fetch_tokenizer, read_tokenizer_info

    tokenizer = read_tokenizer_info(fetch_tokenizer(cfg["data_dir"], data_config(cfg["data"])))
    # the same seed on every rank gives every rank the same initial weights
    torch.manual_seed(cfg["seed"])
    model = build_model(cfg["model"], tokenizer)
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

    step, tokens = 0, 0
    if start is not None:
        meta = ckpt.load_json(start, "trainer")
        model.load_state_dict(ckpt.load_tensors(start, "model", device))
        optimizer.load_state_dict(ckpt.load_tensors(start, "optimizer", device))
        for group, wd in zip(optimizer.param_groups, (o_cfg["weight_decay"], 0.0)):
            # the config's settings apply on resume (the moments come from the checkpoint)
            group.update(betas=tuple(o_cfg["betas"]), eps=o_cfg["eps"], weight_decay=wd)
        own = ckpt.load_json(start, f"rank_{rank:05d}")
        loader.load_state_dict(own["loader"])
        ckpt.set_rng_state(own["rng"])
        step, tokens = meta["step"], meta["tokens"]
        say(f"resumed from {start} at step {step} ({tokens:,} tokens)")
    if main:
        truncate_metrics(out / "metrics.jsonl", step)

    raw_model = model
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if t_cfg["compile"]:
        model = torch.compile(model, dynamic=True)
    bf16 = t_cfg["precision"] == "bf16" or (t_cfg["precision"] == "auto" and device.type == "cuda")
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    accum = grad_accum(t_cfg, int(cfg["data"]["tokens_per_batch"]), world)
    say(f"{world} rank(s) x {accum} micro-batch(es) x {cfg['data']['tokens_per_batch']:,} tokens per optimiser step")
    peak = peak_flops(device, l_cfg["peak_tflops"])
    params = [p for p in raw_model.parameters() if p.requires_grad]
    peak_lrs = [o_cfg["lr"]] * len(optimizer.param_groups)

    def save(step: int) -> Path | None:
        rank_state = json.dumps({"loader": loader.state_dict(), "rng": ckpt.rng_state()})
        states = [None] * world
        if world > 1:
            dist.all_gather_object(states, rank_state)
        else:
            states = [rank_state]
        path = None
        if main:
            path = ckpt.save(
                ckpt_root, step,
                tensors={"model": raw_model.state_dict(), "optimizer": optimizer.state_dict()},
                jsons={"trainer": {"step": step, "tokens": tokens, "world_size": world,
                                   "schedule": schedule.state_dict(), "resolved": resolved, "config": cfg,
                                   "model_config": raw_model.config.to_dict()},
                       **{f"rank_{r:05d}": json.loads(s) for r, s in enumerate(states)}},
                keep=c_cfg["keep"])
        if world > 1:
            dist.barrier()
        return path

    tb = None
    if main and l_cfg["tensorboard"]:
        from torch.utils.tensorboard import SummaryWriter
        tb = SummaryWriter(str(out / "tensorboard"), purge_step=step + 1)
    bar = None
    if main and l_cfg["progress"]:
        from tqdm import tqdm
        bar = tqdm(total=max_steps, initial=step, desc="train", unit="step", dynamic_ncols=True)
    metrics = open(out / "metrics.jsonl", "a", encoding="utf-8") if main else None

    batches = iter(loader)
    model.train()
    last_loss, stopped_by = float("nan"), None
    with StopFlag() as stop:
        while step < max_steps:
            t0 = time.perf_counter()
            lr_scale = schedule(step)
            for group, peak_lr in zip(optimizer.param_groups, peak_lrs):
                group["lr"] = peak_lr * lr_scale
            loader.set_step(step)  # masking-rate schedule
            try:
                micro = [next(batches) for _ in range(accum)]
            except StopIteration:
                raise TrainError(f"the loader ran out of data at step {step}") from None
            n_masked = [int((mb["labels"] != -100).sum()) for mb in micro]
            # every masked token in the global batch weighs the same, wherever it landed
            total_masked, = all_sum([sum(n_masked)], device)
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            step_flops = 0.0
            for i, (mb, n) in enumerate(zip(micro, n_masked)):
                sync = world == 1 or i == accum - 1
                with contextlib.nullcontext() if sync else model.no_sync():
                    with autocast():
                        out_ = model(
                            input_ids=mb["input_ids"].to(device, non_blocking=True),
                            position_ids=mb["position_ids"].to(device, non_blocking=True),
                            cu_seqlens=mb["cu_seqlens"].to(device, non_blocking=True),
                            max_seqlen=mb["max_seqlen"],
                            labels=mb["labels"].to(device, non_blocking=True),
                        )
                    loss = out_["loss"].float()
                    # DDP averages gradients over ranks; `world` undoes that for a global token mean
                    (loss * (n * world / max(total_masked, 1))).backward()
                loss_sum += loss.detach().double() * n
                step_flops += batch_flops(raw_model, mb, n)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, o_cfg["grad_clip"] or float("inf"))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            stats = torch.stack([loss_sum, grad_norm.double(),
                                 torch.tensor(float(sum(mb["num_tokens"] for mb in micro)), dtype=torch.float64, device=device),
                                 torch.tensor(step_flops, dtype=torch.float64, device=device),
                                 torch.tensor(float(stop.signal is not None), dtype=torch.float64, device=device)])
            if dist.is_initialized():
                dist.all_reduce(stats)
            loss_sum_all, _, step_tokens, step_flops_all, stop_votes = stats.tolist()
            last_loss = loss_sum_all / max(total_masked, 1)
            tokens += int(step_tokens)
            dt = time.perf_counter() - t0
            if main:
                rec = {"step": step, "loss": last_loss, "lr": optimizer.param_groups[0]["lr"],
                       "grad_norm": float(grad_norm), "tokens": tokens, "masked": int(total_masked),
                       "mask_rate": loader.mask_rate, "epoch": loader.epoch,
                       "tokens_per_s": step_tokens / dt,
                       "mfu": step_flops_all / dt / (peak * world) if peak else None}
                metrics.write(json.dumps(rec) + "\n")
                metrics.flush()
                if step % l_cfg["every"] == 0 or step == max_steps:
                    if tb:
                        for k in ("loss", "lr", "grad_norm", "tokens_per_s", "mfu", "mask_rate"):
                            if rec[k] is not None:
                                tb.add_scalar(f"train/{k}", rec[k], step)
                        tb.add_scalar("train/tokens", tokens, step)
                    if bar:
                        bar.set_postfix(loss=f"{last_loss:.4f}", lr=f"{rec['lr']:.2e}",
                                        tok_s=f"{rec['tokens_per_s']:,.0f}",
                                        **({"mfu": f"{rec['mfu']:.1%}"} if rec["mfu"] else {}), refresh=False)
                if bar:
                    bar.update(1)
            if stop_votes > 0:
                stopped_by = signal.Signals(stop.signal).name if stop.signal else "another rank's signal"
                break
            if step % c_cfg["every"] == 0 and step < max_steps:
                save(step)
        path = save(step)
    loader.close()
    if bar:
        bar.close()
    if metrics:
        metrics.close()
    if tb:
        tb.close()
    if stopped_by:
        say(f"stopped by {stopped_by} after step {step}; checkpoint {path}. Continue with --resume.")
    elif main:
        say(f"done: {step} steps, {tokens:,} tokens, last loss {last_loss:.4f}; checkpoint {path}")
    if dist.is_initialized():
        dist.destroy_process_group()
    return {"step": step, "tokens": tokens, "loss": last_loss, "checkpoint": str(path) if path else None,
            "stopped": stopped_by is not None}
