"""A crash in a native metric library costs one call (one utterance's metrics), never the eval run."""

from __future__ import annotations

from pathlib import Path

import isolation_helpers as H
import numpy as np
import pytest
import soundfile as sf

from spectok.evaluation.isolation import CallFailed, Isolated, WorkerDied


def test_calls_run_in_one_child_that_restarts_after_a_crash():
    import os

    worker = Isolated()
    try:
        first = worker.call(H.pid)
        assert first != os.getpid() and worker.call(H.pid) == first  # one long-lived child
        with pytest.raises(CallFailed, match="ValueError: no speech"):
            worker.call(H.fail)
        assert worker.call(H.pid) == first  # an exception does not end the child
        with pytest.raises(WorkerDied, match="SIGSEGV"):
            worker.call(H.crash)
        assert worker.call(H.pid) not in (first, os.getpid())  # a fresh child serves the next call
    finally:
        worker.close()


def test_a_segfaulting_metric_costs_one_utterance(tmp_path, monkeypatch, ljspeech_wavs):
    """Three clips, the long one's metrics segfault: it is recorded as failed with the signal, the
    other two are scored, the run finishes."""
    from spectok.audio.io import load_audio
    from spectok.evaluation import runner
    from spectok.evaluation.runner import describe_model, evaluate
    from spectok.evaluation.sources import collect
    from spectok.tokenizers import load_tokenizer
    from spectok.vocoders import GriffinLim

    tok = load_tokenizer("default")
    voc = GriffinLim(tok.mel_config, n_iter=2)
    files = []
    for i, seconds in enumerate((1.0, 3.0, 1.0)):
        wav, _ = load_audio(ljspeech_wavs[i], 16000)
        files.append(tmp_path / f"clip{i}.wav")
        sf.write(files[-1], wav[: int(seconds * 16000)].astype(np.float32), 16000)
    monkeypatch.setattr(runner.M, "waveform_metrics", H.metrics_crashing_on_long_clips)
    result = evaluate(tok, voc, collect(files), tmp_path / "rep", describe_model(tok, "default"),
                      describe_model(voc, "griffin-lim"), dnsmos=False)
    by_id = {Path(u["path"]).stem: u for u in result.utterances}
    assert sorted(by_id) == ["clip0", "clip1", "clip2"] and not result.skipped
    assert "SIGSEGV" in by_id["clip1"]["failures"].get("tokenized/waveform", ""), by_id["clip1"]
    assert "pesq" not in by_id["clip1"]["tokenized"] and "mfcc_dist_db" in by_id["clip1"]["tokenized"]
    for ok in ("clip0", "clip2"):
        assert 1.0 <= by_id[ok]["tokenized"]["pesq"] <= 4.7 and 0 < by_id[ok]["copy"]["stoi"] <= 1
