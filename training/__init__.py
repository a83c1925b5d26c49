"""Training: stream MDS shards, pack and mask them, train the encoder, checkpoint, export, evaluate."""
