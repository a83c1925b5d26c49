"""`twbert finetune`: fine-tune an encoder on one task for N seeds and write DIR/results.json.

The loop is written here rather than borrowed from transformers' `Trainer`: the Trainer needs
`accelerate`, which twbert does not depend on (and is not installed), and the loop is short — AdamW,
BERT's warm-up and linear decay, gradient clipping, bf16 autocast on CUDA, accumulation over
micro-batches — while what matters for comparable figures (the windows, the n-best, OpenCC, the
official scorer) lives outside it either way. The heads are transformers' own
(`AutoModelForQuestionAnswering`, `AutoModelForSequenceClassification`).

    DIR/results.json                 task, model, opencc, protocol, data counts, per seed dev/test,
                                     mean and max
    DIR/predictions/dev_seed0.json   QA: {question id: answer}; classification: one label per example
    DIR/gold/dev.json                QA: the gold converted with OpenCC, as scored (`twbert eval qa` on it
                                     and a predictions file gives the figures in results.json)
    DIR/seeds/seed0/result.json      a finished seed (a rerun skips it: resumable per seed)
    DIR/seeds/seed0/losses.jsonl     the training loss of every optimizer step
"""

from __future__ import annotations

import json
import math
import random
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from twbert.errors import UsageError
from twbert.finetune import convert as cc
from twbert.finetune import qa, scoring, tasks


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# --- data ----------------------------------------------------------------------------------------------------

def load_split(task: str, path, convert, columns) -> dict:
    r = tasks.read(task, path, columns)
    info = {"file": str(path), "read": r.read, "dropped": r.dropped}
    if not r.examples:
        raise UsageError(f"{path}: no example to use ({r.read} read, dropped: {r.dropped or 'none'})")
    if tasks.kind(task) == "qa":
        examples, unaligned = cc.convert_qa(r.examples, convert)
        info["answers"] = sum(len(e.answers) for e in examples)
        info["unaligned_answers"] = len(unaligned)
        info["unaligned"] = unaligned
    else:
        examples = cc.convert_classification(r.examples, convert)
    return {"examples": examples, "info": info}


def write_squad(examples, path: Path) -> None:
    """QAExamples as SQuAD-style JSON (one paragraph per question; unaligned answers have answer_start -1)."""
    paragraphs = [{"context": ex.context, "qas": [{"id": ex.qid, "question": ex.question, "answers": [
        {"text": text, "answer_start": start} for text, start in ex.answers]}]} for ex in examples]
    path.write_text(json.dumps({"version": "twbert-converted", "data": [{"paragraphs": paragraphs}]},
                               ensure_ascii=False) + "\n", encoding="utf-8")


def encode_pairs(examples, tokenizer, max_length: int, typed: bool = False) -> list[dict]:
    """[CLS] a [SEP] (b [SEP]) token ids, the longer text cut first, as BERT's run_classifier.py does."""
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    out = []
    for ex in examples:
        a = tokenizer(ex.text_a, add_special_tokens=False)["input_ids"]
        b = tokenizer(ex.text_b, add_special_tokens=False)["input_ids"] if ex.text_b is not None else None
        room = max_length - (3 if b is not None else 2)
        while len(a) + (len(b) if b is not None else 0) > room:
            if b is not None and len(b) > len(a):
                b.pop()
            else:
                a.pop()
        ids = [cls] + a + [sep] + ((b + [sep]) if b is not None else [])
        types = [0] * (len(a) + 2) + [1] * (len(ids) - len(a) - 2) if typed else []
        out.append({"input_ids": ids, "token_type_ids": types})
    return out


def collate(items: list[dict], pad_id: int, device) -> dict:
    width = max(len(it["input_ids"]) for it in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(items), width), dtype=torch.long)
    batch = {"input_ids": ids, "attention_mask": attn}
    typed = bool(items[0].get("token_type_ids"))
    if typed:
        batch["token_type_ids"] = torch.zeros((len(items), width), dtype=torch.long)
    for i, it in enumerate(items):
        n = len(it["input_ids"])
        ids[i, :n] = torch.tensor(it["input_ids"])
        attn[i, :n] = 1
        if typed:
            batch["token_type_ids"][i, :n] = torch.tensor(it["token_type_ids"])
    for key in ("labels", "start_positions", "end_positions"):
        if key in items[0]:
            batch[key] = torch.tensor([it[key] for it in items], dtype=torch.long)
    return {k: v.to(device) for k, v in batch.items()}


