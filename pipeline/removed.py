"""Where build steps keep the documents they drop: the audit trail of `twbert build`.

Layout (stable; `twbert inspect` reads it):

    OUT/removed/<stage>/<step>/${rank}.jsonl.gz

- `<stage>` is the datatrove stage that ran the step (`ingest`, `dedup_filter`, `dedup_paragraphs`),
  as in `OUT/stats.json`'s funnel rows.
- `<step>` is `step_folder(label)` of the funnel row's step label: lower case, every run of other
  characters than a-z and 0-9 as one `_` (`zhwiki dump` -> `zhwiki_dump`, `wikitext → text` ->
  `wikitext_text`, `Chinese quality (FineWeb2 cmn_Hani)` -> `chinese_quality_fineweb2_cmn_hani`).
- Each file is gzip JSONL written by datatrove's `JsonlWriter`, one file per task: one document a
  line, `{"text", "id", "metadata"}`, with `metadata["filter_reason"]` the reason the funnel counts it
  under (`dropped_<reason>`). The text is the document as the step received it, before the change
  that made it go (a page emptied by cleaning keeps its wikitext).

For every step, the documents under its folder equal its `dropped` count, reason by reason, except
drops with no document to keep (bytes of a truncated dump: `truncated`, `corrupt_stream`).
`output.removed: false` writes nothing and no `removed/` folder.
"""

from __future__ import annotations

import re
from pathlib import Path

# Drop reasons counted without a document: what was lost never became one.
UNSAVABLE = frozenset({"truncated", "corrupt_stream"})

_OTHER = re.compile(r"[^a-z0-9]+")


def step_folder(step: str) -> str:
    """The folder name of a step: `step_folder` of a datatrove step name, a funnel label or a folder name."""
    # "📖 - READER: 📚 zhwiki dump": datatrove's full names carry the step type before ": ".
    return _OTHER.sub("_", step.split(": ", 1)[-1].lower()).strip("_")


def enabled(cfg: dict) -> bool:
    return bool(cfg.get("out")) and bool((cfg.get("output") or {}).get("removed", True))


def root(cfg: dict) -> Path:
    return Path(cfg["out"]) / "removed"


def exclusion_writer(cfg: dict, stage: str, step: str):
    """A JsonlWriter into OUT/removed/<stage>/<step_folder(step)>/, or None with `output.removed: false`.

    None too when the config has no `out` (a stage run on its own, as tests do).
    """
    if not enabled(cfg):
        return None
    from datatrove.pipeline.writers import JsonlWriter

    return JsonlWriter(str(root(cfg) / stage / step_folder(step)), output_filename="${rank}.jsonl",
                       compression="gzip")
