"""Tokenizer preparation (BERT specials on any Hugging Face tokenizer) and byte-level BPE training.

`prepare(base, out_dir)` loads a tokenizer, adds `[PAD] [UNK] [CLS] [SEP] [MASK]` as special tokens
with their roles, makes it wrap every sequence as `[CLS] … [SEP]`, and saves a directory that both
`tokenizers.Tokenizer.from_file(DIR/tokenizer.json)` and `transformers.AutoTokenizer.from_pretrained(DIR)`
load, plus `twbert_tokenizer.json`: the facts the shards stage and the trainer need (special ids, the
vocabulary size padded to a multiple of 64 for the embedding matrix).

`base` is a `tokenizer.json` file, a directory holding one (or any tokenizer transformers can load),
`tiktoken:PATH` (a tiktoken ranks file, e.g. Qwen's `qwen.tiktoken`, converted with transformers'
`TikTokenConverter` and Qwen2's pre-tokenizer), or a hub id (needs the network).

`train(inputs, vocab_size, out_dir)` trains a byte-level BPE with the same Qwen2-style
pre-tokenisation on a corpus sample, then prepares it the same way.
"""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

SPECIALS = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}
PAD_MULTIPLE = 64
MAX_LEN = 8192
INFO_FILE = "twbert_tokenizer.json"
# Qwen2's pre-tokenizer split (its tokenizer.json): like GPT-4's, but digits one at a time.
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def read_ranks(path: str | Path) -> dict[bytes, int]:
    """A tiktoken ranks file (`base64token rank` per line) as {token bytes: rank}."""
    ranks = {}
    with open(path, "rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                token, rank = line.split()
                ranks[base64.b64decode(token, validate=True)] = int(rank)
            except ValueError:
                raise ValueError(f"{path}:{n}: not a tiktoken ranks line (base64 token, rank)") from None
    if not ranks:
        raise ValueError(f"{path}: empty tiktoken ranks file")
    return ranks


def _tiktoken_converter():
    from transformers.convert_slow_tokenizer import TikTokenConverter, bytes_to_unicode

    class RanksFileConverter(TikTokenConverter):
        """TikTokenConverter that reads the ranks file itself: the `tiktoken` package is not needed.

        Same vocabulary and merge order as the parent's `extract_vocab_merges_from_model`.
        """

        def extract_vocab_merges_from_model(self, path):
            ranks = read_ranks(path)
            enc = bytes_to_unicode()

            def as_str(b: bytes) -> str:
                return "".join(enc[c] for c in b)

            merges = []
            for token, rank in ranks.items():
                if len(token) == 1:
                    continue
                local = [
                    (token[:i], token[i:], rank)
                    for i in range(1, len(token))
                    if token[:i] in ranks and token[i:] in ranks
                ]
                local.sort(key=lambda m: (ranks[m[0]], ranks[m[1]]))
                merges.extend(local)
            merges.sort(key=lambda m: m[2])
            return {as_str(t): r for t, r in ranks.items()}, [(as_str(a), as_str(b)) for a, b, _ in merges]

    return RanksFileConverter


def load(base: str | Path):
    """A `tokenizers.Tokenizer` from a tokenizer.json, a directory, `tiktoken:PATH` or a hub id."""
    from tokenizers import Tokenizer, normalizers

    spec = str(base)
    if spec.startswith("tiktoken:"):
        path = Path(spec[len("tiktoken:") :])
        if not path.is_file():
            raise FileNotFoundError(f"tiktoken ranks file not found: {path}")
        tok = _tiktoken_converter()(vocab_file=str(path), pattern=QWEN2_PATTERN, additional_special_tokens=[]).converted()
        tok.normalizer = normalizers.NFC()  # as Qwen2's tokenizer.json
        return tok
    path = Path(spec)
    if path.is_file():
        try:
            return Tokenizer.from_file(str(path))
        except Exception as e:
            raise ValueError(f"{path}: not a tokenizers tokenizer.json ({e})") from None
    if path.is_dir() and (path / "tokenizer.json").is_file():
        return Tokenizer.from_file(str(path / "tokenizer.json"))
    if not path.exists() and (path.is_absolute() or spec.startswith((".", "~")) or path.suffix == ".json"):
        raise FileNotFoundError(f"tokenizer not found: {path}")  # a path, not a hub id: do not go online
    from transformers import AutoTokenizer

    try:
        hf = AutoTokenizer.from_pretrained(spec)
    except Exception as e:
        raise ValueError(
            f"cannot load tokenizer {spec!r}: not a tokenizer.json, a directory with one, tiktoken:PATH, "
            f"or a reachable hub id ({type(e).__name__}: {e})"
        ) from None
    if not getattr(hf, "is_fast", False):
        raise ValueError(f"{spec}: only fast (tokenizers-backed) tokenizers are supported")
    return hf.backend_tokenizer


def prepare(base, out_dir: str | Path, source: str | None = None, model_max_length: int = MAX_LEN) -> dict:
    """Add the BERT specials and the `[CLS] … [SEP]` template to `base` (a spec or a Tokenizer); save to `out_dir`.

    Returns the facts written to `twbert_tokenizer.json`.
    """
    from tokenizers import AddedToken, Tokenizer, processors
    from transformers import PreTrainedTokenizerFast

    tok = base if isinstance(base, Tokenizer) else load(base)
    source = source or (None if isinstance(base, Tokenizer) else str(base))
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS.values()])
    ids = {role: tok.token_to_id(t) for role, t in SPECIALS.items()}
    template = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["cls"]), ("[SEP]", ids["sep"])],
    )
    # Byte-level tokenizers keep their offset handling; anything else (e.g. BertProcessing) is replaced.
    old = json.loads(tok.to_str()).get("post_processor") or {}
    if old.get("type") == "ByteLevel":
        tok.post_processor = processors.Sequence([processors.ByteLevel(trim_offsets=False), template])
    else:
        tok.post_processor = template
    tok.no_padding()
    tok.no_truncation()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        **{f"{role}_token": t for role, t in SPECIALS.items()},
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )
    hf.save_pretrained(str(out))
    vocab = tok.get_vocab_size(with_added_tokens=True)
    info = {
        "format": 1,
        "source": source,
        "vocab_size": vocab,
        "padded_vocab_size": -(-vocab // PAD_MULTIPLE) * PAD_MULTIPLE,
        "pad_multiple": PAD_MULTIPLE,
        "special_tokens": dict(SPECIALS),
        **{f"{role}_token_id": i for role, i in ids.items()},
        "model_max_length": model_max_length,
    }
    (out / INFO_FILE).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return info


def load_prepared(path: str | Path):
    """(Tokenizer, facts) from a directory written by `prepare`."""
    from tokenizers import Tokenizer

    path = Path(path)
    if not (path / INFO_FILE).is_file():
        raise FileNotFoundError(f"{path}: no {INFO_FILE}; make one with `twbert tokenizer prepare --base ... --out {path}`")
    info = json.loads((path / INFO_FILE).read_text(encoding="utf-8"))
    return Tokenizer.from_file(str(path / "tokenizer.json")), info


def content_encoder(tok):
    """`text -> tok.encode(text, add_special_tokens=False)`, faster for a tokenizer whose normalizer is NFC.

    A text already in NFC (nearly every document; `unicodedata.is_normalized` checks it in microseconds)
    goes to a copy without the normalizer: NFC changes nothing in it, so the ids and offsets are the
    same, and the encode costs about 10% less CPU (the normalizer tracks every character's alignment).
    """
    import unicodedata

    from tokenizers import Tokenizer

    spec = json.loads(tok.to_str())
    if (spec.get("normalizer") or {}).get("type") != "NFC":
        return lambda text: tok.encode(text, add_special_tokens=False)
    bare = Tokenizer.from_str(json.dumps(spec))
    bare.normalizer = None

    def encode(text: str):
        return (bare if unicodedata.is_normalized("NFC", text) else tok).encode(text, add_special_tokens=False)

    return encode


def _files(inputs) -> list[Path]:
    files = []
    for spec in inputs:
        p = Path(spec)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and _kind(q))
            if not found:
                raise FileNotFoundError(f"{p}: no .jsonl, .jsonl.gz or .txt files under it")
            files += found
        elif p.is_file():
            if not _kind(p):
                raise ValueError(f"{p}: training input must be .jsonl, .jsonl.gz, .txt or .txt.gz")
            files.append(p)
        else:
            raise FileNotFoundError(f"training input not found: {p}")
    return files


