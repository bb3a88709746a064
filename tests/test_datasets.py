"""Mel crops and padded batches over a prepared folder of real LJSpeech clips."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from spectok.audio.mel import MelConfig
from spectok.data.datasets import EpochIndexed, MelCropDataset, PadCollate, mel_data_spec
from spectok.data.prepare import open_prepared
from spectok.errors import DataError, MelMismatchError
from spectok.training.distributed import EpochStream, ShardedSampler


@pytest.fixture(scope="module")
def prepared(tiny_prepared):
    return open_prepared(tiny_prepared)


def test_random_crops_are_a_function_of_seed_epoch_and_index(prepared):
    ds = MelCropDataset(prepared, "train", 32, seed=7)
    full = prepared.load_mel(ds.records[0]["id"])
    first = [ds[i]["mel"] for i in range(len(ds))]
    again = [ds[i]["mel"] for i in reversed(range(len(ds)))][::-1]
    assert all(torch.equal(a, b) for a, b in zip(first, again))  # order of access does not matter
    assert all(m.shape == (80, 32) for m in first)
    start = ds.crop_start(0, full.shape[1])
    assert np.array_equal(first[0].numpy(), full[:, start:start + 32])
    starts = []
    for epoch in range(4):
        ds.set_epoch(epoch)
        starts.append([ds.crop_start(i, 500) for i in range(len(ds))])
    assert len({tuple(s) for s in starts}) == 4  # new crops every epoch
    other = MelCropDataset(prepared, "train", 32, seed=8)
    assert [other.crop_start(i, 500) for i in range(len(ds))] != starts[0]


def test_validation_serves_whole_utterances_or_crops_from_the_start(prepared):
    whole = MelCropDataset(prepared, "valid", None, random_crop=False)
    assert [whole[i]["mel"].shape[1] for i in range(len(whole))] == [r["frames"] for r in whole.records]
    fixed = MelCropDataset(prepared, "valid", 40, random_crop=False)
    assert torch.equal(fixed[0]["mel"], whole[0]["mel"][:, :40])
    long = MelCropDataset(prepared, "valid", 10**6)  # shorter than the crop: served whole
    assert long[1]["mel"].shape == whole[1]["mel"].shape


def test_collate_pads_with_the_log_floor_and_masks_real_frames():
    silence = MelConfig().silence
    items = [{"mel": torch.zeros(80, 5)}, torch.ones(80, 3)]
    batch = PadCollate(silence, pad_multiple=4)(items)
    assert batch["mel"].shape == (2, 80, 8)
    assert batch["lengths"].tolist() == [5, 3]
    assert batch["mask"].tolist() == [[1] * 5 + [0] * 3, [1] * 3 + [0] * 5]
    assert torch.all(batch["mel"][0, :, 5:] == silence) and torch.all(batch["mel"][1, :, 3:] == silence)
    assert silence == pytest.approx(np.log(1e-5)) and torch.all(batch["mel"][1, :, :3] == 1)
    with pytest.raises(DataError, match="mel bands"):
        PadCollate(silence)([torch.zeros(80, 2), torch.zeros(40, 2)])


def test_one_loader_over_epochs_gives_each_epochs_crops_with_or_without_workers(prepared):
    ds = MelCropDataset(prepared, "train", 24, seed=1)
    stream = EpochStream(ShardedSampler(len(ds), seed=1), batch_size=2, start_epoch=3, start_batch=1)
    assert stream.batches_per_epoch == 3

    def batches(workers: int) -> list[dict]:
        loader = DataLoader(EpochIndexed(ds), batch_size=2, sampler=stream, num_workers=workers,
                            collate_fn=PadCollate(prepared.mel_config.silence))
        return list(itertools.islice(iter(loader), 5))  # 2 batches of epoch 3, then 3 of epoch 4

    main, workers = batches(0), batches(2)
    assert all(torch.equal(a["mel"], b["mel"]) for a, b in zip(main, workers))
    order = [(e, i) for e, i in itertools.islice(iter(stream), 10)]
    assert [e for e, _ in order] == [3] * 4 + [4] * 6
    for k, (epoch, index) in enumerate(order[:4]):
        ds.set_epoch(epoch)
        assert torch.equal(ds[index]["mel"], main[k // 2]["mel"][k % 2])


def test_data_spec_checks_the_mel_front_end_and_splits(tiny_prepared):
    spec = mel_data_spec(tiny_prepared, 16, valid_frames=32, pad_multiple=4)
    assert len(spec.train) == 6 and len(spec.valid) == 2
    assert spec.collate([spec.train[0]])["mel"].shape[-1] % 4 == 0
    with pytest.raises(MelMismatchError, match="n_mels"):
        mel_data_spec(tiny_prepared, 16, mel_config=MelConfig(n_mels=64))
    with pytest.raises(DataError, match="no utterances"):
        MelCropDataset(open_prepared(tiny_prepared), "test", 16)
