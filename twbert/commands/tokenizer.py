"""`twbert tokenizer`: prepare a Hugging Face tokenizer with BERT specials, or train a byte-level BPE."""

from __future__ import annotations

import argparse

from twbert.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tokenizer",
        help="prepare a tokenizer with [PAD] [UNK] [CLS] [SEP] [MASK], or train a byte-level BPE",
        description="Make the tokenizer directory that `twbert build --tokenizer DIR` shards with and the "
        "trainer reads: tokenizer.json, tokenizer_config.json and special_tokens_map.json (loadable by "
        "tokenizers and transformers.AutoTokenizer), and twbert_tokenizer.json (special ids, vocabulary "
        "size padded to a multiple of 64). See docs/shards.md.",
    )
    tsub = p.add_subparsers(dest="tokenizer_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    fmt = argparse.ArgumentDefaultsHelpFormatter

    pr = tsub.add_parser(
        "prepare", formatter_class=fmt,
        help="add the BERT specials and the [CLS] ... [SEP] template to an existing tokenizer",
        description="Load a tokenizer, add [PAD] [UNK] [CLS] [SEP] [MASK] as special tokens with their roles "
        "(pad_token is [PAD]), wrap every sequence as [CLS] ... [SEP], and save it. The paper's vocabulary, "
        "offline: `--base tiktoken:qwen.tiktoken` (the Qwen BPE ranks shipped in the PyPI wheel "
        "dashscope==2.0.2, converted with Qwen2's pre-tokenizer).",
    )
    pr.add_argument("--base", required=True, metavar="PATH_OR_HUB_ID",
                    help="a tokenizer.json file, a directory holding one (or any tokenizer transformers loads), "
                    "tiktoken:PATH for a tiktoken ranks file, or a Hugging Face hub id (needs the network)")
    pr.add_argument("--out", required=True, metavar="DIR", help="directory to write the prepared tokenizer to")
    pr.add_argument("--max-len", type=int, default=8192,
                    help="model_max_length recorded in tokenizer_config.json (the long phase's length)")
    pr.set_defaults(func=run_prepare)

    tr = tsub.add_parser(
        "train", formatter_class=fmt,
        help="train a byte-level BPE (Qwen2-style pre-tokenisation) on a corpus sample, then prepare it",
        description="Train a byte-level BPE on documents, with Qwen2's pre-tokenizer split (letters runs, "
        "single digits, punctuation runs) and NFC normalisation, then add the BERT specials as `prepare` "
        "does. Files are read in name order, one text from each file in turn, until --max-chars or "
        "--max-docs: a capped sample spreads over all files. The same inputs give the same tokenizer.",
    )
    tr.add_argument("--input", nargs="+", required=True, metavar="PATH",
                    help="a build's DIR/documents (datatrove .jsonl.gz), JSON lines with `text`, or .txt files "
                    "(one text per line); directories are searched recursively")
    tr.add_argument("--vocab-size", type=int, required=True, metavar="N",
                    help="vocabulary size including the 256 byte tokens and the 5 specials")
    tr.add_argument("--out", required=True, metavar="DIR", help="directory to write the tokenizer to")
    tr.add_argument("--max-chars", type=int, default=200_000_000,
                    help="stop reading after this many characters (0: no limit); bounds memory and time")
    tr.add_argument("--max-docs", type=int, default=0, help="stop reading after this many texts (0: no limit)")
    tr.add_argument("--min-frequency", type=int, default=2, help="a merge must occur at least this often")
    tr.set_defaults(func=run_train)


def _report(out: str, info: dict) -> None:
    print(f"wrote {out}: vocab {info['vocab_size']} (padded to {info['padded_vocab_size']}), "
          f"[PAD]={info['pad_token_id']} [UNK]={info['unk_token_id']} [CLS]={info['cls_token_id']} "
          f"[SEP]={info['sep_token_id']} [MASK]={info['mask_token_id']}")


def run_prepare(args: argparse.Namespace) -> int:
    from twbert.shards import tokenizer

    try:
        info = tokenizer.prepare(args.base, args.out, model_max_length=args.max_len)
    except (OSError, ValueError) as e:
        raise UsageError(str(e)) from None
    _report(args.out, info)
    return 0


def run_train(args: argparse.Namespace) -> int:
    from twbert.shards import tokenizer

    try:
        info = tokenizer.train(
            args.input, args.vocab_size, args.out,
            max_chars=args.max_chars or None, max_docs=args.max_docs or None, min_frequency=args.min_frequency,
        )
    except (OSError, ValueError) as e:
        raise UsageError(str(e)) from None
    _report(args.out, info)
    return 0
