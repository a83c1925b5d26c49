#!/usr/bin/env bash
# The main job on the embedded sample: every stage, front to back, as a user would type it.
set -euo pipefail
RUN=${1:-runs/demo}
rm -rf "$RUN"
mkdir -p "$RUN"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. the embedded sample: a zhwiki multistream dump and a FineWeb2 cmn_Hani parquet file"
twbert sample --out "$RUN/raw"

step "2. build: wikitext to Taiwan form (MediaWiki zh-tw), strip references, quality, PII, variant tiers, MinHash dedup (clusters by large-star / small-star rounds, skipped once settled); drops kept in removed/"
twbert build --wiki "$RUN/raw" --fineweb "$RUN/raw" --out "$RUN/build" --tasks 2 --workers 2

step "3. a byte-level BPE trained on the kept documents, with the BERT specials"
twbert tokenizer train --input "$RUN/build/documents" --vocab-size 8000 --out "$RUN/tokenizer"

step "4. the same build with a tokenizer: completed tasks are skipped, MDS shards are written"
twbert build --wiki "$RUN/raw" --fineweb "$RUN/raw" --out "$RUN/build" --tasks 2 --workers 2 \
  --tokenizer "$RUN/tokenizer"

step "5. inspect: funnel, removed samples per step, variant and tier mix, converter artifacts, dedup, lengths, tokens, mask previews"
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

step "9. fine-tune the export on a tiny span-QA slice (SQuAD JSON written here), scored as CMRC 2018's script does"
python - "$RUN/qa" <<'PY'
import json, pathlib, random, sys
out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
people, places = ["小明", "阿華", "美玲", "志豪", "淑芬", "建國"], ["台北", "高雄", "花莲", "台南", "新竹", "基隆"]
def split(n, seed):
    rng, paras = random.Random(seed), []
    for i in range(n):  # Simplified filler: OpenCC s2twp rewrites it (软件 -> 軟體) before the answer
        who, where = rng.choice(people), rng.choice(places)
        context = f"他的电脑里有很多软件。{who}住在{where}，每天搭捷運上班。"
        paras.append({"context": context, "qas": [{"id": f"{seed}-{i}", "question": f"{who}住在哪裡？",
                      "answers": [{"text": where, "answer_start": context.index(where)}]}]})
    return {"data": [{"title": "demo", "paragraphs": paras}]}
for name, n, seed in (("train", 48, 0), ("dev", 12, 1)):
    (out / f"{name}.json").write_text(json.dumps(split(n, seed), ensure_ascii=False), encoding="utf-8")
PY
# one thread: for a model this small, more only spin (the step takes ~15 CPU-seconds)
OMP_NUM_THREADS=1 twbert finetune drcd "$RUN/hf" --train "$RUN/qa/train.json" --dev "$RUN/qa/dev.json" --out "$RUN/finetune" \
  --max-steps 30 --batch-size 16 --max-length 64 --lr 2e-3 --no-progress
twbert eval qa "$RUN/finetune/gold/dev.json" "$RUN/finetune/predictions/dev_seed0.json"
twbert finetune table "$RUN/finetune" --no-reference

step "done"
echo "documents:   $RUN/build/documents   funnel: $RUN/build/stats.json"
echo "shards:      $RUN/build/shards"
echo "report:      $RUN/inspect.html"
echo "checkpoints: $RUN/train/checkpoints   Hugging Face model: $RUN/hf"
echo "fine-tuned:  $RUN/finetune/results.json"
