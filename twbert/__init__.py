"""twbert: Taiwan-form Chinese corpora into mask-ready MDS shards, and a streaming ModernBERT-style encoder."""

# datatrove 0.9's dependency check calls importlib.metadata without importing it; every datatrove
# step twbert builds comes through this package, so importing it here is enough.
import importlib.metadata  # noqa: F401

__version__ = "0.1.0"
