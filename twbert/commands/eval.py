"""`twbert eval`: pseudo-perplexity of a masked LM (a twbert export, run or checkpoint, or any HF masked LM),
and the CMRC 2018 scorer for span answers."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate: a masked LM's pseudo-perplexity (pppl), or span answers with the CMRC 2018 scorer (qa)",
        description="Evaluate a masked language model on held-out text (pppl), or score span-QA predictions "
        "as the official CMRC 2018 script does (qa).",
    )
    tasks = p.add_subparsers(dest="task", metavar="TASK", required=True)
    q = tasks.add_parser(
        "pppl",
        help="pseudo-perplexity and MLM accuracy (Salazar et al. 2020)",
        description="Mask every token of every text in turn and score the original token: prints one JSON "
        "object with pppl (exp of the mean negative pseudo-log-likelihood per token), mlm_accuracy (share "
        "of masked tokens ranked first), tokens (tokens scored) and counts of the lines read. Works for a "
        "twbert export, a twbert run or checkpoint (exported on the fly) and any Hugging Face masked LM "
        "directory, so baselines are scored the same way. Cost grows with the square of text length.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    q.add_argument("model", metavar="MODEL_DIR",
                   help="Hugging Face masked LM directory (e.g. from `twbert export`), or a twbert run / "
                   "checkpoint directory")
    q.add_argument("texts", metavar="TEXTS.txt", help="UTF-8 text file, one text per line; blank lines are skipped")
    q.add_argument("--batch-size", type=int, default=32,
                   help="masked copies per forward pass; lower it if memory runs out")
    q.add_argument("--max-length", type=int, default=512,
                   help="tokens per text, special tokens included; longer texts are truncated (and counted)")
    q.add_argument("--limit", type=int, default=None, help="evaluate only the first N non-blank lines")
    q.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, or auto (cuda when available)")
    q.add_argument("--no-progress", action="store_true", help="do not show the progress bar (on stderr)")
    q.set_defaults(func=run)

    a = tasks.add_parser(
        "qa",
        help="EM and F1 of span answers, as the official CMRC 2018 scorer computes them",
        description="Score predicted answers against a SQuAD-style gold file with the CMRC 2018 official "
        "algorithm (mixed segmentation: one unit per Chinese character, NLTK words for other runs, listed "
        "punctuation removed; F1 over the longest common run; EM after removing punctuation). Prints one JSON "
        'object: em and f1 (percentages over every gold question), total (questions) and skip (questions '
        "without a prediction, scored 0). docs/finetune.md shows the equivalence checks.",
    )
    a.add_argument("gold", metavar="GOLD.json", help="SQuAD-style JSON: data / paragraphs / qas with id and answers")
    a.add_argument("pred", metavar="PRED.json", help='JSON object {"question id": "answer text"}, as '
                   "`twbert finetune` writes under OUT/predictions/")
    a.set_defaults(func=run_qa)


def run(args: argparse.Namespace) -> int:
    import json

    from twbert.errors import UsageError
    from twbert.training.evaluate import EvalError, evaluate

    for name in ("batch_size", "max_length", "limit"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    try:
        result = evaluate(args.model, args.texts, batch_size=args.batch_size, max_length=args.max_length,
                          device=args.device, limit=args.limit, progress=not args.no_progress)
    except EvalError as e:
        raise UsageError(str(e)) from None
    print(json.dumps(result, ensure_ascii=False))
    return 0


def run_qa(args: argparse.Namespace) -> int:
    import json

    from twbert.finetune.scoring import score_qa_files

    print(json.dumps(score_qa_files(args.gold, args.pred)))
    return 0
