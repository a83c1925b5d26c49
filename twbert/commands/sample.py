"""`twbert sample`: write the embedded sample inputs (a zhwiki dump and a FineWeb2 parquet file)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="write the embedded sample: a small zhwiki dump and a FineWeb2 parquet file",
        description="Write a small zhwiki pages-articles-multistream dump (.xml.bz2 with its index) and "
        "a FineWeb2 cmn_Hani-schema parquet file, generated from text written for twbert. They "
        "exercise every case `twbert build` handles and feed the README's main job.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", metavar="DIR", required=True, help="directory to write the sample into")
    p.add_argument("--seed", type=int, default=0, help="seed of the generator: same seed, same bytes")
    p.add_argument("--wiki-pages", type=int, default=200, help="generated articles, beside the hand-written ones")
    p.add_argument("--web-pages", type=int, default=160, help="Taiwan web pages (other kinds scale with it)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from twbert import sample

    paths = sample.write(args.out, seed=args.seed, n_generated_pages=args.wiki_pages, n_web=args.web_pages)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0
