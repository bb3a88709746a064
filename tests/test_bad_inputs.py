"""The bad-input table of docs/reliability.md, every row through `encode`, `reconstruct`, `prepare folder`
and `eval`: a bad file is refused with its name and the reason (exit 1, nothing half-written), an odd
but valid one is processed. The 3-hour file is in benchmarks/bench_memory.py (and `-m slow` below)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import shared_path

import spectok.models
from spectok.audio.io import load_audio
from spectok.cli.main import main

pytestmark = pytest.mark.usefixtures("single_thread")


def DEMO_CLIP() -> Path:  # noqa: N802
    """A real clip (LJSpeech, ../shared/data)."""
    return sorted(shared_path("LJSpeech-1.1", "wavs").glob("*.wav"))[0]


def speech(rate: int = 16000, seconds: float = 1.5) -> np.ndarray:
    wav, _ = load_audio(sorted(shared_path("LJSpeech-1.1", "wavs").glob("*.wav"))[0], rate)
    return wav[: int(rate * seconds)]


def make_case(name: str, folder: Path) -> Path:
    """Write the input of table row ``name`` into ``folder``; returns the file (or folder) to pass."""
    folder.mkdir(parents=True)
    p = folder / f"{name}.wav"
    if name == "empty":
        p.write_bytes(b"")
    elif name == "truncated":
        sf.write(folder / "full.wav", speech(), 16000, subtype="PCM_16")
        data = (folder / "full.wav").read_bytes()
        (folder / "full.wav").unlink()
        p.write_bytes(data[: len(data) // 2])
    elif name == "not-audio":
        p.write_bytes(b"these bytes are a text file named .wav\n" * 20)
    elif name == "one-sample":
        sf.write(p, np.array([0.1], np.float32), 16000)
    elif name == "nan":
        x = speech()
        x[100] = np.nan
        sf.write(p, x, 16000, subtype="FLOAT")
    elif name == "silence":
        sf.write(p, np.zeros(16000, np.float32), 16000)
    elif name == "8khz":
        sf.write(p, speech(8000), 8000)
    elif name == "96khz":
        sf.write(p, speech(96000, 1.0), 96000)
    elif name == "8-channels":
        sf.write(p, np.repeat(speech()[:, None], 8, axis=1), 16000)
    elif name == "symlink-loop":
        os.symlink(folder / "b.wav", folder / "a.wav")
        os.symlink(folder / "a.wav", folder / "b.wav")
        return folder / "a.wav"
    elif name == "hidden-temp":
        (folder / ".clip.tmp1234.wav").write_bytes(b"half-written")
        sf.write(folder / "clip.wav", speech(), 16000)
        return folder
    elif name == "spaces-non-ascii":
        p = folder / "my clip – üñí.wav"
        sf.write(p, speech(), 16000)
    return p


#: row -> (refused?, the reason in the message)
TABLE = {
    "empty": (True, r"empty file \(0 bytes\)"),
    "truncated": (True, "truncated WAV"),
    "not-audio": (True, "cannot decode audio"),
    "one-sample": (True, "too short"),
    "nan": (True, "NaN"),
    "silence": (False, ""),
    "8khz": (False, ""),
    "96khz": (False, ""),
    "8-channels": (False, ""),
    "symlink-loop": (True, r"file not found|no such file"),
    "hidden-temp": (False, ""),
    "spaces-non-ascii": (False, ""),
}


def run(argv: list, capsys) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("row", sorted(TABLE))
@pytest.mark.parametrize("command", ["encode", "reconstruct", "eval"])
def test_bad_input_table(row, command, tmp_path, capsys):
    refused, reason = TABLE[row]
    given = make_case(row, tmp_path / "in")
    out = tmp_path / "out"
    argv = {"encode": ["encode", given, "-t", "default", "-o", out, "-q"],
            "reconstruct": ["reconstruct", given, "-t", "default", "-v", "griffin-lim", "--gl-iters", "2", "-o",
                            out, "-q"],
            "eval": ["eval", given, "-t", "default", "-v", "griffin-lim", "--gl-iters", "2", "-o", out, "-q",
                     "--no-dnsmos"]}[command]
    code, err = run(argv, capsys)
    assert "Traceback" not in err
    if refused:
        assert code == 1 and re.search(reason, err) and str(given) in err, err
        written = [p for p in out.rglob("*") if p.suffix in (".sptk", ".wav")] if out.exists() else []
        assert not written  # nothing half-written
        assert not [p for p in out.rglob(".*tmp*")] if out.exists() else True
        if row != "symlink-loop":  # a missing input named alone is refused before any work (nothing to list)
            assert str(given) in (out / "failures.tsv").read_text()  # the exit-code policy's list
    else:
        assert code == 0, err
        if row == "silence" and command != "eval":
            assert "pure silence" in err


@pytest.mark.parametrize("row", sorted(TABLE))
def test_bad_input_table_prepare(row, tmp_path, capsys):
    refused, reason = TABLE[row]
    given = make_case(row, tmp_path / "in")
    folder = given if given.is_dir() else given.parent
    code, err = run(["prepare", "folder", folder, tmp_path / "prep", "-j", "1", "--valid-ratio", "0",
                     "--test-ratio", "0"], capsys)
    assert "Traceback" not in err
    if refused and row != "symlink-loop":
        assert code == 1 and re.search(reason, err), err
    elif row == "symlink-loop":  # a link that resolves nowhere is no audio file: nothing to prepare
        assert code != 0 and "no" in err.lower()
    else:
        assert code == 0, err


def test_output_inside_the_input_folder(tmp_path, capsys):
    make_case("spaces-non-ascii", tmp_path / "in")
    code, err = run(["reconstruct", tmp_path / "in", "-t", "default", "--gl-iters", "2", "-o", tmp_path / "in",
                     "-q"], capsys)
    assert code == 1 and "refusing to write" in err and "it is the input" in err
    code, err = run(["encode", tmp_path / "in", "-t", "default", "-o", tmp_path / "in" / "tokens", "-q"], capsys)
    assert code == 0  # the token files differ from every input


def test_unreadable_file(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("running as root: file permissions do not stop root from reading, so this row cannot be shown")
    p = make_case("8khz", tmp_path / "in")
    p.chmod(0)
    code, err = run(["encode", p, "-t", "default", "-o", tmp_path / "out", "-q"], capsys)
    assert code == 1 and "cannot decode audio" in err and str(p) in err


def test_plot_usage_leaves_out_a_bad_token_file_and_exits_1(tmp_path, capsys):
    """The exit-code policy in `plot usage`: a corrupt token file is listed, the others are drawn."""
    make_case("spaces-non-ascii", tmp_path / "in")
    assert run(["encode", tmp_path / "in", "-t", "default", "-o", tmp_path / "tok", "-q"], capsys)[0] == 0
    (tmp_path / "tok" / "broken.sptk").write_bytes(b"SPTK" + bytes(40))
    code, err = run(["plot", "usage", tmp_path / "tok", "-o", tmp_path / "fig" / "usage.png"], capsys)
    assert code == 1 and "broken.sptk" in err and "Traceback" not in err
    assert (tmp_path / "fig" / "usage.png").stat().st_size > 1000
    assert not (tmp_path / "fig" / "failures.tsv").exists()  # nothing beside a file the user named


def test_eval_goes_on_past_a_missing_path(tmp_path, capsys):
    """One missing input among others costs that input only (exit 1, listed), not the run."""
    make_case("spaces-non-ascii", tmp_path / "in")
    out = tmp_path / "rep"
    code, err = run(["eval", tmp_path / "in", tmp_path / "missing.wav", "-t", "default", "-v", "griffin-lim",
                     "--gl-iters", "2", "-o", out, "-q", "--no-dnsmos"], capsys)
    assert code == 1 and "missing.wav" in err, err
    assert "missing.wav" in (out / "failures.tsv").read_text()
    assert (out / "report.json").is_file()


@pytest.mark.slow
def test_a_three_hour_file_through_every_command(tmp_path):
    """The table's 3-hour row (real speech tiled to 3 h, 16 kHz): every command processes it and exits 0.
    Its peak memory is measured by benchmarks/bench_memory.py (figures in benchmarks/RESULTS.md)."""
    import subprocess
    import sys

    from test_engine_tinytask import cli_env

    folder = tmp_path / "in"
    folder.mkdir()
    long = folder / "three hours.wav"
    clip = (speech(16000, 10.0) * 32767).astype(np.int16)
    with sf.SoundFile(str(long), "w", samplerate=16000, channels=1, subtype="PCM_16") as f:
        for _ in range(3 * 360):
            f.write(clip)
    gl = ["-v", "griffin-lim", "--gl-iters", "1"]
    for argv in (["prepare", "folder", folder, tmp_path / "prep", "-j", "1", "--valid-ratio", "0", "--test-ratio", "0"],
                 ["encode", long, "-t", "default", "-o", tmp_path / "tok", "-q"],
                 ["decode", tmp_path / "tok" / "three hours.sptk", "-t", "default", *gl, "-o", tmp_path / "dec", "-q"],
                 ["reconstruct", long, "-t", "default", *gl, "-o", tmp_path / "rec", "-q"],
                 ["eval", long, "-t", "default", *gl, "-o", tmp_path / "eval", "-q", "--no-dnsmos"]):
        proc = subprocess.run([sys.executable, "-m", "spectok", *map(str, argv)], env=cli_env(), capture_output=True,
                              text=True, timeout=3600)
        assert proc.returncode == 0, f"{argv[0]}: {proc.stderr[-2000:]}"
    for out in (tmp_path / "dec" / "three hours.wav", tmp_path / "rec" / "three hours.wav"):
        assert sf.info(str(out)).frames == sf.info(str(long)).frames


def test_no_command_writes_over_what_it_reads(tmp_path, capsys):
    """export, plot and eval refuse, before any work, an output that is one of their inputs (or, for
    eval, a folder inside the data it scores, which a second run would score too)."""
    make_case("spaces-non-ascii", tmp_path / "in")
    assert run(["encode", tmp_path / "in", "-t", "default", "-o", tmp_path / "tok", "-q"], capsys)[0] == 0
    sptk = next((tmp_path / "tok").rglob("*.sptk"))
    before = sptk.read_bytes()
    code, err = run(["plot", "tokens", sptk, "-o", sptk], capsys)
    assert code == 1 and "must be a .png" in err and sptk.read_bytes() == before
    png = tmp_path / "fig.png"
    png.write_bytes(b"mine")
    code, err = run(["plot", "tokens", png, "-o", png], capsys)
    assert code == 1 and "is the input" in err and png.read_bytes() == b"mine"
    code, err = run(["eval", tmp_path / "in", "-o", tmp_path / "in" / "report", "-q", "--no-dnsmos"], capsys)
    assert code == 1 and "inside the input" in err and not (tmp_path / "in" / "report").exists()
    code, err = run(["eval", tmp_path / "in", "-o", sptk, "-q", "--no-dnsmos"], capsys)
    assert code == 1 and "is a file" in err and sptk.read_bytes() == before
    model = tmp_path / "model.safetensors"
    shutil.copy(spectok.models.resolve_tokenizer("default"), model)
    code, err = run(["export", model, "-o", model], capsys)
    assert code == 1 and "is the input" in err
    code, err = run(["export", model, "-o", tmp_path / "model.pt"], capsys)
    assert code == 1 and "must be a .safetensors" in err


def test_corpus_commands_refuse_an_output_folder_inside_what_they_read(tmp_path, capsys):
    """prepare, prepare-decoded, tokenize and train refuse, before any work, an output folder inside (or
    holding) the corpus or prepared folder they read, and a file where a folder is meant."""
    corpus = tmp_path / "corpus"
    make_case("spaces-non-ascii", corpus)
    listing = sorted(p.name for p in corpus.rglob("*"))
    for argv in (["prepare", "folder", corpus, corpus / "prepared"], ["prepare", "folder", corpus, tmp_path],
                 ["tokenize", "folder", corpus, corpus / "tokens"],
                 ["prepare-decoded", corpus, corpus / "decoded"],
                 ["train", "tokenizer", "--config", "default", "--data", corpus, "--out", corpus / "run"]):
        code, err = run(argv, capsys)
        assert code == 1 and "refusing to write into" in err, (argv, err)
    (tmp_path / "file").write_text("mine")
    code, err = run(["tokenize", "folder", corpus, tmp_path / "file"], capsys)
    assert code == 1 and "is a file" in err and (tmp_path / "file").read_text() == "mine"
    assert sorted(p.name for p in corpus.rglob("*")) == listing


def test_special_files_and_absurd_sizes_are_refused_before_reading(tmp_path, capsys):
    """A FIFO or a link to /dev/zero as a token file, a FIFO as audio, a WAV whose header states 1 Hz, and
    --chunk-seconds 0: each refused in one line, at once (no hang, no unbounded read)."""
    from spectok.errors import AudioError, TokenFileError
    from spectok.tokens import read_npy, read_tokens

    fifo = tmp_path / "pipe.sptk"
    os.mkfifo(fifo)
    with pytest.raises(TokenFileError, match="not a regular file"):
        read_tokens(fifo)
    with pytest.raises(TokenFileError, match="not a regular file"):
        read_npy(fifo)
    zero = tmp_path / "zero.sptk"
    zero.symlink_to("/dev/zero")
    with pytest.raises(TokenFileError, match="not a regular file"):
        read_tokens(zero)
    code, err = run(["decode", fifo, "-t", "default", "-o", tmp_path / "out", "-q"], capsys)
    assert code == 1 and "not a regular file" in err
    wav_fifo = tmp_path / "pipe.wav"
    os.mkfifo(wav_fifo)
    with pytest.raises(AudioError, match="not a regular file"):
        load_audio(wav_fifo, 16000)
    one_hz = tmp_path / "one_hz.wav"
    sf.write(one_hz, np.zeros(40_000, np.float32), 1)
    with pytest.raises(AudioError, match="states 1 Hz"):
        load_audio(one_hz, 16000)
    tokens = tmp_path / "tok"
    make_case("spaces-non-ascii", tmp_path / "in")
    assert run(["encode", tmp_path / "in", "-t", "default", "-o", tokens, "-q"], capsys)[0] == 0
    for bad in ("0", "-1", "nan", "inf"):
        with pytest.raises(SystemExit) as e:
            main(["decode", str(tokens), "-t", "default", "-o", str(tmp_path / "dec"), "--chunk-seconds", bad])
        assert e.value.code == 2
    assert "finite number of seconds > 0" in capsys.readouterr().err


def test_a_model_file_whose_config_asks_for_huge_layers_is_refused_before_allocating(tmp_path):
    """The config in an artifact's header is checked against its tensor table on the meta device: a
    header edited to 65,536 channels is refused in one line instead of reserving 68 GB."""
    import resource

    from spectok.errors import ArtifactError
    from spectok.tokenizers import load_tokenizer

    bad = _edited_model(tmp_path, lambda config: config.update(channels=[65536] * len(config["channels"])))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ArtifactError, match="does not describe its weights"):
        load_tokenizer(bad)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500 * 1024  # KiB: under 500 MB


def _edited_model(tmp_path, edit) -> Path:
    """A copy of the released ``default`` artifact whose header config ``edit(config)`` changed."""
    import json
    import struct

    data = spectok.models.resolve_tokenizer("default").read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = json.loads(header["__metadata__"]["spectok"])
    edit(meta["config"])
    header["__metadata__"]["spectok"] = json.dumps(meta)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    bad = tmp_path / "edited.safetensors"
    bad.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + n:])
    return bad


def test_a_model_file_with_an_unknown_constructor_argument_is_named(tmp_path, capsys) -> None:
    bad = _edited_model(tmp_path, lambda config: config.update(wings=2))
    code, err = run(["encode", DEMO_CLIP(), "-t", bad, "-o", tmp_path / "a.sptk"], capsys)
    assert code == 1 and f"{bad}: its config or tensor table is unusable" in err and "wings" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "a.sptk").exists()


def test_os_errors_are_one_line_naming_the_path() -> None:
    from spectok.cli.main import _one_line

    assert _one_line(FileExistsError(17, "File exists", "out/a.wav")) == "out/a.wav: File exists"
    assert _one_line(IsADirectoryError(21, "Is a directory", "tok")) == "tok: Is a directory"
    assert _one_line(PermissionError(13, "Permission denied", "a\nb.wav")) == "a\\nb.wav: Permission denied"
    assert _one_line(OSError(18, "Invalid cross-device link", "a", None, "b")) == "a -> b: Invalid cross-device link"


def test_a_full_disk_is_named_and_leaves_nothing(tmp_path, monkeypatch) -> None:
    from types import SimpleNamespace

    from spectok.audio.io import save_audio
    from spectok.errors import AudioError

    def refuse(*args, **kwargs):
        raise sf.LibsndfileError(2)  # libsndfile's "System error." for ENOSPC and EACCES alike

    monkeypatch.setattr(sf, "SoundFile", refuse)
    monkeypatch.setattr(os, "statvfs", lambda _: SimpleNamespace(f_bavail=0, f_favail=10))
    with pytest.raises(AudioError, match=r"out\.wav: not written: No space left on device"):
        save_audio(tmp_path / "out.wav", np.zeros(100, np.float32), 16000)
    assert list(tmp_path.iterdir()) == []


def test_a_closed_pipe_ends_quietly_with_status_0() -> None:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "import sys, time; from spectok.cli.main import main; "
                             "time.sleep(1); sys.exit(main(['presets']))"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first line is written (as `| head -0`)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and b"Error" not in err and b"Traceback" not in err, err


def test_a_file_name_with_a_newline_stays_one_line(tmp_path, capsys) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "bad\nname\x1b[31m.wav").write_bytes(b"not audio at all")
    assert main(["encode", str(inp), "-o", str(tmp_path / "tok"), "-q"]) == 1
    err = capsys.readouterr().err
    skipped = [line for line in err.splitlines() if "skipped" in line]
    assert len(skipped) == 1 and "bad\\nname\\x1b[31m.wav" in skipped[0] and "\x1b" not in err
    rows = (tmp_path / "tok" / "failures.tsv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].count("\t") == 1


def test_warnings_are_one_line_each_without_source(tmp_path, capsys) -> None:
    loud = tmp_path / "loud.wav"
    sf.write(loud, speech() * 400.0, 16000, subtype="FLOAT")  # a float WAV far beyond full scale
    code = main(["reconstruct", str(loud), "-v", "griffin-lim", "--gl-iters", "2", "-o", str(tmp_path / "r.wav"),
                 "-q"])
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert code == 0 and warnings and all(w.startswith("spectok reconstruct: warning: ") for w in warnings), err
    assert len(warnings) == len(set(warnings)) and "warnings.warn" not in err and ".py:" not in err
    assert any("beyond full scale" in w for w in warnings)


def test_export_of_an_unknown_name_lists_the_released_ones(tmp_path, capsys) -> None:
    code, err = run(["export", "nosuchname", "-o", tmp_path / "x.safetensors"], capsys)
    assert code == 1 and "nosuchname: no such run folder or checkpoint" in err and "default" in err
    code, err = run(["export", "default", "-o", tmp_path / "x.safetensors"], capsys)
    assert code == 1 and "default is a released model" in err and not (tmp_path / "x.safetensors").exists()


def test_a_missing_input_named_alone_is_refused_before_any_work(tmp_path, capsys):
    code, err = run(["encode", tmp_path / "missing.wav", "-o", tmp_path / "out"], capsys)
    assert code == 1 and "missing.wav: file not found" in err and not (tmp_path / "out").exists()
