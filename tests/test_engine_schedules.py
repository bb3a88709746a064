"""Learning-rate schedules and the engine's config handling (overrides, optimizer specs)."""

from __future__ import annotations

import math

import pytest

from spectok.errors import SpectokError
from spectok.training.config import TrainConfig, apply_overrides, resolve_optimizer_specs
from spectok.training.schedules import lr_at
from spectok.training.task import OptimizerSpec


def _spec(**kw) -> OptimizerSpec:
    return OptimizerSpec("generator", ["model"], lr=1.0, **kw)


def test_warmup_then_cosine_reaches_the_floor_at_the_end():
    s = _spec(schedule="cosine", warmup_steps=4, min_lr_ratio=0.1)
    lrs = [lr_at(s, k, 20) for k in range(25)]
    assert lrs[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8])  # (k + 1) / (warmup + 1)
    assert lrs[4] == 1.0
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))  # monotone decay
    assert lrs[12] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lrs[20] == pytest.approx(0.1) and lrs[24] == pytest.approx(0.1)


def test_step_decay_and_constant():
    s = _spec(schedule="step", step_size=10, gamma=0.5)
    assert [lr_at(s, k, 100) for k in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]
    assert lr_at(_spec(schedule="constant"), 1234, 10) == 1.0


def test_overrides_parse_yaml_values_into_nested_keys():
    cfg = apply_overrides({"task": "t", "train": {"steps": 1}},
                          ["train.steps=200", "optim.generator.lr=1e-4", "model.dims=[1, 2]", "train.device=cpu"])
    assert cfg["train"] == {"steps": 200, "device": "cpu"}
    assert cfg["optim"]["generator"]["lr"] == 1e-4 and cfg["model"]["dims"] == [1, 2]
    with pytest.raises(SpectokError, match="expected key=value"):
        apply_overrides({}, ["train.steps"])


def test_a_misspelled_section_is_refused_with_the_nearest_name():
    with pytest.raises(SpectokError, match="unknown section 'trian'; did you mean 'train'"):
        apply_overrides({"task": "t", "train": {"steps": 1}}, ["trian.batch_size=2"])
    with pytest.raises(SpectokError, match="unknown section 'modle'"):
        apply_overrides({"task": "t"}, ["modle.dim=2"])
    assert apply_overrides({"task": "t"}, ["discriminator.width=0.5"])["discriminator"] == {"width": 0.5}


@pytest.mark.parametrize("assignment, message", [
    ("train.batch_size=abc", "train.batch_size: expected an integer, got 'abc'"),
    ("train.steps=1.5", "train.steps: expected an integer, got 1.5"),
    ("train.progress=3", "train.progress: expected true/false, got 3"),
    ("train.seed=true", "train.seed: expected an integer, got True"),
    ("train.device=[1]", r"train.device: expected a string, got \[1\]"),
    ("train.threads=two", "train.threads: expected an integer or null, got 'two'"),
    ("train.batchsize=2", "unknown key 'batchsize'; did you mean 'batch_size'"),
])
def test_train_keys_of_the_wrong_type_are_refused_with_the_expected_one(assignment, message):
    from spectok.training.config import TrainConfig

    cfg = apply_overrides({"task": "t", "train": {"steps": 1}}, [assignment])
    with pytest.raises(SpectokError, match=message):
        TrainConfig.from_dict(cfg["train"])


def test_train_keys_of_the_right_type_pass():
    from spectok.training.config import TrainConfig

    cfg = apply_overrides({"task": "t", "train": {}}, ["train.steps=20", "train.checkpoint_minutes=3",
                                                      "train.threads=null", "train.progress=false"])
    assert TrainConfig.from_dict(cfg["train"]).checkpoint_minutes == 3


def test_optim_section_overrides_task_defaults_per_phase():
    defaults = [_spec(), OptimizerSpec("discriminator", ["disc"], lr=2.0)]
    specs = resolve_optimizer_specs(defaults, {"discriminator": {"lr": "5e-5", "betas": [0.5, 0.9]}})
    assert specs[0] == defaults[0]
    assert specs[1].lr == 5e-5 and specs[1].betas == (0.5, 0.9)
    listed = resolve_optimizer_specs(defaults, [{"name": "generator", "schedule": "cosine"}])
    assert listed[0].schedule == "cosine"
    # A flat section of spec fields is a task's own (already applied by the task): left alone.
    assert resolve_optimizer_specs(defaults, {"lr": 3.0, "kind": "adam"}) == defaults
    with pytest.raises(SpectokError, match="unknown phases"):
        resolve_optimizer_specs(defaults, {"critic": {"lr": 1.0}})
    with pytest.raises(SpectokError, match="config optim.generator: unknown key .learning_rate."):
        resolve_optimizer_specs(defaults, {"generator": {"learning_rate": 1.0}})
    with pytest.raises(SpectokError, match="unknown schedule"):
        resolve_optimizer_specs(defaults, {"generator": {"schedule": "linear"}})


def test_train_section_rejects_unknown_keys_and_bad_values():
    assert TrainConfig.from_dict(None).precision == "fp32"
    with pytest.raises(SpectokError, match="unknown key 'step'; did you mean 'steps'"):
        TrainConfig.from_dict({"step": 10})
    with pytest.raises(SpectokError, match="precision"):
        TrainConfig.from_dict({"precision": "fp8"})
