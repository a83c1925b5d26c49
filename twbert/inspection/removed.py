"""The numbers of inspect's "removed" section: what each build step dropped, read back from OUT/removed/.

With `output.removed: true` (the default) every step that drops documents writes them, as datatrove
JSONL with the reason in `metadata["filter_reason"]`, to `OUT/removed/<stage>/<step>/`. Here they are
counted per step and reason, a few are drawn per reason (seeded: the same run and seed show the same
documents), and each step's counts are checked against what the funnel says it dropped: removed on
disk + kept == read.

A step folder is matched to its funnel row (stats.json) within its stage by name, ignoring case,
punctuation and a leading number (`01_chinese_quality` ~ "Chinese quality"); failing that, by being
the one row of the stage whose drop reasons are the folder's.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path

from twbert.inspection.sampling import Reservoir

NO_REASON = "(no reason)"
EXCERPT_CHARS = 240


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", re.sub(r"^\d+[_-]", "", name.lower()))


def _match(stage_rows: list[dict], folder: str, reasons: set[str]) -> dict | None:
    key = _key(folder)
    by_name = [r for r in stage_rows if key and _key(r["step"]) == key]
    if len(by_name) != 1:
        by_name = [r for r in stage_rows if key and (key in _key(r["step"]) or _key(r["step"]) in key) and _key(r["step"])]
    if len(by_name) == 1:
        return by_name[0]
    by_reason = [r for r in stage_rows if reasons and set(r["dropped"]) == reasons]
    return by_reason[0] if len(by_reason) == 1 else None


def scan_step(folder: Path, per_reason: int, seed: int) -> dict:
    """Counts by reason and a seeded reservoir sample of up to `per_reason` documents per reason."""
    from twbert.pipeline.dedup_index import iter_documents

    rng = random.Random(f"{seed}:{folder.parent.name}/{folder.name}")
    counts: Counter = Counter()
    picked: dict[str, Reservoir] = {}
    for doc in iter_documents(folder):
        reason = (doc.get("metadata") or {}).get("filter_reason") or NO_REASON
        counts[reason] += 1
        picked.setdefault(reason, Reservoir(per_reason, rng)).add(doc)
    samples = []
    for reason in sorted(picked):
        for doc in picked[reason].items():
            m = doc.get("metadata") or {}
            samples.append({"reason": reason, "id": str(doc["id"]), "source": m.get("source"),
                            "title": m.get("title"), "url": m.get("url"), "chars": len(doc["text"]),
                            "excerpt": doc["text"][:EXCERPT_CHARS]})
    return {"documents": sum(counts.values()), "by_reason": dict(sorted(counts.items())), "samples": samples}


def removed_section(run: Path, funnel: dict, per_reason: int, seed: int, checks: list) -> dict:
    root = run / "removed"
    if not root.is_dir():
        return {"present": False,
                "why": f"{root} is absent: the build predates removed/ or ran with output.removed: false"}
    rows = funnel.get("rows", []) if funnel.get("present") else []
    steps, matched = [], set()
    for folder in sorted(p for p in root.glob("*/*") if p.is_dir()):
        stage = folder.parent.name
        scan = scan_step(folder, per_reason, seed)
        row = _match([r for r in rows if r["stage"] == stage], folder.name, set(scan["by_reason"]))
        step = {"stage": stage, "step": folder.name, "folder": str(folder.relative_to(run)), **scan,
                "funnel_step": row["step"] if row else None, "funnel_dropped": row["dropped"] if row else None,
                "read": row["read"] if row else None, "kept": row["kept"] if row else None}
        if row is not None:
            matched.add((row["stage"], row["step"]))
            on_disk = {NO_REASON if k == "UNEXPLAINED" else k: v for k, v in row["dropped"].items() if v}
            step["reconciles"] = on_disk == scan["by_reason"] and row["kept"] + scan["documents"] == row["read"]
        else:
            step["reconciles"] = False
        steps.append(step)
    # in the funnel's order (the order documents flow through the steps); unmatched folders last
    order = {(r["stage"], r["step"]): i for i, r in enumerate(rows)}
    steps.sort(key=lambda s: (order.get((s["stage"], s["funnel_step"]), len(order)), s["folder"]))
    not_saved = [f"{r['stage']}/{r['step']}" for r in rows
                 if r["dropped_total"] and not r["sink"] and (r["stage"], r["step"]) not in matched]
    if rows:
        bad = [s["folder"] + ("" if s["funnel_step"] else " (no funnel step of that name)") for s in steps if not s["reconciles"]]
        detail = f"{len(steps)} step folders, {sum(s['documents'] for s in steps):,} documents"
        if bad:
            detail += "; off at " + ", ".join(bad)
        if not_saved:
            detail += "; steps that dropped documents without saving them: " + ", ".join(not_saved)
        checks.append({"name": "removed: documents saved in removed/ + kept == read, per step and reason",
                       "ok": not bad, "detail": detail})
    return {"present": True, "steps": steps, "not_saved": not_saved,
            "documents": sum(s["documents"] for s in steps)}
