"""The one funnel (`twbert.pipeline.funnel`), on per-task stats written by real datatrove runs."""

from __future__ import annotations

import json

import pytest
from _removed_run import make_run

from twbert.pipeline import funnel


@pytest.mark.parametrize("tasks", [1, 2])
def test_funnel_sums_tasks_and_accounts_for_every_document(tmp_path, tasks):
    want = make_run(tmp_path, n=60, tasks=tasks, length_reason=None)
    stats = json.loads((tmp_path / "stats.json").read_text(encoding="utf-8"))
    rows = {r["step"]: r for r in stats["funnel"]}
    q, length = rows["toy quality"], rows["toy length"]
    assert (q["read"], q["kept"], q["dropped"]) == (want["read"], want["read"] - want["too_short"] - want["has_digit"],
                                                   {"has_digit": want["has_digit"], "too_short": want["too_short"]})
    assert want["too_short"] and want["has_digit"] and want["long"]
    # a drop without a reason is never hidden: it shows as UNEXPLAINED and does not reconcile
    assert length["dropped"] == {"UNEXPLAINED": want["long"]} and length["kept"] == want["kept"]
    assert funnel.reconciles(q) and not funnel.reconciles(length)
    # inspect's funnel is the same function over stats.json's per-step totals
    assert funnel.from_stats(stats) == stats["funnel"]
    assert funnel.from_stats({"funnel": stats["funnel"]}) == stats["funnel"]
