"""The fastText tw/cn/hk classifier: weak labels from the corpus itself, training, prediction.

No labelled variant data exists offline, so the labels are made:

- every text is first taken to Mainland Simplified with OpenCC tw2sp (a common base, so that no
  class can be told apart by where its text came from), then written out four ways:
  s2twp → `tw`; the base itself → `cn`; s2tw → `cn` (Mainland wording in Taiwan-standard
  Traditional characters: the hard case, which a character-set test passes); s2hk → `hk`. The
  last two are kept only where they differ from the `tw` version;
- web documents whose URL's host is in the host map (the .tw/.cn/.hk/.mo suffixes and the major
  sites on generic TLDs: udn.com, hkcnews.com, cctv.com ...; `variant.hosts` extends it) are also
  used as they are, labelled by it (.cn and .hk ones only so: see `weak_examples`).

Features are characters: each Han character or punctuation mark is a token and each run of Latin
letters or digits another, and fastText's word n-grams (default 2) then see the character bigrams
that carry variant usage (軟件/軟體, 視頻/影片). benchmarks/bench_variant.py compares
this with fastText's subword (minn/maxn) features on unsegmented text.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from twbert.errors import UsageError
from twbert.pipeline.variant import VARIANTS, HostMap, converter, domain_hint

_TOKEN = re.compile(r"[A-Za-z]+|\d+|[^\sA-Za-z\d]")


def tokens(text: str, max_chars: int = 2000) -> str:
    """The classifier's view of a text: space-separated characters, one line."""
    return " ".join(_TOKEN.findall(text[:max_chars].lower()))


def check_model_file(path: str | os.PathLike) -> None:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"variant model file not found: {p}. Train one with `twbert variant train "
                         f"--input DIR/documents --out {p}`, or set variant.model: null for rule-only scoring")


class VariantModel:
    """A trained classifier. `predict(texts)` gives [{"p_tw", "p_cn", "p_hk"}] per text."""

    def __init__(self, path: str | os.PathLike, max_chars: int = 2000):
        import fasttext

        check_model_file(path)
        try:
            self.model = fasttext.load_model(str(path))
        except Exception as e:  # fastText raises ValueError/RuntimeError on a bad file
            raise UsageError(f"{path}: not a fastText model file ({e}). Retrain it with `twbert variant train`") from None
        if not self.model.is_quantized():
            # fastText reads a truncated file without complaint (the rest of its matrices is
            # whatever memory held): the two float32 matrices alone need this many bytes.
            args = self.model.f.getArgs()
            rows = len(self.model.words) + (args.bucket if args.wordNgrams > 1 or args.maxn > 0 else 0)
            need = 4 * self.model.get_dimension() * (rows + len(self.model.labels))
            if Path(path).stat().st_size < need:
                raise UsageError(f"{path}: truncated fastText model ({Path(path).stat().st_size:,} bytes, its "
                                 f"matrices alone need {need:,}). Retrain it with `twbert variant train`")
        labels = {lab.removeprefix("__label__") for lab in self.model.get_labels()}
        if labels != set(VARIANTS):
            raise UsageError(f"{path}: model labels are {sorted(labels)}, expected {list(VARIANTS)}: "
                             "not a twbert variant model")
        self.max_chars = max_chars

    def predict(self, texts: list[str]) -> list[dict]:
        lines = [tokens(t, self.max_chars) for t in texts]
        out = [None] * len(lines)
        todo = [i for i, line in enumerate(lines) if line]
        if todo:
            labels, probs = self.model.predict([lines[i] for i in todo], k=len(VARIANTS))
            for i, labs, ps in zip(todo, labels, probs):
                p = {f"p_{lab.removeprefix('__label__')}": round(float(v), 4) for lab, v in zip(labs, ps)}
                out[i] = {k: p.get(k, 0.0) for k in ("p_tw", "p_cn", "p_hk")}
        uniform = round(1 / len(VARIANTS), 4)  # nothing to read: no evidence either way
        return [o or {"p_tw": uniform, "p_cn": uniform, "p_hk": uniform} for o in out]


