"""``spectok gen-spec`` and ``spectok synthesize`` on a real clip."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from spectok.cli.main import main

pytestmark = pytest.mark.usefixtures("single_thread")


def test_gen_spec_then_synthesize_with_griffin_lim(ljspeech_wavs, tmp_path):
    wav = ljspeech_wavs[0]
    mel, lin = tmp_path / "mel.npy", tmp_path / "lin.npy"
    assert main(["gen-spec", str(wav), "-o", str(mel)]) == 0
    assert main(["gen-spec", str(wav), "-o", str(lin), "--linear"]) == 0
    m, s = np.load(mel), np.load(lin)
    assert m.shape[0] == 80 and s.shape == (513, m.shape[1]) and m.dtype == np.float32
    for spec in (mel, lin):
        out = tmp_path / f"{spec.stem}.wav"
        assert main(["synthesize", str(spec), "-v", "griffin-lim", "--gl-iters", "4", "-o", str(out)]) == 0
        audio, sr = sf.read(out)
        assert sr == 22050 and len(audio) == m.shape[1] * 256


def test_synthesize_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((7, 10), dtype=np.float32))
    assert main(["synthesize", str(bad), "-o", str(tmp_path / "x.wav")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.npy: 7 rows fit neither" in err
    assert main(["synthesize", str(tmp_path / "missing.npy"), "-o", str(tmp_path / "x.wav")]) == 1
    assert "missing.npy" in capsys.readouterr().err
    assert main(["synthesize", str(bad), "-v", str(tmp_path / "nope.safetensors"), "-o", str(tmp_path / "x.wav")]) == 1
    assert "nope.safetensors" in capsys.readouterr().err


def test_help_texts_show_examples(capsys):
    for cmd in ("gen-spec", "synthesize"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert f"spectok {cmd} " in capsys.readouterr().out
