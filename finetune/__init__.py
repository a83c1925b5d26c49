"""Downstream evaluation: fine-tune an encoder on the paper's reading-comprehension and classification
tasks with HFL's protocol, score it as the official scripts do, and tabulate it beside the published
baselines (docs/finetune.md)."""
