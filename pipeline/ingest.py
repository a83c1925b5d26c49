"""The ingest stage: raw zhwiki dumps and FineWeb2 parquet in, clean documents out.

One datatrove pipeline that reads as a list: the readers (each yields the documents upstream of it,
then its own), the cleaning steps, the writer. Wiki-only steps pass web documents through untouched
and vice versa, so the two sources share one pipeline and one funnel.
"""

from __future__ import annotations

from pathlib import Path


def readers(cfg: dict) -> list:
    from twbert.pipeline.fineweb import FineWebReader
    from twbert.pipeline.removed import exclusion_writer
    from twbert.pipeline.wiki import WikiDumpReader

    inputs, wiki, web = cfg["inputs"], cfg["wiki"], cfg["web"]
    check_inputs(inputs)
    steps = []
    if inputs.get("wiki"):
        steps.append(WikiDumpReader(
            inputs["wiki"],
            namespaces=tuple(wiki["namespaces"]),
            disambiguation_templates=wiki["disambiguation_templates"],
            limit=wiki["limit"],
            exclusion_writer=exclusion_writer(cfg, "ingest", WikiDumpReader.name),
        ))
    if inputs.get("fineweb"):
        steps.append(FineWebReader(inputs["fineweb"], batch_size=web["batch_size"], limit=web["limit"],
                                   exclusion_writer=exclusion_writer(cfg, "ingest", FineWebReader.name)))
    return steps


def check_inputs(inputs: dict) -> None:
    """Fail at the front door, before any task starts, on inputs that cannot be read.

    Every path must exist and name at least one dump / parquet file; a local file named explicitly must
    start with its format's magic bytes; local parquet files must have a `text` column (remote ones are
    checked by the reader, to spare a round trip per file here).
    """
    from twbert.errors import UsageError
    from twbert.pipeline.fineweb import FineWebError, check_schema
    from twbert.pipeline.wiki import WikiDumpError, expand_paths, is_dump_name

    kinds = (("wiki", is_dump_name, "*.xml.bz2 dump"), ("fineweb", lambda n: n.endswith(".parquet"), "*.parquet file"))
    for key, predicate, what in kinds:
        for path in inputs.get(key) or []:
            try:
                files = expand_paths([path], predicate)
            except WikiDumpError as e:
                raise UsageError(f"inputs.{key}: {e}") from None
            if not files:
                raise UsageError(f"inputs.{key}: no {what} under {path}")
            if "://" not in str(path) and Path(path).is_file():
                check_magic(key, str(path))
            if key == "fineweb":
                for f in files:
                    if "://" not in f:
                        try:
                            check_schema(f)
                        except FineWebError as e:
                            raise UsageError(str(e)) from None


# A file named explicitly is read whatever its name, so one of the wrong kind (an .xml left uncompressed,
# the config caught by `--wiki`, which takes every path after it) would read as a corrupt dump.
MAGIC = {"wiki": (b"BZh", "not a bz2 file; twbert reads *.xml.bz2 dumps"),
         "fineweb": (b"PAR1", "not a parquet file; twbert reads FineWeb2 *.parquet files")}


def check_magic(key: str, path: str) -> None:
    from twbert.errors import UsageError

    magic, problem = MAGIC[key]
    with open(path, "rb") as f:
        if f.read(len(magic)) == magic:
            return
    hint = ""
    if path.endswith((".yaml", ".yml")):
        hint = f"; if it is the config, put the config before --{key} (twbert build {path} --{key} PATH ...)"
    raise UsageError(f"inputs.{key}: {path}: {problem}{hint}")


def reference_headings(cfg: dict) -> list[str]:
    from twbert.pipeline.references import DEFAULT_REFERENCE_HEADINGS

    refs = cfg["references"]
    base = refs["headings"] if refs["headings"] is not None else DEFAULT_REFERENCE_HEADINGS
    return list(base) + list(refs["extra_headings"])