# --- model ---------------------------------------------------------------------------------------------------

def load_model(model_dir: Path, kind: str, labels: list[str] | None, device, seed: int):
    from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    except (OSError, ValueError) as e:
        raise UsageError(f"{model_dir}: cannot load its tokenizer: {e}") from None
    if not tokenizer.is_fast:
        raise UsageError(f"{model_dir}: span QA and twbert finetune need a fast tokenizer (tokenizer.json)")
    torch.manual_seed(seed)  # the new head's initialisation
    # fp32 master weights whatever the checkpoint holds (transformers 5 would keep a bf16 baseline in bf16);
    # the keyword was renamed in 4.56.
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    fp32 = {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": torch.float32}
    try:
        if kind == "qa":
            model = AutoModelForQuestionAnswering.from_pretrained(str(model_dir), **fp32)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(
                str(model_dir), **fp32, num_labels=len(labels),
                id2label=dict(enumerate(labels)), label2id={lab: i for i, lab in enumerate(labels)})
    except (OSError, ValueError) as e:
        raise UsageError(f"{model_dir}: cannot load it with a {kind} head: {e}") from None
    return model.to(device), tokenizer


def takes_token_types(model) -> bool:
    """BERT-style models take segment ids; ModernBERT has none (its tokenizer still lists them)."""
    import inspect

    return "token_type_ids" in inspect.signature(model.forward).parameters


def model_limit(model) -> int | None:
    return getattr(model.config, "max_position_embeddings", None)


def _optimizer(model, lr: float, weight_decay: float):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name.lower() or name.endswith("bias") else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def train(model, items: list[dict], cfg: dict, seed: int, device, pad_id: int, log_path: Path, progress: bool) -> dict:
    from tqdm.auto import tqdm

    batch = cfg["batch_size"]
    micro = cfg.get("micro_batch_size") or batch
    per_epoch = math.ceil(len(items) / batch)
    total = cfg["max_steps"] if cfg.get("max_steps") else max(1, round(per_epoch * cfg["epochs"]))
    warmup = int(total * cfg["warmup_ratio"])
    opt = _optimizer(model, cfg["lr"], cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (total - s) / max(1, total - warmup)))
    rng = random.Random(seed)
    torch.manual_seed(seed)  # dropout
    autocast = _bf16(cfg, device)
    model.train()
    order: list[int] = []
    losses = []
    with open(log_path, "w", encoding="utf-8") as log:
        for step in tqdm(range(total), desc=f"seed {seed}", unit="step", disable=not progress):
            if len(order) < batch:
                more = list(range(len(items)))
                rng.shuffle(more)
                order += more
            chosen, order = order[:batch], order[batch:]
            opt.zero_grad(set_to_none=True)
            loss_sum = 0.0
            for start in range(0, len(chosen), micro):
                part = [items[i] for i in chosen[start:start + micro]]
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                    loss = model(**collate(part, pad_id, device)).loss * len(part) / len(chosen)
                loss.backward()
                loss_sum += loss.item()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["max_grad_norm"])
            opt.step()
            sched.step()
            losses.append(loss_sum)
            log.write(json.dumps({"step": step + 1, "loss": loss_sum, "lr": sched.get_last_lr()[0]}) + "\n")
    model.eval()
    return {"steps": total, "first_loss": losses[0], "last_loss": losses[-1]}


def _bf16(cfg: dict, device) -> bool:
    value = cfg.get("bf16", "auto")
    return device.type == "cuda" if value == "auto" else bool(value)


