#!/usr/bin/env bash
# The main job on the embedded sample: every stage, front to back, as a user would type it.
set -euo pipefail
RUN=${1:-runs/demo}
rm -rf "$RUN"
mkdir -p "$RUN"

echo "== 1. the embedded sample: a zhwiki multistream dump and a FineWeb2 parquet file"
twbert sample --out "$RUN/raw"

echo "== 2. build: clean, convert to Taiwan form, filter, scrub PII, score variants, dedup"
twbert build --wiki "$RUN/raw" --fineweb "$RUN/raw" --out "$RUN/build" --tasks 2 --workers 2
