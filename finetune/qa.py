"""Span QA features and answers: windows with a document stride over the fast tokenizer's offsets,
and the n-best search that maps start/end logits back to a character span of the context.

A feature is `[CLS] question [SEP] window of the context [SEP]`, assembled from token ids so that
every tokenizer (BERT's WordPiece, twbert's byte-level BPE, one with no pair template) is treated
alike. The question is cut to `max_query_length` tokens; a context longer than the space left is read
in windows that start every `doc_stride` tokens (BERT's run_squad.py). With `stride=False` the whole
context is one window, cut at `max_length` (the cut contexts are counted): a long-context encoder
reads the document at once.

Training labels are the answer's first and last token in a window holding the whole answer, and
[CLS] (position 0) in the others. At prediction time each token scores in the window where it has
the most context on both sides (BERT's `_check_is_max_context`), and the best-scoring valid span,
at most `max_answer_length` tokens long, becomes `context[start char : end char]`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twbert.finetune.tasks import QAExample


@dataclass
class Feature:
    example: int                  # index of the QAExample
    input_ids: list[int]
    token_type_ids: list[int]
    context_offset: int           # position of the window's first token in input_ids
    offsets: list[tuple[int, int]]  # character span of each window token in the context
    max_context: list[bool]       # whether the window is each token's best window
    start_position: int = 0       # training label (0: [CLS], the answer is not in this window)
    end_position: int = 0


@dataclass
class Features:
    features: list[Feature]
    counts: dict = field(default_factory=dict)


def token_span(offsets: list[tuple[int, int]], start: int, end: int) -> tuple[int, int] | None:
    """First and last token overlapping the characters [start, end) of the context, or None."""
    first = next((i for i, (s, e) in enumerate(offsets) if e > start and e > s), None)
    last = next((i for i in range(len(offsets) - 1, -1, -1) if offsets[i][0] < end and offsets[i][1] > offsets[i][0]), None)
    if first is None or last is None or last < first:
        return None
    return first, last


def windows(n_tokens: int, room: int, doc_stride: int | None) -> list[tuple[int, int]]:
    """(start, length) of each window over `n_tokens` context tokens: BERT's doc-stride loop."""
    if doc_stride is None:
        return [(0, min(n_tokens, room))]
    spans, start = [], 0
    while True:
        length = min(n_tokens - start, room)
        spans.append((start, length))
        if start + length >= n_tokens:
            return spans
        start += min(length, doc_stride)


def _max_context(spans: list[tuple[int, int]], which: int, pos: int) -> bool:
    best, best_score = None, None
    for i, (start, length) in enumerate(spans):
        end = start + length - 1
        if pos < start or pos > end:
            continue
        score = min(pos - start, end - pos) + 0.01 * length
        if best_score is None or score > best_score:
            best, best_score = i, score
    return best == which


def encode_context(tokenizer, context: str):
    enc = tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)
    return enc["input_ids"], [tuple(o) for o in enc["offset_mapping"]]


def make_features(examples: list[QAExample], tokenizer, max_length: int, doc_stride: int | None = 128,
                  max_query_length: int = 64, train: bool = False, typed: bool = False) -> Features:
    """Features for `examples`; `doc_stride=None` reads each context in one window (cut at max_length).

    `typed`: give token type ids (0 for the question, 1 for the context), for models that take them (BERT).
    """
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    if cls is None or sep is None:
        raise ValueError("the tokenizer needs a CLS and a SEP token for span QA")
    out = Features([], {"questions": len(examples), "windows": 0, "contexts_cut": 0,
                        "train_answers_outside_every_window": 0, "train_answers_not_on_token_boundaries": 0})
    cache: dict[str, tuple] = {}
    for ex_index, ex in enumerate(examples):
        q_ids = tokenizer(ex.question, add_special_tokens=False)["input_ids"][:max_query_length]
        if ex.context not in cache:
            cache = {ex.context: encode_context(tokenizer, ex.context)}  # contexts come in runs of questions
        c_ids, c_offsets = cache[ex.context]
        room = max_length - len(q_ids) - 3
        if room < 1:
            raise ValueError(f"--max-length {max_length} leaves no room for the context after a {len(q_ids)}-token question")
        spans = windows(len(c_ids), room, doc_stride)
        if doc_stride is None and len(c_ids) > room:
            out.counts["contexts_cut"] += 1
        answer = None
        if train and ex.answers:
            text, start = ex.answers[0]
            answer = token_span(c_offsets, start, start + len(text))
            if answer is not None:
                a, b = answer
                if ex.context[c_offsets[a][0]:c_offsets[b][1]] != text:
                    out.counts["train_answers_not_on_token_boundaries"] += 1
        found = False
        for w, (start, length) in enumerate(spans):
            ids = [cls] + q_ids + [sep] + c_ids[start:start + length] + [sep]
            types = [0] * (len(q_ids) + 2) + [1] * (length + 1) if typed else []
            f = Feature(ex_index, ids, types, len(q_ids) + 2, c_offsets[start:start + length],
                        [_max_context(spans, w, start + i) for i in range(length)])
            if answer is not None and start <= answer[0] and answer[1] < start + length:
                f.start_position = f.context_offset + answer[0] - start
                f.end_position = f.context_offset + answer[1] - start
                found = True
            out.features.append(f)
        out.counts["windows"] += len(spans)
        if train and ex.answers and not found:
            out.counts["train_answers_outside_every_window"] += 1
    return out