@torch.no_grad()
def forward_all(model, items: list[dict], cfg: dict, device, pad_id: int, kind: str):
    """Per item: (start logits, end logits) for QA, logits for classification; batched longest first."""
    order = sorted(range(len(items)), key=lambda i: -len(items[i]["input_ids"]))
    out: list = [None] * len(items)
    autocast = _bf16(cfg, device)
    bs = cfg["eval_batch_size"]
    for start in range(0, len(order), bs):
        idx = order[start:start + bs]
        batch = collate([{k: v for k, v in items[i].items() if k in ("input_ids", "token_type_ids")} for i in idx],
                        pad_id, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            res = model(**batch)
        if kind == "qa":
            s, e = res.start_logits.float().cpu().tolist(), res.end_logits.float().cpu().tolist()
            for row, i in enumerate(idx):
                out[i] = (s[row], e[row])
        else:
            logits = res.logits.float().cpu()
            for row, i in enumerate(idx):
                out[i] = logits[row]
    return out


# --- one task ------------------------------------------------------------------------------------------------

def qa_items(features: list[qa.Feature], train: bool) -> list[dict]:
    items = []
    for f in features:
        it = {"input_ids": f.input_ids, "token_type_ids": f.token_type_ids}
        if train:
            it["start_positions"], it["end_positions"] = f.start_position, f.end_position
        items.append(it)
    return items


def evaluate_qa(model, tokenizer, examples, cfg, device) -> tuple[dict, dict]:
    feats = qa.make_features(examples, tokenizer, cfg["max_length"], cfg["doc_stride"] if cfg["stride"] else None,
                             cfg["max_query_length"], typed=takes_token_types(model))
    logits = forward_all(model, qa_items(feats.features, False), cfg, device, tokenizer.pad_token_id or 0, "qa")
    preds = qa.best_answers(examples, feats.features, [s for s, _ in logits], [e for _, e in logits],
                            cfg["n_best"], cfg["max_answer_length"])
    gold = {ex.qid: [t for t, _ in ex.answers] for ex in examples if ex.answers}
    metrics = scoring.score_qa(gold, preds) if gold else {"total": len(examples), "unlabelled": len(examples)}
    metrics["contexts_cut"] = feats.counts["contexts_cut"]
    return metrics, preds


def evaluate_classification(model, tokenizer, examples, labels, cfg, device) -> tuple[dict, list]:
    items = encode_pairs(examples, tokenizer, cfg["max_length"], takes_token_types(model))
    logits = forward_all(model, items, cfg, device, tokenizer.pad_token_id or 0, "classify")
    preds = [labels[int(row.argmax())] for row in logits]
    gold = [ex.label for ex in examples]
    if any(g is None for g in gold):
        return {"total": len(examples), "unlabelled": sum(g is None for g in gold)}, preds
    return scoring.score_classification(gold, preds), preds


def finetune(task: str, model_path, train_path, dev_path, out_dir, test_path=None, cfg: dict | None = None,
             columns: tasks.Columns | None = None, progress: bool = True) -> dict:
    """Run the task for cfg["seeds"] seeds and write OUT/results.json; returns it."""
    from twbert.config import defaults, merge
    from twbert.training.evaluate import EvalError, resolve_model_dir

    kind = tasks.kind(task)
    base = defaults("finetune")
    per_task = base.pop("tasks")[task]
    cfg = merge({**base, **per_task}, cfg or {}, "finetune options")
    for key in ("batch_size", "eval_batch_size", "max_length", "seeds", "doc_stride", "max_answer_length", "n_best"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise UsageError(f"{key.replace('_', '-')} must be a whole number of at least 1, got {cfg[key]!r}")
    if cfg["max_steps"] is not None and cfg["max_steps"] < 1:
        raise UsageError(f"--max-steps must be at least 1, got {cfg['max_steps']}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = _device(cfg["device"])
    convert = cc.converter(cfg["opencc"])

    splits = {"train": train_path, "dev": dev_path, **({"test": test_path} if test_path else {})}
    data = {name: load_split(task, path, convert, columns) for name, path in splits.items()}
    labels = None
    if kind == "classify":
        labels = sorted({ex.label for ex in data["train"]["examples"] if ex.label is not None}, key=str)
        if len(labels) < 2:
            raise UsageError(f"{train_path}: the training set has {len(labels)} label(s); classification needs two or more")
        for name in ("dev", "test"):
            for ex in data.get(name, {}).get("examples", []):
                if ex.label is not None and ex.label not in labels:
                    raise UsageError(f"{ex.where}: label {ex.label!r} never occurs in the training set {train_path}")

    results = {"task": task, "model": str(model_path), "opencc": cfg["opencc"],
               "protocol": {k: v for k, v in cfg.items() if k not in ("device",)},
               "data": {name: d["info"] for name, d in data.items()}, "seeds": []}
    if labels is not None:
        results["labels"] = labels
    (out / "predictions").mkdir(exist_ok=True)
    if kind == "qa":  # the converted gold the predictions are scored on: `twbert eval qa` reproduces the figures
        (out / "gold").mkdir(exist_ok=True)
        for name in ("dev", "test"):
            if name in data:
                write_squad(data[name]["examples"], out / "gold" / f"{name}.json")
    with tempfile.TemporaryDirectory(prefix="twbert-finetune-") as work:
        try:
            model_dir = resolve_model_dir(model_path, work)
        except EvalError as e:
            raise UsageError(str(e)) from None
        results["model_dir"] = str(model_dir) if Path(model_dir) == Path(model_path) else "(exported from the run)"
        for seed in range(cfg["seed"], cfg["seed"] + cfg["seeds"]):
            seed_dir = out / "seeds" / f"seed{seed}"
            done = seed_dir / "result.json"
            if done.is_file():
                _say(f"seed {seed}: already done ({done}), kept")
                results["seeds"].append(json.loads(done.read_text(encoding="utf-8")))
                continue
            seed_dir.mkdir(parents=True, exist_ok=True)
            results["seeds"].append(_one_seed(task, kind, model_dir, data, labels, cfg, seed, device, seed_dir, out,
                                              progress))
    results["mean"], results["max"] = summary(results["seeds"])
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(out / "results.json")
    return results


def _one_seed(task, kind, model_dir, data, labels, cfg, seed, device, seed_dir: Path, out: Path, progress) -> dict:
    torch.manual_seed(seed)
    model, tokenizer = load_model(model_dir, kind, labels, device, seed)
    limit = model_limit(model)
    if limit and cfg["max_length"] > limit:
        raise UsageError(f"--max-length {cfg['max_length']} is over the model's limit of {limit} positions: pass --max-length {limit} or less")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    train_examples = data["train"]["examples"]
    if kind == "qa":
        aligned = [ex for ex in train_examples if ex.answers and ex.answers[0][1] >= 0]
        feats = qa.make_features(aligned, tokenizer, cfg["max_length"], cfg["doc_stride"] if cfg["stride"] else None,
                                 cfg["max_query_length"], train=True, typed=takes_token_types(model))
        items = qa_items(feats.features, True)
        train_counts = {**feats.counts, "questions_without_an_aligned_answer": len(train_examples) - len(aligned)}
    else:
        label_id = {lab: i for i, lab in enumerate(labels)}
        usable = [ex for ex in train_examples if ex.label is not None]
        items = [{**it, "labels": label_id[ex.label]} for it, ex in
                 zip(encode_pairs(usable, tokenizer, cfg["max_length"], takes_token_types(model)), usable)]
        train_counts = {"examples": len(usable), "unlabelled": len(train_examples) - len(usable)}
    _say(f"seed {seed}: training on {len(items)} {'windows' if kind == 'qa' else 'examples'} ({device})")
    trained = train(model, items, cfg, seed, device, pad_id, seed_dir / "losses.jsonl", progress)
    result = {"seed": seed, "train": {**trained, **train_counts}}
    for split in ("dev", "test"):
        if split not in data:
            continue
        examples = data[split]["examples"]
        if kind == "qa":
            metrics, preds = evaluate_qa(model, tokenizer, examples, cfg, device)
        else:
            metrics, preds = evaluate_classification(model, tokenizer, examples, labels, cfg, device)
        (out / "predictions" / f"{split}_seed{seed}.json").write_text(
            json.dumps(preds, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
        result[split] = metrics
        _say(f"seed {seed} {split}: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                                  for k, v in metrics.items()))
    (seed_dir / "result.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


METRICS = ("em", "f1", "accuracy", "macro_f1")


def summary(seeds: list[dict]) -> tuple[dict, dict]:
    """Mean and max over the seeds of each split's metrics (HFL reports both)."""
    mean, best = {}, {}
    for split in ("dev", "test"):
        for metric in METRICS:
            values = [s[split][metric] for s in seeds if split in s and metric in s[split]]
            if values:
                mean.setdefault(split, {})[metric] = statistics.fmean(values)
                best.setdefault(split, {})[metric] = max(values)
    return mean, best

