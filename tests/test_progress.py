"""`twbert build` progress: a line per stage on the terminal, the task logs in OUT/logs/."""

import re

from twbert import sample
from twbert.cli import main
from twbert.progress import QuietStream


def test_build_prints_stage_progress_and_keeps_task_logs_in_files(tmp_path, capfd):
    raw = sample.write(tmp_path / "raw", n_generated_pages=10, n_web=16)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("dedup:\n  buckets: 4\n  pair_tasks: 2\n", encoding="utf-8")
    out = tmp_path / "run"
    # two workers: the tasks run in worker processes, whose stderr is the file descriptor capfd reads
    assert main(["build", str(cfg), "--wiki", str(raw["wiki"]), "--fineweb", str(raw["fineweb"]),
                 "--out", str(out), "--tasks", "2", "--workers", "2"]) == 0
    captured = capfd.readouterr()
    final = {}  # a slow stage also prints lines while it runs; the last one per stage is its summary
    for x in captured.out.splitlines():
        if re.match(r"\[\d+(-\d+)?/\d+\] ", x):
            final[x.split(":")[0]] = x
    lines = list(final.values())
    # the sample's near-duplicates are pairs: the clusters settle in the first large-star round, and
    # the rounds planned after it are skipped in one line
    assert list(final) == [
        "[1/25] ingest", "[2/25] dedup_signatures", "[3/25] dedup_buckets", "[4/25] dedup_pairs",
        "[5/25] dedup_large_star_1", "[6-23/25] dedup_small_star_1 ... dedup_large_star_10",
        "[24/25] dedup_clusters", "[25/25] dedup_filter"]
    assert lines[0].startswith("[1/25] ingest: 2/2 tasks") and "docs/s" in lines[0]
    assert "4/4 tasks" in lines[2] and lines[5].endswith("skipped, nothing left to do")
    assert "| INFO" not in captured.err and "Launching pipeline" not in captured.err
    log = (out / "logs" / "ingest" / "logs" / "task_00000.log").read_text(encoding="utf-8")
    assert "Launching pipeline for rank=0" in log
    import json

    usage = json.loads((out / "logs" / "dedup_pairs" / "usage" / "00001.json").read_text(encoding="utf-8"))
    assert usage["rank"] == 1 and usage["end"] >= usage["start"] and usage["cpu_s"] > 0 and usage["peak_rss_mb"] > 10


def test_quiet_stream_drops_routine_log_lines_only():
    class Sink:
        text = ""

        def write(self, s):
            self.text += s
            return len(s)

    sink = Sink()
    quiet = QuietStream(sink)
    quiet.write("2026-12-02 10:00:00.123 | INFO     | datatrove.executor.base:_run_for_rank:117 - Skipping rank=0\n")
    quiet.write("2026-12-02 10:00:00.123 | ERROR    | datatrove.executor.base:_run_for_rank:150 - boom\nTraceback ...\n")
    quiet.write("a warning from elsewhere\n")
    assert "Skipping" not in sink.text and "boom" in sink.text and "elsewhere" in sink.text
