"""Atomic checkpoints: complete-or-invisible, damage detected and skipped, no pickle on load."""

import json
import os
import random

import numpy as np
import pytest
import torch

from twbert.training import checkpoint as ckpt


def _state(seed):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(3, 4)).sum().backward()
    opt.step()
    return model, opt


def _save(root, step, keep=None):
    model, opt = _state(step)
    return ckpt.save(root, step, tensors={"model": model.state_dict(), "optimizer": opt.state_dict()},
                     jsons={"trainer": {"step": step}, "rank_00000": {"loader": {"pos": step}}}, keep=keep)


def test_roundtrip_with_weights_only(tmp_path):
    path = _save(tmp_path, 5)
    assert path.name == "step_00000005" and ckpt.verify(path) is None
    model, opt = _state(5)
    loaded = ckpt.load_tensors(path, "model")
    for k, v in model.state_dict().items():
        assert torch.equal(loaded[k], v)
    fresh_model, _ = _state(99)
    fresh_opt = torch.optim.AdamW(fresh_model.parameters(), lr=1e-3)
    fresh_opt.load_state_dict(ckpt.load_tensors(path, "optimizer"))
    assert torch.equal(fresh_opt.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert ckpt.load_json(path, "trainer") == {"step": 5}
    manifest = json.loads((path / "manifest.json").read_text())
    assert set(manifest["files"]) == {"model.pt", "optimizer.pt", "trainer.json", "rank_00000.json"}
    assert not list(tmp_path.glob(".tmp-*"))


def test_pickled_objects_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = _save(tmp_path, 1)
    torch.save({"x": Evil()}, path / "model.pt")
    with pytest.raises(Exception, match="Weights only load failed|weights_only"):
        ckpt.load_tensors(path, "model")


def test_damage_is_detected_and_skipped(tmp_path):
    good = _save(tmp_path, 10)
    newest = _save(tmp_path, 20)
    data = bytearray((newest / "model.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    (newest / "model.pt").write_bytes(bytes(data))
    messages = []
    assert ckpt.latest(tmp_path, messages.append) == good
    assert "step_00000020" in messages[0] and "sha256" in messages[0]

    (newest / "model.pt").write_bytes(bytes(data[:100]))  # truncated
    assert "bytes" in ckpt.verify(newest)
    (newest / "manifest.json").unlink()  # as if the writer died before finishing
    assert "no manifest" in ckpt.verify(newest)
    assert ckpt.latest(tmp_path, messages.append) == good
    with pytest.raises(FileNotFoundError, match="not usable"):
        ckpt.resolve(newest)
    assert ckpt.resolve(tmp_path, messages.append) == good


def test_partial_write_is_invisible(tmp_path):
    good = _save(tmp_path, 1)
    # a writer killed mid-way leaves only its temp directory
    partial = tmp_path / ".tmp-step_00000002-12345"
    partial.mkdir()
    (partial / "model.pt").write_bytes(b"half")
    assert ckpt.latest(tmp_path) == good
    _save(tmp_path, 3, keep=5)
    assert not partial.exists()  # cleaned by the next save


def test_keep_last_k(tmp_path):
    for step in (1, 2, 3, 4, 5):
        _save(tmp_path, step, keep=2)
    assert [s for s, _ in ckpt.listing(tmp_path)] == [5, 4]


def test_resolve_run_dir(tmp_path):
    path = _save(tmp_path / "checkpoints", 7)
    assert ckpt.resolve(tmp_path) == path
    assert ckpt.resolve(tmp_path / "checkpoints") == path
    assert ckpt.resolve(path) == path
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        ckpt.resolve(tmp_path / "nothing")


def test_rng_states_roundtrip_through_json():
    random.seed(1); np.random.seed(1); torch.manual_seed(1)
    state = json.loads(json.dumps(ckpt.rng_state()))
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(2); np.random.seed(2); torch.manual_seed(2)
    ckpt.set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
