"""spectok encode / decode / reconstruct / plot on real clips with a tiny (untrained) conv tokenizer artifact."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from spectok.cli.main import build_parser, main
from spectok.tokens import read_npy, read_tokens


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    """A tiny ConvVQVAE1d at 16 kHz written as a release artifact."""
    from spectok.artifacts import save_release
    from spectok.tokenizers import ConvVQVAE1d

    tok = ConvVQVAE1d(mel="speech-16k", channels=(16, 16, 16), strides=(2, 2), num_res_blocks=1, norm="none",
                      quantizer={"type": "vq", "dim": 8, "codebook_size": 64})
    return save_release(tok, tmp_path_factory.mktemp("art") / "tok.safetensors")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Three real clips in a nested folder (one resampled to 22,050 Hz) and one broken file."""
    from conftest import shared_path

    from spectok.audio.io import load_audio

    src = sorted(shared_path("cmu_arctic-l2arctic-layout").rglob("*.wav"))[:3]
    root = tmp_path_factory.mktemp("audio")
    (root / "a" / "b").mkdir(parents=True)
    paths = [root / "one.wav", root / "a" / "two.flac", root / "a" / "b" / "three.wav"]
    for i, (s, d) in enumerate(zip(src, paths)):
        wav, sr = load_audio(s, 22050 if i == 1 else None)
        sf.write(d, wav[: sr * 2], sr)
    (root / "a" / "broken.wav").write_bytes(b"RIFF not really a wav file")
    return root, paths