# --------------------------------------------------------------------------- weak labels

SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".txt", ".parquet")


def _read_parquet(f: Path):
    """FineWeb2-schema parquet: `text` and `url` columns, streamed by row batch."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(f)
    except Exception as e:
        raise UsageError(f"{f}: not a readable parquet file ({e})") from None
    names = set(pf.schema_arrow.names)
    if "text" not in names:
        raise UsageError(f"{f}: parquet without a `text` column (has {sorted(names)})")
    columns = ["text"] + (["url"] if "url" in names else [])
    for batch in pf.iter_batches(columns=columns, batch_size=1024):
        rows = batch.to_pydict()
        urls = rows.get("url") or [None] * len(rows["text"])
        for text, url in zip(rows["text"], urls):
            if text:
                yield text, url


def read_texts(paths: list[str]):
    """Yield (text, url) from datatrove JSONL(.gz) documents, JSON lines with `text`, FineWeb2
    parquet (`text`, `url`), or raw text.

    The url is None for documents a build converted to Taiwan form (`converted_from` in metadata).

    A directory is searched recursively for those suffixes. Raw text files give one example per
    non-empty line.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(SUFFIXES))
        elif p.is_file():
            files.append(p)
        else:
            raise UsageError(f"--input {p}: no such file or directory")
    if not files:
        raise UsageError(f"--input {' '.join(paths)}: no {', '.join(SUFFIXES)} files found")
    for f in files:
        if f.name.endswith(".parquet"):
            yield from _read_parquet(f)
            continue
        opener = gzip.open if f.name.endswith(".gz") else open
        with opener(f, "rt", encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                if f.name.endswith(".txt"):
                    yield line, None
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise UsageError(f"{f}:{n}: not a JSON line ({e.msg})") from None
                if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                    raise UsageError(f"{f}:{n}: a JSON line needs a string `text` field")
                meta = row.get("metadata") or {}
                # A build's `tw_converted` document is no longer in its site's variant: its URL
                # is no label for the text it now holds.
                url = None if meta.get("converted_from") else (row.get("url") or meta.get("url"))
                yield row["text"], url


def chunks(text: str, size: int) -> list[str]:
    """Paragraph-aligned pieces of about `size` characters: more, shorter examples per document."""
    out, cur = [], ""
    for para in text.split("\n"):
        para = para.strip()
        if not para:
            continue
        while len(para) > size:
            out.append(para[:size])
            para = para[size:]
        if len(cur) + len(para) > size and cur:
            out.append(cur)
            cur = ""
        cur = f"{cur} {para}" if cur else para
    if cur:
        out.append(cur)
    return out


def weak_examples(text: str, url: str | None, chunk_chars: int = 60,
                  hosts: HostMap | None = None) -> list[tuple[str, str, str]]:
    """(label, kind, text) examples made from one document; `kind` names how it was made.

    A web document whose host the host map places in Mainland or Hong Kong is used as labelled by it (and a .cn one also in
    Traditional characters, labelled cn: real Mainland wording the way a converted page shows it).
    Every other document is taken as Mandarin and converted into all variants: converting a
    Cantonese page to "Taiwan form" would only teach the model that Cantonese is Taiwanese.
    """
    out = []
    hint = domain_hint(url, hosts)
    for piece in chunks(text, chunk_chars):
        if hint != "none":
            out.append((hint, f"site_{hint}", piece))
        if hint == "hk":
            continue
        if hint == "cn":
            trad = converter("s2tw").convert(converter("t2s").convert(piece))
            if trad != piece:
                out.append(("cn", "site_cn_in_trad", trad))
            continue
        base = converter("tw2sp").convert(piece)
        tw = converter("s2twp").convert(base)
        out.append(("tw", "s2twp", tw))
        out.append(("cn", "simplified", base))
        # A piece without Taiwan-specific words converts to the same Traditional text either way; as
        # a `cn` or `hk` example it would only teach the model that identical text has three
        # labels. Only the versions that differ are evidence.
        for label, kind, config in (("cn", "cn_in_trad", "s2tw"), ("hk", "s2hk", "s2hk")):
            converted = converter(config).convert(base)
            if converted != tw:
                out.append((label, kind, converted))
    return out


def _prf(rows: list[tuple[str, str]]) -> dict:
    """Per-class precision/recall/F1 from (gold, predicted) pairs."""
    out = {}
    for c in VARIANTS:
        tp = sum(1 for g, p in rows if g == c and p == c)
        fp = sum(1 for g, p in rows if g != c and p == c)
        fn = sum(1 for g, p in rows if g == c and p != c)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        out[c] = {"precision": round(prec, 4), "recall": round(rec, 4),
                  "f1": round(2 * prec * rec / (prec + rec), 4) if prec + rec else 0.0, "support": tp + fn}
    return out


# glibc: allocations of 4 KB and more come from mmap (zeroed pages), and the threshold stays fixed.
FASTTEXT_ENV = {"MALLOC_MMAP_THRESHOLD_": "4096"}

_FIT = """
import json, sys
import fasttext
params, path, quantize = json.loads(sys.argv[1])
model = fasttext.train_supervised(**params)
if quantize:
    model.quantize(input=None, retrain=False, cutoff=100_000)
model.save_model(path)
"""


def balanced(rows: list, rng: random.Random) -> list:
    """Rows downsampled so every label has as many as the rarest: a class with ten times the
    examples (converted text makes three per Taiwan document) otherwise wins every close call."""
    by_label: dict[str, list] = {}
    for r in rows:
        by_label.setdefault(r[0], []).append(r)
    n = min(len(v) for v in by_label.values())
    return [r for lab in sorted(by_label) for r in rng.sample(by_label[lab], n)]


def train(inputs: list[str], out: str | os.PathLike, *, epochs: int = 25, dim: int = 16, lr: float = 0.5,
          word_ngrams: int = 2, minn: int = 0, maxn: int = 0, bucket: int = 100_000, chunk_chars: int = 60,
          max_docs: int | None = None, holdout: float = 0.1, quantize: bool = False, seed: int = 0,
          threads: int = 1, progress: bool = True, hosts: dict | None = None, balance: bool = False,
          holdout_sites: list[str] | None = None, max_chars: int = 2000) -> dict:
    """Train and save a variant model; returns held-out precision/recall per class and per kind.

    Held-out examples come from held-out *documents*: the four conversions of one text never sit on
    both sides of the split. With `holdout_sites`, every document of those sites (as `HostMap.site`
    names them: udn.com, hkcnews.com) is kept out of training instead, and the model is scored on
    them whole, labelled by the host map: one outlet's boilerplate cannot inflate that figure.
    `threads=1` keeps training deterministic for a given seed.
    """
    import fasttext
    from tqdm import tqdm

    host_map = HostMap(hosts)
    held_sites = {s.strip().lower().removeprefix("www.") for s in holdout_sites or () if s.strip()}
    rng = random.Random(seed)
    train_rows, test_rows, site_docs = [], [], []
    docs = 0
    sites_seen: dict[str, int] = {}
    for text, url in tqdm(read_texts(inputs), desc="weak labels", unit="doc", disable=not progress):
        if max_docs is not None and docs >= max_docs:
            break
        docs += 1
        if held_sites:
            site = host_map.site(url) if url else ""
            if site in held_sites:
                sites_seen[site] = sites_seen.get(site, 0) + 1
                region = host_map.region(url)
                if region != "none":
                    site_docs.append((region, site, text))
                continue
        rows = [(lab, kind, tokens(t)) for lab, kind, t in weak_examples(text, url, chunk_chars, host_map)]
        if held_sites:  # the held-out sites are the test: every other document trains
            train_rows.extend(r for r in rows if r[2])
        else:
            (test_rows if rng.random() < holdout else train_rows).extend(r for r in rows if r[2])
    missing = held_sites - set(sites_seen)
    if missing:
        raise UsageError(f"--holdout-sites {' '.join(sorted(missing))}: no input document comes from "
                         "such a site (a site is its host-map entry or last two labels, e.g. udn.com)")
    if not train_rows or not (test_rows or site_docs):
        raise UsageError(f"too little text to train on ({docs} documents): give --input more documents")
    labels_seen = {r[0] for r in train_rows}
    if labels_seen != set(VARIANTS):
        raise UsageError(f"training examples cover {sorted(labels_seen)}, need all of {list(VARIANTS)}")
    counts = {lab: sum(r[0] == lab for r in train_rows) for lab in VARIANTS}
    if balance:
        train_rows = balanced(train_rows, rng)
    rng.shuffle(train_rows)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as fh:
        for lab, _, t in train_rows:
            fh.write(f"__label__{lab} {t}\n")
        train_file = fh.name
    if bucket * dim < 1024:
        raise UsageError(f"--bucket x --dim is {bucket * dim}: give at least 1024 (the model is only "
                         "trained reproducibly when its input matrix is 4 KB or more; docs/variant.md)")
    tmp = out.with_name(out.name + ".tmp")
    params = dict(input=train_file, epoch=epochs, dim=dim, lr=lr, wordNgrams=word_ngrams, minn=minn, maxn=maxn,
                  bucket=bucket, seed=seed, thread=threads, loss="softmax", verbose=0)
    try:
        # The installed fastText build reads memory it never initialised: the same training can
        # differ run to run or diverge to NaN (docs/variant.md). In a child process where glibc
        # serves every allocation over 4 KB from fresh, zeroed pages, a seed gives one model.
        child = subprocess.run([sys.executable, "-c", _FIT, json.dumps([params, str(tmp), quantize])],
                               capture_output=True, text=True, env={**os.environ, **FASTTEXT_ENV})
        error = None if child.returncode == 0 else (child.stderr.strip().splitlines() or ["killed"])[-1]
    finally:
        os.unlink(train_file)
    if error:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"fastText training failed: {error.rstrip('.')}. Try a lower --lr (now {lr})")
    os.replace(tmp, out)  # never leave a half-written model where the build will look for it

    report = {"model": str(out), "bytes": out.stat().st_size, "documents": docs,
              "train_examples": len(train_rows), "examples_per_class_before_balance": counts,
              "heldout_examples": len(test_rows)}
    if test_rows:
        model = fasttext.load_model(str(out))
        pred = model.predict([t for _, _, t in test_rows], k=1)[0]
        pairs = [(lab, p[0].removeprefix("__label__")) for (lab, _, _), p in zip(test_rows, pred)]
        kinds = {}
        for (lab, kind, _), (_, p) in zip(test_rows, pairs):
            k = kinds.setdefault(kind, [0, 0])
            k[0] += p == lab
            k[1] += 1
        report.update(accuracy=round(sum(g == p for g, p in pairs) / len(pairs), 4), per_class=_prf(pairs),
                      per_kind_accuracy={k: round(c / n, 4) for k, (c, n) in sorted(kinds.items())})
    if held_sites:
        # Whole documents, as the scorer sees them (the first max_chars characters), labelled by site.
        vm = VariantModel(out, max_chars=max_chars)
        probs = vm.predict([t for _, _, t in site_docs])
        pairs = [(region, max(VARIANTS, key=lambda v: p[f"p_{v}"])) for (region, _, _), p in zip(site_docs, probs)]
        per_site = {}
        for (region, site, _), (_, pr) in zip(site_docs, pairs):
            acc = per_site.setdefault(site, {"region": region, "documents": 0, "correct": 0})
            acc["documents"] += 1
            acc["correct"] += pr == region
        report.update(heldout_sites={s: {**v, "accuracy": round(v["correct"] / v["documents"], 4)}
                                     for s, v in sorted(per_site.items())},
                      heldout_site_documents=len(site_docs), heldout_site_unlabelled=sum(sites_seen.values()) - len(site_docs),
                      per_class_sites=_prf(pairs) if pairs else {})
    return report
