#!/usr/bin/env bash
# The main job on the embedded sample: every stage, front to back, as a user would type it.
set -euo pipefail
RUN=${1:-runs/demo}
rm -rf "$RUN"
mkdir -p "$RUN"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. the embedded sample: a zhwiki multistream dump and a FineWeb2 cmn_Hani parquet file"
twbert sample --out "$RUN/raw"

step "2. build: clean wikitext to Taiwan form, strip references, quality, PII, variant tiers, MinHash dedup"
twbert build --wiki "$RUN/raw" --fineweb "$RUN/raw" --out "$RUN/build" --tasks 2 --workers 2

step "3. a byte-level BPE trained on the kept documents, with the BERT specials"
twbert tokenizer train --input "$RUN/build/documents" --vocab-size 8000 --out "$RUN/tokenizer"

step "4. the same build with a tokenizer: completed tasks are skipped, MDS shards are written"
twbert build --wiki "$RUN/raw" --fineweb "$RUN/raw" --out "$RUN/build" --tasks 2 --workers 2 \
  --tokenizer "$RUN/tokenizer"

step "5. inspect: funnel, variant and tier mix, dedup, lengths, tokens, mask previews"
twbert inspect "$RUN/build" --json "$RUN/inspect.json" --html "$RUN/inspect.html"

step "6. train a tiny encoder on the shards, stopped by SIGTERM part-way (as a preemption would)"
twbert train configs/tiny.yaml --data "$RUN/build/shards" --out "$RUN/train" --max-steps 200 &
pid=$!
steps() { if [ -f "$RUN/train/metrics.jsonl" ]; then wc -l < "$RUN/train/metrics.jsonl"; else echo 0; fi; }
until [ "$(steps)" -ge 60 ] || ! kill -0 $pid 2>/dev/null; do
  sleep 1
done
kill -TERM $pid 2>/dev/null || true
wait $pid || true
echo "stopped after $(steps) steps; checkpoints: $(ls "$RUN/train/checkpoints" | tr '\n' ' ')"

step "7. resume: continues from the checkpoint written on SIGTERM, with the losses an unbroken run gives"
twbert train configs/tiny.yaml --data "$RUN/build/shards" --out "$RUN/train" --max-steps 200 --resume

step "8. export to a Hugging Face ModernBertForMaskedLM directory, and evaluate it"
twbert export "$RUN/train" "$RUN/hf"
twbert sample --out "$RUN/heldout" --seed 1 --wiki-pages 0 --web-pages 16 >/dev/null
python - "$RUN/heldout" "$RUN/heldout.txt" <<'PY'
import sys, pyarrow.parquet as pq, pathlib
texts = pq.read_table(next(pathlib.Path(sys.argv[1]).glob("*.parquet")), columns=["text"]).column("text").to_pylist()
pathlib.Path(sys.argv[2]).write_text("\n".join(t.split("\n")[0] for t in texts[:20]) + "\n", encoding="utf-8")
PY
twbert eval pppl "$RUN/hf" "$RUN/heldout.txt"

step "done"
echo "documents:   $RUN/build/documents   funnel: $RUN/build/stats.json"
echo "shards:      $RUN/build/shards"
echo "report:      $RUN/inspect.html"
echo "checkpoints: $RUN/train/checkpoints   Hugging Face model: $RUN/hf"