def _kind(p: Path) -> str | None:
    name = p.name.removesuffix(".gz")
    return "jsonl" if name.endswith((".jsonl", ".json")) else "txt" if name.endswith(".txt") else None


def _texts(path: Path):
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            if _kind(path) == "txt":
                yield line
                continue
            try:
                text = json.loads(line)["text"]
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{path}:{n}: not a JSON line with a \"text\" field") from None
            yield text


def sample_texts(inputs, max_chars: int | None = None, max_docs: int | None = None):
    """Texts from the inputs, one from each file in turn (a spread sample when capped), in a fixed order."""
    iters = [_texts(f) for f in _files(inputs)]
    chars = docs = 0
    while iters:
        alive = []
        for it in iters:
            text = next(it, None)
            if text is None:
                continue
            alive.append(it)
            yield text
            chars += len(text)
            docs += 1
            if (max_chars and chars >= max_chars) or (max_docs and docs >= max_docs):
                return
        iters = alive


def train(
    inputs,
    vocab_size: int,
    out_dir: str | Path,
    max_chars: int | None = 200_000_000,
    max_docs: int | None = None,
    min_frequency: int = 2,
    show_progress: bool = True,
) -> dict:
    """Train a byte-level BPE (Qwen2 pre-tokenisation) of `vocab_size` tokens, specials included, and prepare it."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    if vocab_size < 256 + 2 * len(SPECIALS):
        raise ValueError(f"vocab size {vocab_size} is too small: a byte-level BPE needs at least {256 + 2 * len(SPECIALS)}")
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIALS),
        min_frequency=min_frequency,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=show_progress,
    )
    seen = [0]

    def counted():  # streamed, not held in memory: the sample can be large
        for text in sample_texts(inputs, max_chars=max_chars, max_docs=max_docs):
            seen[0] += 1
            yield text

    tok.train_from_iterator(counted(), trainer=trainer)
    if not seen[0]:
        raise ValueError(f"no text found in {', '.join(map(str, inputs))}")
    info = prepare(tok, out_dir, source=f"bpe trained on {seen[0]} texts from {', '.join(map(str, inputs))}")
    return info
