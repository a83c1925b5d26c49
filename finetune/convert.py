"""OpenCC conversion of task text, and re-alignment of answer spans to the converted context.

The paper converted every fine-tuning set to Traditional (Taiwan) with OpenCC's `s2twp` before
training and scoring. Phrase conversion can change a text's length (U盘 -> 隨身碟), so a gold
answer's character offset in the original context says little about where it is in the converted
one. `realign` converts the answer on its own and looks for it in the converted context nearest to
where the converted prefix ends; an answer that cannot be found (its conversion differs alone and in
context, e.g. a phrase cut by the answer boundary) is reported with the reason, never dropped
silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from twbert.errors import UsageError


@lru_cache(maxsize=8)
def converter(config: str | None) -> Callable[[str], str]:
    """A str -> str function for a converter setting; `none` is identity.

    The settings are the build's (`twbert.pipeline.convert`: mediawiki, mediawiki+phrases, s2tw,
    s2twp or any OpenCC config), so an evaluation set can be converted exactly as the corpus was.
    The paper's protocol, and finetune's default, is OpenCC `s2twp`.
    """
    if config is None or str(config).lower() == "none":
        return lambda text: text
    from twbert.pipeline.convert import SETTINGS, Converter

    name = str(config)
    try:
        return Converter(name).convert
    except UsageError as e:
        raise UsageError(f"--opencc {config}: {e}; try one of {', '.join(SETTINGS)} or none") from None


@dataclass
class Alignment:
    text: str          # the converted answer
    start: int | None  # its character offset in the converted context; None when not found
    reason: str = ""   # why it could not be aligned


def realign(context: str, converted_context: str, answer: str, answer_start: int,
            convert: Callable[[str], str]) -> Alignment:
    """Where the gold answer `context[answer_start:answer_start+len(answer)]` lies in `converted_context`."""
    if context[answer_start:answer_start + len(answer)] != answer:
        return Alignment(convert(answer), None, "answer_start does not point at the answer text in the original context")
    text = convert(answer)
    if not text:
        return Alignment(text, None, "the answer is empty")
    expected = len(convert(context[:answer_start]))
    if converted_context.startswith(text, expected):
        return Alignment(text, expected)
    hits, i = [], converted_context.find(text)
    while i != -1:
        hits.append(i)
        i = converted_context.find(text, i + 1)
    if hits:
        return Alignment(text, min(hits, key=lambda h: (abs(h - expected), h)))
    in_context = converted_context[expected:expected + len(text)]
    return Alignment(text, None, f"converted alone the answer reads {text!r}, in its context {in_context!r}")


def convert_qa(examples: list, convert: Callable[[str], str]) -> tuple[list, list[dict]]:
    """QAExamples with question, context and answers converted and answers re-aligned.

    Returns (examples, unaligned): an answer that cannot be re-aligned keeps its converted text with
    offset -1 (the question is still asked and scored against it; training skips it), and is listed
    in `unaligned` with the reason.
    """
    from twbert.finetune.tasks import QAExample

    out, unaligned, cache = [], [], {}
    for ex in examples:
        if ex.context not in cache:
            cache = {ex.context: convert(ex.context)}
        context = cache[ex.context]
        answers = []
        for text, start in ex.answers:
            al = realign(ex.context, context, text, start, convert)
            answers.append((al.text, -1 if al.start is None else al.start))
            if al.start is None:
                unaligned.append({"id": ex.qid, "answer": text, "answer_start": start, "reason": al.reason})
        out.append(QAExample(ex.qid, convert(ex.question), context, answers))
    return out, unaligned


def convert_classification(examples: list, convert: Callable[[str], str]) -> list:
    from twbert.finetune.tasks import ClsExample

    return [ClsExample(convert(ex.text_a), None if ex.text_b is None else convert(ex.text_b), ex.label, ex.where)
            for ex in examples]
