"""Read FineWeb2 (`cmn_Hani`) parquet as web documents.

FineWeb2 rows carry `text, id, dump, url, date, file_path, language, language_score,
language_script, minhash_cluster_size, top_langs`. The row's `id` becomes the document id and, with
`url`, `language_score`, `minhash_cluster_size`, `dump` and `date`, goes into metadata with
`source: "web"`. A row without an id gets the document id `PATH#ROW` and no `metadata.id`, so
`metadata.id` is always FineWeb2's own.
Paths are files or directories (searched recursively for `*.parquet`), local or any fsspec URL
(`hf://datasets/HuggingFaceFW/fineweb-2/data/cmn_Hani/train`, `s3://…`). Tasks split the file list;
each file is read a record batch at a time, only the columns used.
"""

from __future__ import annotations

import contextlib

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from twbert.pipeline.wiki import _open, expand_paths

METADATA_COLUMNS = ("url", "language_score", "minhash_cluster_size", "dump", "date")


class FineWebError(ValueError):
    """A parquet file that is not FineWeb2-shaped or cannot be read."""


def check_schema(path: str) -> list[str]:
    """The parquet file's column names; FineWebError naming the file if it cannot be read or has no `text`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with _open(path) as f:
        try:
            names = pq.ParquetFile(f).schema_arrow.names
        except (pa.ArrowException, OSError) as e:
            raise FineWebError(f"{path}: not a readable parquet file: {e}") from None
    if "text" not in names:
        raise FineWebError(
            f"{path}: no `text` column (columns: {', '.join(names)}); "
            "FineWeb2 parquet has text, id, dump, url, date, language_score, minhash_cluster_size, ..."
        )
    return names


class FineWebReader(PipelineStep):
    """FineWeb2 parquet rows → documents (`source: "web"`).

    Args:
        paths: parquet files or directories, local or fsspec URLs.
        batch_size: rows decoded at a time (bounds memory on files of millions of rows).
        limit: stop after this many documents per task (-1: no limit).
        default_metadata: merged under every document's metadata.
        exclusion_writer: keeps the rows dropped as `empty` (pipeline/removed.py).
    """

    name = "🌐 FineWeb2 parquet"
    type = "📖 - READER"
    _requires_dependencies = ["pyarrow"]

    def __init__(self, paths: str | list[str], batch_size: int = 1000, limit: int = -1, default_metadata: dict | None = None,
                 exclusion_writer=None):
        super().__init__()
        self.exclusion_writer = exclusion_writer
        self._excluded = None
        self.paths = [paths] if isinstance(paths, str) else list(paths)
        self.batch_size = batch_size
        self.limit = limit
        self.default_metadata = default_metadata or {}

    def files(self) -> list[str]:
        return expand_paths(self.paths, lambda name: name.endswith(".parquet"))

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        with self.exclusion_writer or contextlib.nullcontext() as writer:
            self._excluded = (writer, rank)
            n = 0
            for path in self.files()[rank::world_size]:
                if n == self.limit:
                    return
                self.stat_update("input_files")
                for doc in self.read_file(path):
                    yield doc
                    n += 1
                    if n == self.limit:  # stop before reading (and counting) another row
                        return

    def _exclude(self, doc: Document, reason: str) -> None:
        writer, rank = self._excluded or (None, 0)
        if writer is not None:
            doc.metadata["filter_reason"] = reason  # as datatrove's BaseFilter does
            writer.write(doc, rank)

    def read_file(self, path: str):
        import pyarrow as pa
        import pyarrow.parquet as pq

        with _open(path) as f:
            try:
                pf = pq.ParquetFile(f)
            except (pa.ArrowException, OSError) as e:
                raise FineWebError(f"{path}: not a readable parquet file: {e}") from None
            names = pf.schema_arrow.names
            if "text" not in names:
                raise FineWebError(
                    f"{path}: no `text` column (columns: {', '.join(names)}); "
                    "FineWeb2 parquet has text, id, dump, url, date, language_score, minhash_cluster_size, ..."
                )
            columns = [c for c in ("text", "id", *METADATA_COLUMNS) if c in names]
            row = 0
            batches = pf.iter_batches(batch_size=self.batch_size, columns=columns)
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                except (pa.ArrowException, OSError) as e:
                    raise FineWebError(f"{path}: unreadable data after row {row}: {e}") from None
                for rec in batch.to_pylist():
                    self.stat_update("total")
                    text = rec.pop("text")
                    doc_id = rec.get("id") or f"{path}#{row}"
                    meta = dict(self.default_metadata)
                    meta.update({k: v for k, v in rec.items() if v is not None})
                    meta["source"] = "web"
                    doc = Document(text=text or "", id=doc_id, metadata=meta)
                    if not text or not text.strip():
                        self.stat_update("dropped", "dropped_empty")
                        self._exclude(doc, "empty")
                        row += 1
                        continue
                    self.stat_update("forwarded")
                    self.update_doc_stats(doc)
                    row += 1
                    yield doc
