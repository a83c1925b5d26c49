"""inspect's "removed" section on a run whose steps saved what they dropped (removed/<stage>/<step>/,
written here by real datatrove exclusion writers, as `twbert build` does with output.removed: true)."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest
from _removed_run import make_run

from twbert.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("removed") / "run"
    return root, make_run(root, n=80, tasks=2)


def inspect(run, tmp_path, *extra):
    js, page = tmp_path / "r.json", tmp_path / "r.html"
    rc = main(["inspect", str(run), "--json", str(js), "--html", str(page), "--dup-sample", "0", "--samples", "2", *extra])
    return rc, json.loads(js.read_text(encoding="utf-8")), page.read_text(encoding="utf-8")


def test_removed_counts_samples_and_check(run, tmp_path, capsys):
    root, want = run
    rc, r, page = inspect(root, tmp_path)
    out = capsys.readouterr().out
    assert rc == 0 and r["ok"]
    rm = r["removed"]
    assert rm["present"] and rm["not_saved"] == []
    steps = {s["step"]: s for s in rm["steps"]}
    assert list(steps) == ["toy_quality", "toy_length"]  # the funnel's order
    q, length = steps["toy_quality"], steps["toy_length"]
    assert q["by_reason"] == {"has_digit": want["has_digit"], "too_short": want["too_short"]}
    assert length["by_reason"] == {"too_long": want["long"]}
    assert (q["funnel_step"], length["funnel_step"]) == ("toy quality", "toy length")
    assert q["kept"] + q["documents"] == q["read"] == want["read"] and q["reconciles"] and length["reconciles"]
    check = [c for c in r["checks"] if c["name"].startswith("removed:")]
    assert len(check) == 1 and check[0]["ok"]
    # two seeded samples per reason, each truly dropped for that reason, shown in both renderings
    assert [s["reason"] for s in q["samples"]] == ["has_digit"] * 2 + ["too_short"] * 2
    for s in q["samples"]:
        assert (s["reason"] == "has_digit") == any(ch.isdigit() for ch in s["excerpt"])
        assert s["excerpt"] in out and s["excerpt"] in page and s["id"] in page
    assert "Removed documents" in out and "removed/ingest/toy_quality" in page
    # one section model, two renderings: every section, table title and note is in both
    from twbert.inspection import sections
    from twbert.inspection.model import Note, Table

    for sec in sections.build(r):
        assert sec.title in out and sec.title in page
        for b in sec.blocks:
            if isinstance(b, Note) or (isinstance(b, Table) and b.title):
                text = b.text if isinstance(b, Note) else b.title
                assert " ".join(text.split()[:4]) in " ".join(out.split()), text
                assert text.replace("'", "&#x27;") in page, text
    # the same seed draws the same documents, another seed others
    rc2, again, _ = inspect(root, tmp_path)
    assert again["removed"] == rm
    _, other, _ = inspect(root, tmp_path, "--seed", "5")
    assert [s["id"] for s in other["removed"]["steps"][0]["samples"]] != [s["id"] for s in q["samples"]]


def test_a_lost_removed_document_fails_the_check(run, tmp_path, capsys):
    root, _ = run
    bad = tmp_path / "bad"
    shutil.copytree(root, bad)
    f = sorted((bad / "removed" / "ingest" / "toy_quality").glob("*.jsonl.gz"))[0]
    lines = gzip.open(f, "rt", encoding="utf-8").read().splitlines()
    with gzip.open(f, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines[1:]) + "\n")
    rc, r, _ = inspect(bad, tmp_path)
    assert rc == 1
    failed = [c for c in r["checks"] if not c["ok"]]
    assert [c["name"] for c in failed] == ["removed: documents saved in removed/ + kept == read, per step and reason"]
    assert "removed/ingest/toy_quality" in failed[0]["detail"]


def test_absent_removed_folder_is_said_plainly(tmp_path, capsys):
    root = tmp_path / "old"
    make_run(root, n=30, tasks=1, removed=False)
    rc, r, page = inspect(root, tmp_path)
    assert rc == 0 and r["removed"]["present"] is False
    assert not [c for c in r["checks"] if c["name"].startswith("removed:")]
    out = capsys.readouterr().out
    assert "Removed: absent" in out and "output.removed: false" in out and "output.removed: false" in page


def test_converter_artifacts_per_source_and_tier(tmp_path, capsys):
    """The artifact section counts listed mis-conversions in the kept documents, per source and tier."""
    from datatrove.data import Document
    from datatrove.pipeline.writers import JsonlWriter

    run = tmp_path / "run"
    docs = [Document(text="研究物件是擴充套件的方法。" * 3, id="a", metadata={"source": "wiki", "tier": "tw"}),
            Document(text="研究對象是擴展的方法。" * 3, id="b", metadata={"source": "wiki", "tier": "tw"}),
            Document(text="臺灣的夜市很熱鬧。" * 5, id="c", metadata={"source": "web", "tier": "tw"})]
    with JsonlWriter(str(run / "documents"), output_filename="00000.jsonl.gz") as w:
        for d in docs:
            w.write(d)
    rc, r, page = inspect(run, tmp_path)
    out = capsys.readouterr().out
    assert rc == 0
    wiki, web = r["artifacts"]["wiki/tw"], r["artifacts"]["web/tw"]
    assert (wiki["docs"], wiki["docs_with"], wiki["artifacts"]) == (2, 1, 6)
    assert dict(map(tuple, wiki["top"])) == {"研究物件": 3, "擴充套件": 3}
    assert web["artifacts"] == 0 and web["per_100k"] == 0
    assert "Converter artifacts" in out and "Converter artifacts" in page
    assert "擴充套件" in out
