"""Training checkpoints: RNG round trip, atomic files, keep-last/best, clear errors on bad files."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from spectok.errors import ArtifactError
from spectok.training.checkpoint import (
    CheckpointManager,
    capture_rng,
    load_checkpoint,
    load_models,
    preserved_rng,
    restore_rng,
    save_checkpoint,
)


def _draw() -> tuple:
    return random.random(), float(np.random.rand()), float(np.random.randn()), float(torch.rand(1))


def _state(step: int = 1) -> dict:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    return {"step": step, "models": {"model": model.state_dict()}, "optimizers": {"g": opt.state_dict()},
            "config": {"task": "x", "train": {"steps": 3}}, "rng": [capture_rng()]}


def test_rng_state_round_trips_through_a_file(tmp_path):
    np.random.randn()  # leave a cached Gaussian in NumPy's legacy state
    save_checkpoint(_state(), tmp_path / "a.pt")
    expected = _draw()
    restore_rng(load_checkpoint(tmp_path / "a.pt")["rng"][0])
    assert _draw() == expected


def test_preserved_rng_hides_what_a_block_draws():
    state = capture_rng()
    expected = _draw()
    restore_rng(state)
    with preserved_rng():
        _draw()
    assert _draw() == expected


def test_checkpoint_loads_without_pickle_and_restores_models_and_optimizer(tmp_path):
    state = _state()
    path = save_checkpoint(state, tmp_path / "c.pt")
    loaded = load_checkpoint(path)  # weights_only=True inside
    model = torch.nn.Linear(3, 2)
    load_models(loaded, {"model": model}, path)
    assert all(torch.equal(v, state["models"]["model"][k]) for k, v in model.state_dict().items())
    assert loaded["optimizers"]["g"]["state"][0]["step"] == state["optimizers"]["g"]["state"][0]["step"]
    with pytest.raises(ArtifactError, match="weights of model 'model' do not fit"):
        load_models(loaded, {"model": torch.nn.Linear(3, 5)}, path)
    with pytest.raises(ArtifactError, match="checkpoint holds models"):
        load_models(loaded, {"other": model}, path)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign", "missing"])
def test_bad_checkpoint_raises_artifact_error_naming_the_file(tmp_path, damage):
    path = save_checkpoint(_state(), tmp_path / "bad.pt")
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint at all" * 10)
    elif damage == "foreign":
        torch.save({"weights": torch.zeros(2)}, path)
    else:
        path.unlink()
    with pytest.raises(ArtifactError, match=str(path)):
        load_checkpoint(path)


def test_manager_keeps_the_last_k_and_best(tmp_path):
    m = CheckpointManager(tmp_path / "ck", keep_last=2)
    for step in (1, 2, 3, 4):
        m.save(_state(step), step, is_best=step == 2)
    assert m.steps() == [3, 4] and m.latest() == m.step_path(4)
    assert load_checkpoint(m.best())["step"] == 2  # survives the pruning of step 2
    m.save_best(_state(5))
    assert load_checkpoint(m.resolve("best"))["step"] == 5
    assert m.resolve("last") == m.step_path(4)
    assert not list((tmp_path / "ck").glob(".*tmp*")), "temporary files left behind"
    (tmp_path / "ck" / ".step-00000005.tmp123.pt").write_bytes(b"half a checkpoint")  # a killed writer's
    assert [p.name for p in m.remove_stale_temps()] == [".step-00000005.tmp123.pt"] and m.steps() == [3, 4]
    with pytest.raises(ArtifactError, match="no checkpoints"):
        CheckpointManager(tmp_path / "empty").resolve("best")


def test_export_of_a_truncated_checkpoint_fails_clearly(tmp_path):
    from spectok.cli.export import export_run

    path = save_checkpoint(_state(), tmp_path / "run" / "checkpoints" / "step-00000001.pt")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ArtifactError, match="step-00000001.pt: cannot read training checkpoint"):
        export_run(tmp_path / "run", tmp_path / "m.safetensors")


def test_durable_atomic_writes_fsync_the_file_and_its_folder(tmp_path, monkeypatch) -> None:
    import os

    from spectok import fsutil

    synced: list[str] = []
    real = os.fsync
    monkeypatch.setattr(fsutil.os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd)))
    with fsutil.atomic_path(tmp_path / "a.bin") as tmp:
        tmp.write_bytes(b"x")
    assert synced == []  # plain atomic write: rename only
    with fsutil.atomic_path(tmp_path / "b.bin", durable=True) as tmp:
        tmp.write_bytes(b"y")
    assert len(synced) == 2 and synced[0].endswith(".tmp" + str(os.getpid()) + ".bin") and synced[1] == str(tmp_path)
    assert (tmp_path / "b.bin").read_bytes() == b"y" and not list(tmp_path.glob(".*tmp*"))


def test_written_artifacts_get_ordinary_permissions(tmp_path):
    """safetensors creates its files 0600; the atomic rename must not carry that to a release artifact."""
    import os

    from spectok.artifacts import save_release
    from spectok.tokenizers import ConvVQVAE1d

    tok = ConvVQVAE1d(mel="speech-16k", channels=(8, 8), strides=(2,), num_res_blocks=0, norm="none",
                      quantizer={"type": "fsq", "levels": [5, 5, 5], "dim": 3})
    old = os.umask(0o022)
    try:
        path = save_release(tok, tmp_path / "tok.safetensors")
        assert os.stat(path).st_mode & 0o777 == 0o644
        os.umask(0o002)
        path = save_release(tok, tmp_path / "tok2.safetensors")
        assert os.stat(path).st_mode & 0o777 == 0o664
    finally:
        os.umask(old)


def test_an_artifact_keeps_the_fields_of_a_mel_yaml_not_its_path(tmp_path):
    from spectok.artifacts import load_release, save_release
    from spectok.audio.mel import MelConfig
    from spectok.tokenizers import ConvVQVAE1d

    f = tmp_path / "my-mel.yaml"
    f.write_text("sample_rate: 24000\nn_fft: 1024\nhop_length: 240\nwin_length: 960\nn_mels: 80\nfmax: 12000\n")
    tok = ConvVQVAE1d(mel=str(f), channels=(8, 8), strides=(2,), num_res_blocks=0, norm="none",
                      quantizer={"type": "fsq", "levels": [5, 5, 5], "dim": 3})
    path = save_release(tok, tmp_path / "t.safetensors")
    f.unlink()  # the artifact must not need the file any more
    assert load_release(path).mel_config == MelConfig(sample_rate=24000, n_fft=1024, hop_length=240,
                                                       win_length=960, n_mels=80, fmax=12000.0)