def _run(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_every_command_has_help_with_an_example(capsys) -> None:
    parser = build_parser()
    for cmd in (["encode"], ["decode"], ["reconstruct"], ["plot"], ["plot", "tokens"], ["plot", "usage"],
                ["plot", "training"], ["plot", "reconstruction"]):
        with pytest.raises(SystemExit) as e:
            parser.parse_args([*cmd, "--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert "example:" in out and "spectok " + cmd[0] in out


def test_encode_tree_reports_and_skips_broken_files(capsys, tmp_path, artifact, clips) -> None:
    root, paths = clips
    code, err = _run(capsys, "encode", root, "-t", artifact, "-o", tmp_path / "tok", "-q")
    assert code == 1  # the exit-code policy: the others are done, a failure makes the exit status 1
    assert "skipped" in err and "broken.wav" in err and "cannot decode audio" in err
    assert "Traceback" not in err and "3 of 4 file(s) done, 1 failed" in err
    rows = (tmp_path / "tok" / "failures.tsv").read_text().splitlines()
    assert rows[0] == "path\treason" and len(rows) == 2 and "broken.wav\tcannot decode audio" in rows[1]
    made = sorted(p.relative_to(tmp_path / "tok").as_posix() for p in (tmp_path / "tok").rglob("*.sptk"))
    assert made == ["a/b/three.sptk", "a/two.sptk", "one.sptk"]
    tf = read_tokens(tmp_path / "tok" / "a" / "two.sptk")
    assert tf.sample_rate == 16000 and tf.num_samples == 32000  # 2 s, resampled from 22,050 Hz
    assert tf.codes.shape == (1, -(-200 // 4)) and tf.metadata["source"] == "two.flac"


def test_encode_npy_matches_token_files(capsys, tmp_path, artifact, clips) -> None:
    _, paths = clips
    assert _run(capsys, "encode", paths[0], "-t", artifact, "-o", tmp_path / "x.sptk", "-q")[0] == 0
    assert _run(capsys, "encode", paths[0], "-t", artifact, "-o", tmp_path / "n", "--format", "npy", "-q")[0] == 0
    np.testing.assert_array_equal(read_npy(tmp_path / "n" / "one.npy"), read_tokens(tmp_path / "x.sptk").codes)


def test_nothing_succeeds_exits_nonzero(capsys, tmp_path, artifact, clips) -> None:
    root, _ = clips
    code, err = _run(capsys, "encode", root / "a" / "broken.wav", tmp_path / "missing.wav", "-t", artifact,
                     "-o", tmp_path / "o", "-q")
    assert code == 1 and "missing.wav: file not found" in err and "0 of 2" in err


def test_decode_griffin_lim_and_fingerprint_check(capsys, tmp_path, artifact, clips) -> None:
    from spectok.artifacts import save_release
    from spectok.tokenizers import ConvVQVAE1d

    _, paths = clips
    _run(capsys, "encode", paths[0], paths[2], "-t", artifact, "-o", tmp_path / "tok", "-q")
    code, err = _run(capsys, "decode", tmp_path / "tok", "-t", artifact, "-v", "griffin-lim", "--gl-iters", "4",
                     "-o", tmp_path / "wav", "-q")
    assert code == 0, err
    wav, sr = sf.read(tmp_path / "wav" / "one.wav")
    assert sr == 16000 and len(wav) == read_tokens(tmp_path / "tok" / "one.sptk").num_samples
    other = save_release(ConvVQVAE1d(mel="speech-16k", channels=(16, 16, 16), strides=(2, 2), num_res_blocks=1,
                                     norm="none", quantizer={"type": "vq", "dim": 4, "codebook_size": 64}),
                         tmp_path / "other.safetensors")
    code, err = _run(capsys, "decode", tmp_path / "tok" / "one.sptk", "-t", other, "-o", tmp_path / "w2", "-q")
    assert code == 1 and "made by tokenizer" in err and "--force" in err
    code, err = _run(capsys, "decode", tmp_path / "tok" / "one.sptk", "-t", other, "-o", tmp_path / "w2",
                     "--force", "--gl-iters", "2", "-q")
    assert code == 0 and (tmp_path / "w2" / "one.wav").exists()


def test_decode_refuses_corrupt_and_bare_npy_without_force(capsys, tmp_path, artifact, clips) -> None:
    _, paths = clips
    _run(capsys, "encode", paths[0], "-t", artifact, "-o", tmp_path / "n", "--format", "npy", "-q")
    bad = tmp_path / "n" / "bad.sptk"
    bad.write_bytes((tmp_path / "n" / "one.npy").read_bytes()[:40])
    code, err = _run(capsys, "decode", tmp_path / "n", "-t", artifact, "-o", tmp_path / "w", "-q")
    assert code == 1 and "no tokenizer fingerprint" in err and "bad.sptk: not a spectok token file" in err
    code, err = _run(capsys, "decode", tmp_path / "n" / "one.npy", "-t", artifact, "-o", tmp_path / "w",
                     "--force", "--gl-iters", "2", "-q")
    assert code == 0 and (tmp_path / "w" / "one.wav").exists()


def test_reconstruct_with_plot(capsys, tmp_path, artifact, clips) -> None:
    _, paths = clips
    code, err = _run(capsys, "reconstruct", paths[1], "-t", artifact, "--gl-iters", "2", "-o", tmp_path / "r",
                     "--plot", "-q")
    assert code == 0, err
    wav, sr = sf.read(tmp_path / "r" / "two.wav")
    assert sr == 16000 and len(wav) == 32000
    for name in ("two.png", "two.tokens.png"):
        assert (tmp_path / "r" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_commands(capsys, tmp_path, artifact, clips) -> None:
    _, paths = clips
    _run(capsys, "encode", *paths, "-t", artifact, "-o", tmp_path / "tok", "-q")
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps({"event": "train", "step": s, "train/gen/l1": 1 / (s + 1)})
                                               + "\n" for s in range(5)))
    jobs = [("usage", tmp_path / "tok", "-o", tmp_path / "u.png"),
            ("tokens", tmp_path / "tok" / "one.sptk", "--audio", paths[0], "-t", artifact, "-o", tmp_path / "t.png"),
            ("training", run, "-o", tmp_path / "c.png"),
            ("reconstruction", paths[0], "-t", artifact, "-o", tmp_path / "m.png")]
    for job in jobs:
        code, err = _run(capsys, "plot", *job)
        assert code == 0, err
        assert job[-1].read_bytes()[:4] == b"\x89PNG"
    code, err = _run(capsys, "plot", "training", tmp_path, "-o", tmp_path / "none.png")
    assert code == 1 and "metrics.jsonl: not found" in err


def test_missing_tokenizer_is_one_line(capsys, tmp_path, clips) -> None:
    _, paths = clips
    code, err = _run(capsys, "encode", paths[0], "-t", tmp_path / "nope.safetensors", "-o", tmp_path / "o")
    assert code == 1 and err.count("\n") == 1 and "nope.safetensors" in err


def test_files_with_the_same_name_in_different_folders_do_not_overwrite(capsys, tmp_path, artifact, clips) -> None:
    root, paths = clips
    twin = root / "a" / "b" / "one.wav"
    twin.write_bytes(paths[0].read_bytes())
    try:
        code, err = _run(capsys, "encode", paths[0], twin, "-t", artifact, "-o", tmp_path / "tok", "-q")
    finally:
        twin.unlink()
    assert code == 0, err
    written = sorted(p.relative_to(tmp_path / "tok").as_posix() for p in (tmp_path / "tok").rglob("*.sptk"))
    assert len(written) == 2 and written[0] != written[1]


def test_errors_are_one_line_and_tracebacks_need_debug(capsys, tmp_path, monkeypatch) -> None:
    """A bad --set value is one line naming the error, exit 1; --debug (or SPECTOK_DEBUG=1) re-raises."""
    data = tmp_path / "data"
    argv = ["train", "tokenizer", "--config", "default", "--data", str(data), "--out", str(tmp_path / "r"),
            "--set", "model.groups=abc"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == ["spectok train: error: config model (conv1d-vqvae).groups: expected an integer, "
                                "got 'abc'"]
    with pytest.raises(ValueError):
        main(["--debug", *argv])
    monkeypatch.setenv("SPECTOK_DEBUG", "1")
    with pytest.raises(ValueError):
        main(argv)


def test_threads_option_env_and_config(tmp_path, monkeypatch) -> None:
    """--threads beats SPECTOK_THREADS, which beats train.threads; the default follows the CPU affinity."""
    import os

    import torch

    from spectok.cli.common import default_threads
    from spectok.cli.main import build_parser
    from spectok.cli.train import build_config

    monkeypatch.delenv("SPECTOK_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert default_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("SPECTOK_THREADS", "1")
    assert default_threads() == 1
    main(["presets", "--json"])
    assert torch.get_num_threads() == 1
    main(["presets", "--json", "--threads", "2"])
    assert torch.get_num_threads() == 2
    args = build_parser().parse_args(["train", "tokenizer", "--config", "default", "--out", str(tmp_path),
                                      "--threads", "3"])
    args.threads = 3
    assert build_config(args)["train"]["threads"] == 3
    monkeypatch.setenv("SPECTOK_THREADS", "x")
    with pytest.raises(SystemExit):
        default_threads()
    torch.set_num_threads(2)


def test_hidden_files_are_never_inputs_and_batch_size_must_be_positive(tmp_path, clips) -> None:
    from spectok.cli.codec import collect
    from spectok.evaluation.sources import collect as eval_collect

    root, paths = clips
    (root / ".leftover.tmp123.wav").write_bytes((root / "one.wav").read_bytes())
    (root / ".cache").mkdir(exist_ok=True)
    (root / ".cache" / "x.wav").write_bytes((root / "one.wav").read_bytes())
    names = {str(rel) for _, rel in collect([root], (".wav", ".flac"))}
    assert not any(n.startswith(".") or "/." in n for n in names) and "one.wav" in names
    assert not any(".leftover" in it.id or ".cache" in it.id for it in eval_collect([root]).items)
    import shutil

    (root / ".leftover.tmp123.wav").unlink()
    shutil.rmtree(root / ".cache")
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["encode", str(root), "-o", str(tmp_path), "--batch-size", "0"])
    assert e.value.code == 2


def test_token_headers_that_disagree_are_refused_before_anything_is_written(capsys, tmp_path, artifact, clips) -> None:
    """A valid token file with num_samples set to 1e9 (CRC recomputed), a foreign frame rate or sample
    rate: decode refuses it in one line, exit 1, and writes nothing."""
    import dataclasses

    from spectok.tokens import write_tokens

    root, paths = clips
    assert main(["encode", str(paths[0]), "-t", str(artifact), "-o", str(tmp_path / "tok")]) == 0
    good = read_tokens(tmp_path / "tok" / "one.sptk")
    bad = {"huge": dataclasses.replace(good, num_samples=10**9),
           "rate": dataclasses.replace(good, frame_rate=good.frame_rate * 2),
           "sr": dataclasses.replace(good, sample_rate=8000)}
    for name, tf in bad.items():
        write_tokens(tmp_path / "bad" / f"{name}.sptk", tf)  # a well-formed file with a valid CRC
    capsys.readouterr()
    code = main(["decode", str(tmp_path / "bad"), "-t", str(artifact), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code != 0
    assert "inconsistent header" in err and "frame rate" in err and "sample rate 8000 Hz" in err
    assert not list((tmp_path / "out").glob("*.wav")) if (tmp_path / "out").exists() else True


def test_outputs_never_overwrite_inputs_nor_escape_the_output_folder(capsys, tmp_path, artifact, clips,
                                                                     monkeypatch) -> None:
    """reconstruct in/ -o in/ and -o . (inside in/) are refused in one line, exit 1, nothing written; the same
    file given twice (x/../a.wav and a.wav) is one input, and its output stays inside -o."""
    import shutil

    root, paths = clips
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copy(paths[0], inp / "a.wav")
    before = (inp / "a.wav").read_bytes()
    for out in (inp, "."):
        monkeypatch.chdir(inp)
        capsys.readouterr()
        assert main(["reconstruct", str(inp), "-t", str(artifact), "-o", str(out), "-q"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "refusing to write" in err[0] and "it is the input" in err[0]
        assert (inp / "a.wav").read_bytes() == before and sorted(p.name for p in inp.iterdir()) == ["a.wav"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x").mkdir()
    out = tmp_path / "out"
    assert main(["encode", "x/../in/a.wav", "in/a.wav", "-t", str(artifact), "-o", str(out), "-q"]) == 0
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.sptk")] == ["out/a.sptk"]
    # -o inside the input folder is fine when every output differs from every input
    assert main(["encode", str(inp), "-t", str(artifact), "-o", str(inp / "tokens"), "-q"]) == 0
    assert (inp / "tokens" / "a.sptk").is_file() and (inp / "a.wav").read_bytes() == before


def test_existing_outputs_are_kept_so_a_rerun_resumes_and_overwrite_rewrites(capsys, tmp_path, artifact,
                                                                            clips) -> None:
    root, _ = clips
    out = tmp_path / "tok"
    assert _run(capsys, "encode", root, "-t", artifact, "-o", out, "-q")[0] == 1  # broken.wav fails
    one, two = out / "one.sptk", out / "a" / "two.sptk"
    stamp = one.stat().st_mtime_ns
    two.unlink()  # as if the first run had been killed before this file
    code, err = _run(capsys, "encode", root, "-t", artifact, "-o", out, "-q")
    assert code == 1 and "1 of 2 file(s) done, 1 failed" in err and "2 output(s) already there were kept" in err
    assert two.is_file() and one.stat().st_mtime_ns == stamp
    code, err = _run(capsys, "encode", root / "one.wav", "-t", artifact, "-o", out, "-q")
    assert code == 0 and "0 of 0 file(s) done; 1 output(s) already there were kept" in err
    code, err = _run(capsys, "encode", root, "-t", artifact, "-o", out, "-q", "--overwrite")
    assert "3 of 4 file(s) done" in err and one.stat().st_mtime_ns != stamp
