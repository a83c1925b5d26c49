"""twbert: Taiwan-form Chinese corpora into mask-ready MDS shards, and a streaming ModernBERT-style encoder."""

__version__ = "0.1.0"
