"""torch.compile sees the whole model as one graph, and varying batches do not recompile it."""

from __future__ import annotations

import pytest
import torch

from twbert.training.model import EncoderConfig, EncoderForMLM, pack
from twbert.training.prefetch import device_batch

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny() -> EncoderConfig:
    return EncoderConfig(vocab_size=96, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                         intermediate_size=48, local_attention=8, attn_backend="sdpa")


def batch(lengths, n_masked, seed=0):
    """A loader-format batch (as training/packing.py makes) of sequences of `lengths`, as model inputs."""
    g = torch.Generator().manual_seed(seed)
    b = pack([torch.randint(5, 96, (n,), generator=g).tolist() for n in lengths])
    positions = torch.randperm(b["num_tokens"], generator=g)[:n_masked].sort().values
    b.update(masked_positions=positions, masked_targets=b["input_ids"][positions], num_masked=n_masked)
    return device_batch(b).inputs(torch.device("cpu"))


# token counts, sequence counts (one included), max_seqlen and masked counts (0 and 1 included) all vary
BATCHES = [([20, 9, 31], 7), ([40], 1), ([5, 6, 7, 8, 9, 10], 0), ([64, 3], 60), ([12, 12], 5), ([33], 33)]


def test_no_graph_break():
    m = EncoderForMLM(tiny())
    explained = torch._dynamo.explain(m)(**batch(*BATCHES[0]))
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons


def test_varying_batches_do_not_recompile():
    from torch._dynamo.testing import CompileCounterWithBackend

    torch._dynamo.reset()
    torch.manual_seed(0)
    m = EncoderForMLM(tiny())
    counter = CompileCounterWithBackend("aot_eager")  # traces forward and backward, compiles nothing
    compiled = torch.compile(m, backend=counter, dynamic=True, fullgraph=True)
    frames = []
    for lengths, n in BATCHES:
        inputs = batch(lengths, n)
        out = compiled(**inputs)
        out["loss_sum"].backward()
        torch.testing.assert_close(out["loss_sum"], m(**inputs)["loss_sum"])
        frames.append(counter.frame_count)
    assert frames == [frames[0]] * len(BATCHES), f"compiled graphs after each batch: {frames}"
    # (dynamo also hands the backend an empty graph for the call's wrapper frame)
    assert sum(len(g.graph.nodes) > 0 for g in counter.graphs) == 1
