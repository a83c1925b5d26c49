"""`twbert variant`: train the tw/cn/hk classifier, and score JSON lines with the build's policy."""

from __future__ import annotations

import argparse

from twbert.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "variant",
        help="train the Taiwan/Mainland/HK variant classifier, or score documents with it",
        description="Taiwan-variant prioritisation outside a build: `train` makes the fastText classifier "
        "that variant.model points at; `score` runs the build's variant scorer and tier policy on JSON "
        "lines. See docs/variant.md.",
    )
    vsub = p.add_subparsers(dest="variant_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    fmt = argparse.ArgumentDefaultsHelpFormatter
    t = vsub.add_parser(
        "train", formatter_class=fmt,
        help="train a fastText tw/cn/hk classifier on weak labels made from your corpus",
        description="Train the variant classifier. Each input text is converted with OpenCC into Taiwan "
        "(s2twp, label tw), Mainland Simplified (tw2sp, cn), Mainland wording in Traditional characters "
        "(tw2sp then s2tw, cn) and HK (s2hk, hk) forms; documents whose `url` host is in the host map "
        "(.tw/.cn/.hk/.mo and major sites on generic TLDs such as udn.com, hk01.com, sina.com.cn; the "
        "config's variant.hosts adds more) are also used as labelled by it (Mainland and HK pages only "
        "that way: a converted Cantonese page is not Taiwan text). A held-out tenth of the documents, or "
        "with --holdout-sites every document of those sites, gives the precision/recall printed at the end. "
        "Training is single-threaded in a fresh process, so a seed gives the same model.",
    )
    t.add_argument("--input", nargs="+", required=True, metavar="PATH",
                   help="text to learn from: FineWeb2 parquet (its .tw/.cn/.hk URLs are real labels), a "
                   "build's DIR/documents (datatrove .jsonl.gz; converted documents count without their URL), "
                   "JSON lines with `text` (and optional `url`), or .txt files (one text per line); "
                   "directories are searched")
    t.add_argument("--out", required=True, metavar="MODEL.bin", help="where to write the model")
    t.add_argument("--epochs", type=int, default=25, help="passes over the examples")
    t.add_argument("--dim", type=int, default=16, help="embedding size; model bytes grow with dim x bucket")
    t.add_argument("--lr", type=float, default=0.5, help="learning rate")
    t.add_argument("--word-ngrams", type=int, default=2,
                   help="n-grams of characters used as features (the text is fed one character per token)")
    t.add_argument("--minn", type=int, default=0, help="fastText subword minimum length (0: no subwords)")
    t.add_argument("--maxn", type=int, default=0, help="fastText subword maximum length (0: no subwords)")
    t.add_argument("--bucket", type=int, default=100_000, help="hash buckets for n-gram features")
    t.add_argument("--chunk-chars", type=int, default=60,
                   help="documents are cut into paragraph-aligned examples of about this many characters: "
                   "short examples keep the few variant-bearing words a large share of each one")
    t.add_argument("--max-docs", type=int, default=None, help="stop after this many input documents")
    t.add_argument("--holdout", type=float, default=0.1, help="fraction of documents held out for evaluation")
    t.add_argument("--balance", action="store_true",
                   help="downsample the training examples so each class has as many as the rarest")
    t.add_argument("--holdout-sites", nargs="+", default=None, metavar="SITE",
                   help="keep every document of these sites (udn.com, hkcnews.com: a host-map entry, or a "
                   "host's last two labels, three under .com.tw-style suffixes) out of training and report "
                   "per-class precision/recall on them, whole documents labelled by the host map; replaces "
                   "--holdout")
    t.add_argument("--config", metavar="CONFIG.yaml", default=None,
                   help="build config whose variant.hosts (host map additions) and variant.max_chars to use")
    t.add_argument("--quantize", action="store_true", help="quantize the model (smaller file, slightly less accurate)")
    t.add_argument("--seed", type=int, default=0, help="random seed (split, shuffle, fastText)")
    t.set_defaults(func=run_train)

    s = vsub.add_parser(
        "score", formatter_class=fmt,
        help="add variant, tier and the variant scores to JSON lines",
        description="Read JSON lines with `text` and an optional `url` (a datatrove document's "
        "metadata.url counts too); write each line back with `variant` (tw|cn|hk), `tier` "
        "(tw|tw_converted|other|drop), `weight`, the scores (han_ratio, trad_ratio, script_chars, mainland_terms, "
        "hk_markers, conv_forms, cn_quotes, domain_hint, and p_tw/p_cn/p_hk with a model) and `mainland_hits`. The text itself is "
        "left as it is. Without --model the config's variant.model is used; its default, null, is the "
        "rule-only scorer described in docs/variant.md.",
    )
    s.add_argument("input", metavar="IN.jsonl", help="JSON lines to score ('-' for stdin)")
    s.add_argument("output", metavar="OUT.jsonl", help="where to write them ('-' for stdout)")
    s.add_argument("--model", metavar="FILE", default=None,
                   help="fastText model from `twbert variant train` (default: variant.model of the config)")
    s.add_argument("--config", metavar="CONFIG.yaml", default=None,
                   help="build config whose variant: section (terms, policy, model) to use")
    s.add_argument("--rules-only", action="store_true", help="ignore any configured model: rules only")
    s.set_defaults(func=run_score)


def run_train(args: argparse.Namespace) -> int:
    from twbert import config
    from twbert.pipeline.variant_model import train

    vcfg = config.load("build", args.config)["variant"]
    report = train(args.input, args.out, epochs=args.epochs, dim=args.dim, lr=args.lr,
                   word_ngrams=args.word_ngrams, minn=args.minn, maxn=args.maxn, bucket=args.bucket,
                   chunk_chars=args.chunk_chars, max_docs=args.max_docs, holdout=args.holdout,
                   quantize=args.quantize, seed=args.seed, hosts=vcfg.get("hosts") or {}, balance=args.balance,
                   holdout_sites=args.holdout_sites, max_chars=vcfg.get("max_chars", 2000))
    print(f"wrote {report['model']} ({report['bytes'] / 1e6:.1f} MB) from {report['documents']} documents: "
          f"{report['train_examples']} training examples "
          f"({', '.join(f'{k} {v}' for k, v in report['examples_per_class_before_balance'].items())}"
          f"{' before balancing' if args.balance else ''})")

    def table(title, per_class):
        print(title)
        print(f"{'class':<6} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}")
        for c, m in per_class.items():
            print(f"{c:<6} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>6.3f} {m['support']:>8}")

    if "per_class" in report:
        table(f"held-out documents' weak-label examples ({report['heldout_examples']}):", report["per_class"])
        print(f"accuracy {report['accuracy']:.3f}; by how the example was made: "
              + ", ".join(f"{k} {v:.3f}" for k, v in report["per_kind_accuracy"].items()))
    if "per_class_sites" in report:
        table(f"held-out sites, whole documents labelled by the host map ({report['heldout_site_documents']}; "
              f"{report['heldout_site_unlabelled']} without a region skipped):", report["per_class_sites"])
        for site, m in report["heldout_sites"].items():
            print(f"  {site:<30} {m['region']:<3} {m['accuracy']:.3f} of {m['documents']}")
    return 0


def run_score(args: argparse.Namespace) -> int:
    import json
    import sys

    from twbert import config
    from twbert.pipeline.policy import VariantPolicy
    from twbert.pipeline.variant import VariantFeatures
    from twbert.pipeline.variant_model import VariantModel

    vcfg = config.load("build", args.config)["variant"]
    model_path = None if args.rules_only else (args.model or vcfg.get("model"))
    terms = vcfg.get("terms") or {}
    features = VariantFeatures(terms.get("mainland_extra") or (), terms.get("mainland_ignore") or (),
                               terms.get("hk_extra") or (), hosts=vcfg.get("hosts") or {})
    model = VariantModel(model_path, max_chars=vcfg.get("max_chars", 2000)) if model_path else None
    policy = VariantPolicy(vcfg.get("policy") or {})  # validates the rules

    src = sys.stdin if args.input == "-" else _open(args.input, "r")
    dst = sys.stdout if args.output == "-" else _open(args.output, "w")
    n = 0
    try:
        batch: list[tuple[int, dict]] = []
        for lineno, line in enumerate(src, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise UsageError(f"{args.input}:{lineno}: not a JSON line ({e.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise UsageError(f"{args.input}:{lineno}: each line needs a string `text` field")
            batch.append((lineno, row))
            if len(batch) >= 256:
                n += _score(batch, features, model, policy, dst)
                batch = []
        n += _score(batch, features, model, policy, dst)
    finally:
        if src is not sys.stdin:
            src.close()
        if dst is not sys.stdout:
            dst.close()
    print(f"scored {n} lines ({'model ' + str(model_path) if model else 'rules only'})", file=sys.stderr)
    return 0


def _open(path: str, mode: str):
    try:
        return open(path, mode, encoding="utf-8")
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror}") from None


def _score(batch, features, model, policy, dst) -> int:
    import json

    from twbert.pipeline.policy import decide

    if not batch:
        return 0
    probs = model.predict([row["text"] for _, row in batch]) if model else [None] * len(batch)
    for (_, row), p in zip(batch, probs):
        url = row.get("url") or (row.get("metadata") or {}).get("url")
        scores = features(row["text"], url)
        if p:
            scores.update(p)
        variant, tier, why = decide(scores, policy.rules)
        row.update(scores)
        row.update(variant=variant, tier=tier, weight=policy.weights.get(tier, 0.0), decided_by=why,
                   mainland_hits=features.mainland_hits(row["text"]))
        dst.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(batch)
