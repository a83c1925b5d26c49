"""Config types, derived from the documented defaults.

Every key of `twbert/defaults/<kind>.yaml` gets its type from its default value: a boolean default
makes a boolean key, `4` an integer, `0.3` a number, `[0]` a list of integers, a mapping a section
whose keys are typed the same way. Only what a default cannot say is written down, in `EXPLICIT`:
the type of a key whose default is null or empty (`[]`, `{}`), a range (a probability, a positive
count), a closed set of choices, or that null is allowed. So a key added to the defaults is typed
without touching this file, unless its default is null or empty: then `tests/test_config.py` fails
until it gets an entry here.

Values are checked as each config layer is merged (`twbert.config.merge`), before any task starts;
the error names the key, the value and the expected type. YAML's own types are taken at their word:
`"false"` is a string, not a boolean, and `S0` is a string, not a list.
"""

from __future__ import annotations

import math
from typing import Any

from twbert.errors import UsageError


class Type:
    """A config value's type. `problem(value)` is None when the value fits, else what was expected."""

    what = "any value"

    def problem(self, value: Any, key: str) -> tuple[str, Any, str] | None:
        return None

    def check(self, value: Any, key: str, source: str) -> None:
        found = self.problem(value, key)
        if found is not None:
            at, bad, expected = found
            raise UsageError(f"{source}: config key '{at}' is {show(bad)}; expected {expected}")

    def untyped(self, key: str):
        """Keys below this type that have no type (null or empty default without an EXPLICIT entry)."""
        return iter(())


def show(value: Any) -> str:
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a mapping", type(None): "null"}.get(type(value), type(value).__name__)
    text = repr(value) if not isinstance(value, str) else '"' + value + '"'
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({kind})"


class Untyped(Type):
    """A key whose default cannot say its type: accepted as is, but flagged by the tests."""

    what = "(no type: add it to twbert/schema.py EXPLICIT)"

    def untyped(self, key):
        yield key


class Bool(Type):
    what = "a boolean (true or false, unquoted)"

    def problem(self, value, key):
        return None if isinstance(value, bool) else (key, value, self.what)


class Number(Type):
    """An integer (`integral=True`; booleans are not integers) or a number (integers accepted)."""

    def __init__(self, integral: bool, lo: float | None = None, hi: float | None = None, also: tuple = ()):
        self.integral, self.lo, self.hi, self.also = integral, lo, hi, also
        base = "an integer" if integral else "a number"
        if lo is not None and hi is not None:
            base += f" in [{lo}, {hi}]"
        elif lo is not None:
            base += f" >= {lo}"
        elif hi is not None:
            base += f" <= {hi}"
        if also:
            base += " or " + " or ".join(map(str, also))
        self.what = base

    def problem(self, value, key):
        kinds = (int,) if self.integral else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            hint = ""
            if isinstance(value, str) and not self.integral:
                try:
                    float(value)
                    hint = " (YAML reads 1e-4 as a string: write 1.0e-4)"
                except ValueError:
                    pass
            return key, value, self.what + hint
        if value in self.also:
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return key, value, self.what
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            return key, value, self.what
        return None


def Int(lo=None, hi=None, also=()):
    return Number(True, lo, hi, also)


def Float(lo=None, hi=None, also=()):
    return Number(False, lo, hi, also)


PROBABILITY = Float(0, 1)


class Str(Type):
    def __init__(self, choices: tuple[str, ...] | None = None):
        self.choices = choices
        self.what = "a string" if not choices else "one of " + ", ".join(choices)

    def problem(self, value, key):
        if not isinstance(value, str) or (self.choices and value not in self.choices):
            return key, value, self.what
        return None


class Nullable(Type):
    def __init__(self, inner: Type):
        self.inner = inner
        self.what = f"{inner.what}, or null"

    def problem(self, value, key):
        if value is None:
            return None
        found = self.inner.problem(value, key)
        return None if found is None else (found[0], found[1], found[2] + ", or null")

    def untyped(self, key):
        return self.inner.untyped(key)


class Either(Type):
    """The first of `options` that fits: e.g. an integer step count or a fraction of training."""

    def __init__(self, *options: Type):
        self.options = options
        self.what = " or ".join(o.what for o in options)

    def problem(self, value, key):
        if any(o.problem(value, key) is None for o in self.options):
            return None
        return key, value, self.what


class ListOf(Type):
    def __init__(self, item: Type, length: int | None = None):
        self.item, self.length = item, length
        self.what = (f"a list of {length} items" if length else "a list") + f", each {item.what}"

    def problem(self, value, key):
        if not isinstance(value, list):
            return key, value, self.what
        if self.length is not None and len(value) != self.length:
            return key, value, self.what
        for i, v in enumerate(value):
            found = self.item.problem(v, f"{key}[{i}]")
            if found is not None:
                return found
        return None

    def untyped(self, key):
        return self.item.untyped(f"{key}[]")