def best_answers(examples: list[QAExample], features: list[Feature], start_logits, end_logits,
                 n_best: int = 20, max_answer_length: int = 30) -> dict[str, str]:
    """{question id: answer text} from per-feature start/end logits (lists of floats per feature)."""
    by_example: dict[int, list[int]] = {}
    for i, f in enumerate(features):
        by_example.setdefault(f.example, []).append(i)
    answers = {}
    for ex_index, ex in enumerate(examples):
        best, best_score = "", None
        for i in by_example.get(ex_index, []):
            f, s_log, e_log = features[i], start_logits[i], end_logits[i]
            n = len(f.offsets)
            ctx = range(f.context_offset, f.context_offset + n)
            starts = sorted(ctx, key=lambda p: -s_log[p])[:n_best]
            ends = sorted(ctx, key=lambda p: -e_log[p])[:n_best]
            for s in starts:
                if not f.max_context[s - f.context_offset]:
                    continue
                for e in ends:
                    if e < s or e - s + 1 > max_answer_length:
                        continue
                    score = s_log[s] + e_log[e]
                    if best_score is None or score > best_score:
                        a, b = f.offsets[s - f.context_offset][0], f.offsets[e - f.context_offset][1]
                        best, best_score = ex.context[a:b], score
        answers[ex.qid] = best
    return answers


def span_round_trip(examples: list[QAExample], tokenizer, max_length: int = 512, doc_stride: int | None = 128,
                    max_query_length: int = 64) -> dict:
    """Check that every gold answer comes back exactly from its gold token span in some window.

    For each aligned answer (offset >= 0): the tokens overlapping it must lie whole inside a window,
    and the characters from the first token's start to the last token's end must be the answer. An
    answer whose edge falls inside a token (a BPE token spanning the boundary) cannot come back
    exactly; it is listed with the text the tokens do give.
    """
    report = {"answers": 0, "exact": 0, "unaligned_before_tokenisation": 0, "edge_inside_a_token": 0,
              "outside_every_window": 0, "failures": []}
    feats = make_features(examples, tokenizer, max_length, doc_stride, max_query_length)
    by_example: dict[int, list[Feature]] = {}
    for f in feats.features:
        by_example.setdefault(f.example, []).append(f)
    for ex_index, ex in enumerate(examples):
        for text, start in ex.answers:
            report["answers"] += 1
            if start < 0:
                report["unaligned_before_tokenisation"] += 1
                continue
            got = None
            for f in by_example[ex_index]:
                span = token_span(f.offsets, start, start + len(text))
                if span is None:
                    continue
                a, b = span
                if f.offsets[a][0] <= start < f.offsets[a][1] and f.offsets[b][0] < start + len(text) <= f.offsets[b][1]:
                    got = ex.context[f.offsets[a][0]:f.offsets[b][1]]
                    if got == text:
                        break
            if got == text:
                report["exact"] += 1
            elif got is None:
                report["outside_every_window"] += 1
                report["failures"].append({"id": ex.qid, "answer": text, "reason": "no window holds the whole answer"})
            else:
                report["edge_inside_a_token"] += 1
                report["failures"].append({"id": ex.qid, "answer": text, "tokens_give": got,
                                           "reason": "an answer edge falls inside a token"})
    return report
