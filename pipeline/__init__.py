"""datatrove `PipelineStep`s that turn raw zhwiki dumps and FineWeb2 parquet into clean documents.

Readers (`wiki`, `fineweb`), wikitext cleaning (`wikitext`, `references`), web quality and PII
(`quality`, `pii`), variant scoring and policy, MinHash dedup; `ingest` assembles the first stage.
"""