class MapOf(Type):
    """An open mapping (default `{}`): any string keys, values of one type."""

    def __init__(self, value: Type):
        self.value = value
        self.what = "a mapping (name: value)"

    def problem(self, value, key):
        if not isinstance(value, dict):
            return key, value, self.what
        for k, v in value.items():
            if not isinstance(k, str):
                return f"{key}.{k}", k, "a string key"
            found = self.value.problem(v, f"{key}.{k}")
            if found is not None:
                return found
        return None

    def untyped(self, key):
        return self.value.untyped(f"{key}.*")


class Section(Type):
    """A mapping with fixed keys (a non-empty default mapping); unknown keys are `config.merge`'s error."""

    what = "a mapping of the keys below it"

    def __init__(self, fields: dict[str, Type]):
        self.fields = fields

    def problem(self, value, key):
        if not isinstance(value, dict):
            return key, value, self.what
        for k, v in value.items():
            if k in self.fields:
                found = self.fields[k].problem(v, f"{key}.{k}" if key else str(k))
                if found is not None:
                    return found
        return None

    def untyped(self, key):
        for k, t in self.fields.items():
            yield from t.untyped(f"{key}.{k}" if key else str(k))


def derive(value: Any) -> Type:
    """The type a default value documents."""
    if isinstance(value, bool):
        return Bool()
    if isinstance(value, int):
        return Int()
    if isinstance(value, float):
        return Float()
    if isinstance(value, str):
        return Str()
    if isinstance(value, list):
        return ListOf(_unify([derive(v) for v in value])) if value else ListOf(Untyped())
    if isinstance(value, dict):
        return Section({str(k): derive(v) for k, v in value.items()}) if value else MapOf(Untyped())
    return Untyped()


def _unify(types: list[Type]) -> Type:
    """One type for a list's items: integers and numbers mix as numbers ([2, 0.256])."""
    if all(isinstance(t, Number) for t in types):
        return Float() if any(not t.integral for t in types) else Int()
    if all(isinstance(t, ListOf) for t in types):
        return ListOf(_unify([t.item for t in types]))
    first = type(types[0])
    if first in (Bool, Str) and all(type(t) is first for t in types):
        return types[0]
    return Untyped()


