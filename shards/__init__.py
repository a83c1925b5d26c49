"""The shards stage: clean documents in, mask-ready MDS datasets out.

- `tokenizer`: prepare a Hugging Face tokenizer with BERT specials, or train a byte-level BPE;
- `segment`: Chinese word segmentation with a Taiwan-form dictionary, mapped onto tokens (`word_ids`);
- `chunking`: cut long documents at sentence boundaries into chunks of at most `max_len - 2` tokens;
- `writer`: the datatrove steps (tokenise + segment + chunk, MDS write, index merge) and `stages()`.

See docs/shards.md.
"""