def cleaning(cfg: dict) -> list:
    """The steps between the readers and the writer."""
    from twbert.pipeline.pii import PIIScrubber
    from twbert.pipeline.quality import ChineseQualityFilter
    from twbert.pipeline.references import WebReferenceStripper
    from twbert.pipeline.removed import exclusion_writer
    from twbert.pipeline.wikitext import WikitextCleaner

    wiki, web, q, pii, conv = cfg["wiki"], cfg["web"], cfg["quality"], cfg["pii"], cfg["convert"]
    check_convert(conv)
    headings = reference_headings(cfg)
    steps = [
        WikitextCleaner(
            reference_headings=headings,
            extra_inline_templates=wiki["extra_inline_templates"],
            keep_headings=wiki["keep_headings"],
            convert=conv["setting"],
            phrases=conv["phrases"],
            cgroups=conv["cgroups"],
            dump_paths=cfg["inputs"].get("wiki") or [],
            exclusion_writer=exclusion_writer(cfg, "ingest", WikitextCleaner.name),
        ),
    ]
    if web["strip_references"]:
        steps.append(WebReferenceStripper(headings=headings, source_prefixes=web["source_prefixes"],
                                          max_tail_fraction=web["max_tail_fraction"],
                                          exclusion_writer=exclusion_writer(cfg, "ingest", WebReferenceStripper.name)))
    if q["enabled"]:
        steps.append(ChineseQualityFilter(
            language_score=q["language_score"],
            dup_line_frac=q["dup_line_frac"],
            top_n_grams=tuple(tuple(x) for x in q["top_n_grams"]),
            dup_n_grams=tuple(tuple(x) for x in q["dup_n_grams"]),
            line_punct_thr=q["line_punct_thr"],
            char_duplicates_ratio=q["char_duplicates_ratio"],
            new_line_ratio=q["new_line_ratio"],
            min_doc_words=q["min_doc_words"],
            max_doc_words=q["max_doc_words"],
            max_symbol_word_ratio=q["max_symbol_word_ratio"],
            max_bullet_lines_ratio=q["max_bullet_lines_ratio"],
            max_ellipsis_lines_ratio=q["max_ellipsis_lines_ratio"],
            max_non_alpha_words_ratio=q["max_non_alpha_words_ratio"],
            min_stop_words=q["min_stop_words"],
            chars_per_word=q["chars_per_word"],
            exclusion_writer=exclusion_writer(cfg, "ingest", ChineseQualityFilter.name),
        ))
    if pii["enabled"]:
        steps.append(PIIScrubber(kinds=tuple(pii["kinds"]), validate_id_checksum=pii["validate_id_checksum"],
                                 sources=tuple(pii["sources"])))
    # Variant scorer, then policy: they see clean, PII-free text of both sources and set
    # variant / tier / weight metadata (nothing when variant.enabled is false).
    from twbert.pipeline.policy import VariantPolicy
    from twbert.pipeline.variant import steps as variant_steps

    steps += variant_steps(cfg, exclusion_writer(cfg, "ingest", VariantPolicy.name))
    # Last, so that it measures web text after its conversion to tw_converted too.
    from twbert.pipeline.artifacts import ArtifactFilter

    steps.append(ArtifactFilter(max_per_10k=conv["artifacts"]["max_per_10k"], extra=conv["artifacts"]["extra"],
                                exclusion_writer=exclusion_writer(cfg, "ingest", ArtifactFilter.name)))
    return steps


def check_convert(conv: dict) -> None:
    """A bad `convert` section fails here, before any task starts, not inside every worker."""
    from twbert.pipeline.artifacts import ArtifactDetector
    from twbert.pipeline.cgroups import load_extract
    from twbert.pipeline.convert import Converter

    Converter(conv["setting"], conv["phrases"])
    ArtifactDetector(conv["artifacts"]["extra"])
    if conv["cgroups"] not in (None, "dump"):
        load_extract(conv["cgroups"])


def writer(cfg: dict, out_dir: str | Path):
    from datatrove.pipeline.writers import JsonlWriter

    compression = cfg["output"]["compression"]
    # With dedup on, the build writes ingest to work/ingest (twbert.build.plan): an intermediate that
    # dedup reads once, not an output, so it is compressed for speed rather than size.
    if compression == "gzip" and (cfg.get("dedup") or {}).get("enabled"):
        from twbert.pipeline.intermediate import WorkJsonlWriter

        return WorkJsonlWriter(str(out_dir))
    return JsonlWriter(str(out_dir), output_filename="${rank}.jsonl", compression=compression)


def stages(cfg: dict, out_dir: str | Path) -> list:
    """[Stage("ingest")]: readers → wikitext → web references → quality → PII → (variant) → artifacts → JSONL."""
    from twbert.stage import Stage

    pipeline = readers(cfg) + cleaning(cfg) + [writer(cfg, out_dir)]
    return [Stage("ingest", pipeline, int(cfg["executor"]["tasks"]))]