# What the defaults cannot say. A key here replaces the derived type of that key.
STR_LIST = ListOf(Str())
POSITIVE = Int(1)
COUNT = Int(0)
EXPLICIT: dict[str, dict[str, Type]] = {
    "build": {
        "inputs.wiki": STR_LIST,
        "inputs.fineweb": STR_LIST,
        "out": Nullable(Str()),
        "executor.type": Str(("local", "slurm", "ray")),
        "executor.tasks": POSITIVE,
        "executor.workers": Int(1, also=(-1,)),
        "executor.logging_dir": Nullable(Str()),
        "executor.slurm": MapOf(Type()),  # passed through to datatrove's SlurmPipelineExecutor
        "executor.ray": MapOf(Type()),  # passed through to datatrove's RayPipelineExecutor
        "executor.ray_address": Nullable(Str()),
        "output.compression": Nullable(Str(("gzip", "zstd"))),
        "wiki.disambiguation_templates": Nullable(STR_LIST),
        "convert.phrases": ListOf(Either(Str(), ListOf(Str()))),
        "convert.cgroups": Nullable(Str()),
        "convert.artifacts.max_per_10k": Nullable(Float(0)),
        "convert.artifacts.extra": STR_LIST,
        "wiki.limit": Int(1, also=(-1,)),
        # template name -> the parameter(s) shown: a name or a position (1-based), or a list of them
        "wiki.extra_inline_templates": MapOf(Either(Str(), Int(1), ListOf(Either(Str(), Int(1))))),
        "web.batch_size": POSITIVE,
        "web.limit": Int(1, also=(-1,)),
        "web.max_tail_fraction": PROBABILITY,
        "web.source_prefixes": Nullable(STR_LIST),
        "references.headings": Nullable(STR_LIST),
        "references.extra_headings": STR_LIST,
        "quality.language_score": PROBABILITY,
        "quality.dup_line_frac": PROBABILITY,
        "quality.line_punct_thr": PROBABILITY,
        "quality.char_duplicates_ratio": PROBABILITY,
        "quality.max_bullet_lines_ratio": PROBABILITY,
        "quality.max_ellipsis_lines_ratio": PROBABILITY,
        "quality.max_non_alpha_words_ratio": PROBABILITY,
        "quality.chars_per_word": Float(0.1),
        "pii.kinds": ListOf(Str(("email", "ip", "phone", "id"))),
        "pii.sources": ListOf(Str(("web", "wiki"))),
        "variant.model": Nullable(Str()),
        "variant.max_chars": POSITIVE,
        "variant.policy.min_han_ratio": PROBABILITY,
        "variant.policy.tw_min_trad_ratio": PROBABILITY,
        "variant.policy.tw_min_p": PROBABILITY,
        "variant.policy.tw_rescue_p": PROBABILITY,
        "variant.hosts": MapOf(Str(("tw", "cn", "hk", "none"))),
        "variant.policy.convert": ListOf(Str(("cn", "hk"))),
        "variant.policy.drop": ListOf(Str(("tw", "cn", "hk"))),
        "dedup.ngram": POSITIVE,
        "dedup.fold": Nullable(Str()),
        "dedup.buckets": POSITIVE,
        "dedup.hashes_per_bucket": POSITIVE,
        "dedup.pair_tasks": Nullable(POSITIVE),
        "dedup.block_pairs": POSITIVE,
        "dedup.cluster_memory_gb": Float(0),
        "dedup.cc_rounds": POSITIVE,
        "dedup.threshold": PROBABILITY,
        "dedup.paragraphs.min_chars": COUNT,
        "dedup.paragraphs.shards": POSITIVE,
        "shards.tokenizer": Nullable(Str()),
        "shards.max_len": Int(3),
        "shards.min_tail_tokens": COUNT,
        "shards.tail": Str(("merge", "drop", "keep")),
        "shards.segmenter": Str(("rjieba", "jieba_fast_dat", "jieba")),
        "shards.tasks": Nullable(POSITIVE),
        "shards.compression": Nullable(Str()),
        "shards.size_limit": POSITIVE,
    },
    "train": {
        "data_dir": Nullable(Str()),
        "out": Nullable(Str()),
        "init_from": Nullable(Str()),
        "model.hidden_size": POSITIVE,
        "model.num_hidden_layers": POSITIVE,
        "model.num_attention_heads": POSITIVE,
        "model.intermediate_size": POSITIVE,
        "model.global_attn_every_n_layers": POSITIVE,
        "model.local_attention": POSITIVE,
        "model.max_position_embeddings": POSITIVE,
        "model.norm_eps": Float(0),
        "model.initializer_range": Float(0),
        "model.attn_backend": Str(("auto", "fa3", "flash", "varlen", "varlen_cudnn", "sdpa")),
        "data.mixing": Str(("repeat", "proportion")),
        "data.weights": MapOf(Float(0)),
        "data.tier_weights": MapOf(Float(0)),
        "data.cache_dir": Nullable(Str()),
        "data.cache_limit": Nullable(Either(Str(), COUNT)),
        "data.download_timeout": Float(0),
        "data.predownload": Nullable(COUNT),
        "data.shuffle_seed": Nullable(Int()),
        "data.shuffle_algo": Str(("py1e", "py1br", "py1b", "py1s", "py2s", "naive")),
        "data.shuffle_block_size": Nullable(POSITIVE),
        "data.num_canonical_nodes": Nullable(POSITIVE),
        "data.num_workers": COUNT,
        "data.prefetch_factor": POSITIVE,
        "data.read_batch": POSITIVE,
        "data.max_len": Int(3),
        "data.tokens_per_batch": POSITIVE,
        "data.pack_buffer": POSITIVE,
        "data.masking.rate": PROBABILITY,
        "data.masking.final_rate": Nullable(PROBABILITY),
        "data.masking.schedule_steps": Nullable(Either(POSITIVE, Float(0, 1))),
        "data.masking.schedule_shape": Str(("linear", "cosine", "1-sqrt")),
        "data.masking.ngram_probs": ListOf(PROBABILITY),
        "data.masking.replace_probs": ListOf(PROBABILITY, length=3),
        "optim.lr": Float(0),
        "optim.betas": ListOf(PROBABILITY, length=2),
        "optim.eps": Float(0),
        "optim.weight_decay": Float(0),
        "optim.grad_clip": Nullable(Float(0)),
        "optim.fused": Nullable(Bool()),
        "schedule.warmup": Float(0),
        "schedule.decay": Float(0),
        "schedule.shape": Str(("linear", "cosine", "1-sqrt")),
        "schedule.min_ratio": PROBABILITY,
        "train.max_steps": POSITIVE,
        "train.batch_tokens": Nullable(POSITIVE),
        "train.grad_accum": POSITIVE,
        "train.precision": Str(("auto", "bf16", "fp32")),
        "checkpoint.every": POSITIVE,
        "checkpoint.keep": Nullable(POSITIVE),
        "logging.every": POSITIVE,
        "logging.peak_tflops": Nullable(Float(0)),
    },
}


def schema(kind: str, defaults: dict) -> Section:
    """The type of every key of `defaults` (the documented defaults of `kind`)."""
    root = derive(defaults)
    for dotted, t in EXPLICIT.get(kind, {}).items():
        *parents, last = dotted.split(".")
        node = root
        for p in parents:
            node = node.fields.get(p) if isinstance(node, Section) else None
        if isinstance(node, Section) and last in node.fields:
            node.fields[last] = t
    return root


def stale(kind: str, defaults: dict) -> list[str]:
    """EXPLICIT entries that name no key of the defaults (a key renamed or removed)."""
    out = []
    for dotted in EXPLICIT.get(kind, {}):
        node = defaults
        for p in dotted.split("."):
            if not isinstance(node, dict) or p not in node:
                out.append(dotted)
                break
            node = node[p]
    return out
