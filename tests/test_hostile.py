"""The hostile-input suite (issue 31): every command and the public API, fed what a careless or hostile
user would feed them. Each case asserts

- the exit status (1 for a refusal, 2 for a usage error, 0 for an odd but valid input);
- for a refusal, a one-line message naming the file (or option) and the reason, and no traceback;
- every input unchanged (SHA-256 of every file under the inputs folder, before and after);
- no temporary file left behind anywhere, and nothing half-written (no output of a refused input);
- a bounded wall time (a hang is a failure: SIGALRM after 90 s) and a bounded peak memory (the test
  process's peak resident size stays under 3 GiB after every case: a file that makes a command reserve
  gigabytes fails the case that fed it, or the first one after it).

The default run takes one case of each kind of attack (``FAST``); ``-m slow`` runs all of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import resource
import signal
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import shared_path

pytestmark = pytest.mark.usefixtures("single_thread")


# ---- inputs -------------------------------------------------------------------------------------
def speech(rate: int = 16000, seconds: float = 1.5) -> np.ndarray:
    from spectok.audio.io import load_audio

    wav, _ = load_audio(sorted(shared_path("LJSpeech-1.1", "wavs").glob("*.wav"))[0], rate)
    return wav[: int(rate * seconds)]


def _bytes(p: Path, data: bytes) -> Path:
    p.write_bytes(data)
    return p


def _wav(p: Path, x: np.ndarray, rate: int = 16000, subtype: str | None = None) -> Path:
    sf.write(p, x, rate, subtype=subtype)
    return p


def _riff_claiming(p: Path, frames: int) -> Path:
    """A 44-byte WAV header whose data chunk claims ``frames`` 16-bit samples, followed by 10 of them."""
    header = b"RIFF" + struct.pack("<I", 36 + 2 * frames) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16) + b"data" + struct.pack("<I", 2 * frames)
    p.write_bytes(header + b"\0" * 20)
    return p


#: audio attacks: name -> (make(folder) -> the path to pass, refused?, reason regex)
AUDIO: dict[str, tuple[Callable[[Path], Path], bool, str]] = {
    "empty": (lambda d: _bytes(d / "a.wav", b""), True, r"empty file"),
    "truncated": (lambda d: _truncated(d), True, r"truncated WAV"),
    "text-named-wav": (lambda d: _bytes(d / "a.wav", b"not audio\n" * 50), True,
                       r"cannot decode audio"),
    "garbage-flac": (lambda d: _bytes(d / "a.flac", os.urandom(4000)), True,
                     r"cannot decode audio"),
    "garbage-mp3": (lambda d: _bytes(d / "a.mp3", b"ID3" + os.urandom(4000)), True,
                    r"cannot decode audio|unsupported"),
    "one-sample": (lambda d: _wav(d / "a.wav", np.array([0.1], np.float32)), True, r"too short"),
    "nan": (lambda d: _wav(d / "a.wav", _with(speech(), 100, np.nan), subtype="FLOAT"), True, r"NaN"),
    "inf": (lambda d: _wav(d / "a.wav", _with(speech(), 100, np.inf), subtype="FLOAT"), True, r"NaN|infinite"),
    "one-hz-header": (lambda d: _wav(d / "a.wav", np.zeros(40_000, np.float32), 1), True, r"states 1 Hz"),
    "huge-rate-header": (lambda d: _big_rate(d / "a.wav"), True, r"Hz|cannot decode audio"),
    "claims-2-GB": (lambda d: _riff_claiming(d / "a.wav", 1 << 30), True, r"truncated WAV: its header promises"),
    "fifo": (lambda d: _fifo(d / "a.wav"), True, r"not a regular file"),
    "link-to-dev-zero": (lambda d: _link(d / "a.wav", "/dev/zero"), True, r"not a regular file"),
    "symlink-loop": (lambda d: _loop(d), True, r"file not found|no such file"),
    "missing": (lambda d: d / "missing.wav", True, r"file not found|no such file"),
    "directory-named-wav": (lambda d: (d / "a.wav").mkdir() or d / "a.wav", True, r"no audio|directory"),
    "silence": (lambda d: _wav(d / "a.wav", np.zeros(16000, np.float32)), False, r""),
    "8-khz": (lambda d: _wav(d / "a.wav", speech(8000), 8000), False, r""),
    "96-khz": (lambda d: _wav(d / "a.wav", speech(96000, 1.0), 96000), False, r""),
    "8-channels": (lambda d: _wav(d / "a.wav", np.repeat(speech()[:, None], 8, axis=1)), False, r""),
    "loud-float": (lambda d: _wav(d / "a.wav", speech() * 400, subtype="FLOAT"), False, r""),
    "name-with-newline": (lambda d: _wav(d / "a\nb.wav", speech()), False, r""),
    "spaces-non-ascii": (lambda d: _wav(d / "my clip – üñí.wav", speech()), False, r""),
}


def _with(x: np.ndarray, i: int, v: float) -> np.ndarray:
    x = x.copy()
    x[i] = v
    return x


def _truncated(d: Path) -> Path:
    full = _wav(d / "full.wav", speech(), subtype="PCM_16")
    data = full.read_bytes()
    full.unlink()
    (d / "a.wav").write_bytes(data[: len(data) // 2])
    return d / "a.wav"


def _big_rate(p: Path) -> Path:
    _wav(p, np.zeros(1000, np.float32))
    data = bytearray(p.read_bytes())
    data[24:28] = struct.pack("<I", 4_000_000_000)  # the fmt chunk's sample rate
    p.write_bytes(bytes(data))
    return p


def _fifo(p: Path) -> Path:
    os.mkfifo(p)
    return p


def _link(p: Path, target: str) -> Path:
    p.symlink_to(target)
    return p


def _loop(d: Path) -> Path:
    os.symlink(d / "b.wav", d / "a.wav")
    os.symlink(d / "a.wav", d / "b.wav")
    return d / "a.wav"


# ---- token attacks --------------------------------------------------------------------------------
def _real_tokens(d: Path, name: str = "default") -> Path:
    from spectok.cli.main import main

    clip = _wav(d.parent / f"clip-{name}.wav", speech())
    out = d / "a.sptk"
    assert main(["encode", str(clip), "-t", name, "-o", str(out), "-q"]) == 0
    clip.unlink()
    return out


def _edit_tokens(d: Path, edit: Callable[[bytearray], bytes]) -> Path:
    p = _real_tokens(d)
    p.write_bytes(edit(bytearray(p.read_bytes())))
    return p


def _recrc(data: bytearray) -> bytes:
    body = bytes(data[:-4])
    return body + struct.pack("<I", zlib.crc32(body))


def _header_edit(change: Callable[[dict], None]) -> Callable[[bytearray], bytes]:
    def edit(data: bytearray) -> bytes:
        hlen = struct.unpack_from("<I", data, 6)[0]
        h = json.loads(data[10:10 + hlen])
        change(h)
        new = json.dumps(h, sort_keys=True, separators=(",", ":")).encode()
        body = bytes(data[:6]) + struct.pack("<I", len(new)) + new + bytes(data[10 + hlen:-4])
        return body + struct.pack("<I", zlib.crc32(body))
    return edit


def _sparse(p: Path, size: int) -> Path:
    with open(p, "wb") as f:
        f.truncate(size)
    return p


TOKENS: dict[str, tuple[Callable[[Path], Path], bool, str]] = {
    "empty": (lambda d: _bytes(d / "a.sptk", b""), True, r"too short|not a spectok"),
    "truncated": (lambda d: _edit_tokens(d, lambda b: bytes(b[: len(b) // 2])), True, r"truncated"),
    "bit-flip": (lambda d: _edit_tokens(d, lambda b: bytes(b[:40] + bytes([b[40] ^ 1]) + b[41:])), True,
                 r"checksum mismatch"),
    "trailing-bytes": (lambda d: _edit_tokens(d, lambda b: bytes(b) + b"xx"), True, r"trailing|checksum"),
    "foreign-magic": (lambda d: _bytes(d / "a.sptk", b"RIFF" + b"\0" * 60), True,
                      r"not a spectok token file"),
    "npy-named-sptk": (lambda d: _npy_as_sptk(d), True, r"--format npy"),
    "newer-version": (lambda d: _edit_tokens(d, lambda b: _recrc(b[:4] + struct.pack("<H", 99) + b[6:])), True,
                      r"format version 99"),
    "codes-out-of-range": (lambda d: _edit_tokens(d, _header_edit(lambda h: h.update(codebook_sizes=[2] * 5))), True,
                           r"payload|outside|codebook"),
    "shape-lies": (lambda d: _edit_tokens(d, _header_edit(lambda h: h.update(shape=[5, 10 ** 9]))), True,
                   r"payload"),
    "header-not-json": (lambda d: _edit_tokens(d, _not_json), True, r"corrupt token file header"),
    "other-tokenizer": (lambda d: _real_tokens(d, "ljspeech22k"), True, r"codebook sizes|made by tokenizer"),
    "unknown-code-model": (lambda d: _unknown_code_model(d), True, r"code model .* neither given"),
    "fifo": (lambda d: _fifo(d / "a.sptk"), True, r"not a regular file"),
    "link-to-dev-zero": (lambda d: _link(d / "a.sptk", "/dev/zero"), True, r"not a regular file"),
    "sparse-2-GiB": (lambda d: _sparse(d / "a.sptk", 2 << 30), True, r"larger than 1024 MiB"),
    "missing": (lambda d: d / "missing.sptk", True, r"file not found|no such file"),
}


def _npy_as_sptk(d: Path) -> Path:
    with open(d / "a.sptk", "wb") as f:
        np.save(f, np.zeros((5, 10), np.int64))
    return d / "a.sptk"


def _not_json(data: bytearray) -> bytes:
    hlen = struct.unpack_from("<I", data, 6)[0]
    return _recrc(data[:10] + b"{" * hlen + data[10 + hlen:])


def _unknown_code_model(d: Path) -> Path:
    from spectok.entropy import CodeModel
    from spectok.tokens import read_tokens, write_tokens

    p = _real_tokens(d)
    tf = read_tokens(p)
    write_tokens(p, tf, CodeModel.fit([tf.codes], tf.codebook_sizes))  # a table nobody else has
    return p


# ---- the harness ------------------------------------------------------------------------------------
def _digests(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")) if root.exists() else []:
        if p.is_symlink() or not p.is_file():
            out[str(p)] = "special" if p.is_symlink() or p.exists() else "missing"
        elif p.stat().st_size < (64 << 20):
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[str(p)] = f"size {p.stat().st_size}"
    return out


@contextlib.contextmanager
def deadline(seconds: int = 90):
    """A hang is a failure: SIGALRM raises after ``seconds``."""
    def expire(*_):
        raise TimeoutError(f"no answer within {seconds} s (a hang)")
    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


PEAK_GIB = 3.0


@dataclass
class Outcome:
    code: int
    err: str


def run_cli(argv: list, capsys) -> Outcome:
    from spectok.cli.main import main

    with deadline():
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:  # argparse's usage errors
            code = int(e.code or 0)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20)  # ru_maxrss is in KiB
    assert peak_gib < PEAK_GIB, f"peak resident memory {peak_gib:.1f} GiB"
    return Outcome(code, capsys.readouterr().err)


def check(outcome: Outcome, refused: bool, reason: str, names: str, tmp_path: Path, inputs: dict[str, str],
          out: Path | None = None) -> None:
    err = outcome.err
    assert "Traceback" not in err, err
    if refused:
        assert outcome.code in (1, 2), (outcome.code, err)
        lines = [x for x in err.splitlines() if re.search(reason, x)]
        assert lines, f"no line says /{reason}/: {err}"
        assert any(names in x for x in lines), f"no line names {names!r}: {err}"
        if out is not None and out.exists():  # nothing half-written for a refused input
            assert not [p for p in out.rglob("*") if p.suffix in (".sptk", ".wav", ".npy", ".parquet")]
    else:
        assert outcome.code == 0, err
    assert _digests(tmp_path / "in") == inputs, "an input changed"
    assert not [p for p in tmp_path.rglob("*") if re.match(r"\..*\.tmp", p.name)], "a temporary file was left"


def printable_name(path: Path) -> str:
    from spectok.cli.common import printable

    return printable(path.name)


# ---- the cases ----------------------------------------------------------------------------------------
AUDIO_COMMANDS = {
    "encode": lambda given, out: ["encode", given, "-t", "default", "-o", out, "-q"],
    "reconstruct": lambda given, out: ["reconstruct", given, "-v", "griffin-lim", "--gl-iters", "2", "-o", out,
                                       "-q"],
    "eval": lambda given, out: ["eval", given, "-v", "griffin-lim", "--gl-iters", "2", "-o", out, "-q",
                                "--no-dnsmos"],
    "plot-reconstruction": lambda given, out: ["plot", "reconstruction", given, "-o", out.with_suffix(".png")],
}
FOLDER_COMMANDS = {  # take a folder: the attack sits inside it
    "prepare": lambda folder, out: ["prepare", "folder", folder, out, "-j", "1", "--valid-ratio", "0",
                                    "--test-ratio", "0"],
    "tokenize": lambda folder, out: ["tokenize", "folder", folder, out, "--valid-ratio", "0", "--test-ratio", "0"],
}
TOKEN_COMMANDS = {
    "decode": lambda given, out: ["decode", given, "-v", "griffin-lim", "--gl-iters", "2", "-o", out, "-q"],
    "plot-tokens": lambda given, out: ["plot", "tokens", given, "-o", out.with_suffix(".png")],
    "code-model": lambda given, out: ["code-model", given, "-o", out.with_suffix(".json")],
}
FAST = {("encode", "truncated"), ("encode", "fifo"), ("encode", "one-hz-header"), ("encode", "nan"),
        ("reconstruct", "loud-float"), ("eval", "missing"), ("plot-reconstruction", "empty"),
        ("prepare", "text-named-wav"), ("tokenize", "garbage-flac"), ("decode", "bit-flip"),
        ("decode", "link-to-dev-zero"), ("decode", "sparse-2-GiB"), ("plot-tokens", "newer-version"),
        ("code-model", "shape-lies"), ("decode", "unknown-code-model"), ("encode", "name-with-newline")}


def _params(commands: dict, table: dict) -> list:
    return [pytest.param(c, row, marks=() if (c, row) in FAST else pytest.mark.slow, id=f"{c}-{row}")
            for c in commands for row in table]


# what a folder command makes of a row that is not a file in a folder
FOLDER_SKIP = {"missing", "symlink-loop", "directory-named-wav"}


def _one_input_attack(table: dict, argv: Callable[[Path, Path], list], row: str, tmp_path: Path, capsys,
                      refused: bool | None = None) -> None:
    """Make row ``row`` of ``table`` in ``tmp_path/in``, run ``argv(given, out)``, check the outcome."""
    make, expected, reason = table[row]
    folder = tmp_path / "in"
    folder.mkdir()
    given = make(folder)
    inputs = _digests(folder)
    out = tmp_path / "out"
    outcome = run_cli(argv(given, out), capsys)
    check(outcome, expected if refused is None else refused, reason, printable_name(given), tmp_path, inputs, out)


@pytest.mark.parametrize("command, row", _params(AUDIO_COMMANDS, AUDIO))
def test_audio_attack(command, row, tmp_path, capsys):
    _one_input_attack(AUDIO, AUDIO_COMMANDS[command], row, tmp_path, capsys)


@pytest.mark.parametrize("command, row", _params(FOLDER_COMMANDS, {k: v for k, v in AUDIO.items()
                                                                   if k not in FOLDER_SKIP}))
def test_audio_attack_inside_a_corpus_folder(command, row, tmp_path, capsys):
    """A bad file among good ones: reported by name and skipped, the rest done (exit 0)."""
    make, refused, reason = AUDIO[row]
    folder = tmp_path / "in"
    folder.mkdir()
    given = make(folder)
    _wav(folder / "good.wav", speech())
    inputs = _digests(folder)
    outcome = run_cli(FOLDER_COMMANDS[command](folder, tmp_path / "out"), capsys)
    check(outcome, False, "", "", tmp_path, inputs)
    if refused and row not in ("fifo", "link-to-dev-zero"):
        assert printable_name(given) in outcome.err and re.search(reason, outcome.err), outcome.err


@pytest.mark.parametrize("command, row", _params(TOKEN_COMMANDS, TOKENS))
def test_token_attack(command, row, tmp_path, capsys):
    # counting or drawing codes needs no decoder: another tokenizer's are fine there
    accepted = command in ("code-model", "plot-tokens") and row == "other-tokenizer"
    _one_input_attack(TOKENS, TOKEN_COMMANDS[command], row, tmp_path, capsys, refused=False if accepted else None)


TRAIN = ["train", "tokenizer", "--config", "default", "--data", "PREP", "--out", "OUT"]
#: option attacks: argv (with IN for a good clip, TOK for a good token file, OUT) -> (exit code, reason)
OPTIONS = {
    "chunk-seconds-0": (["decode", "TOK", "-o", "OUT", "--chunk-seconds", "0"], 2, r"--chunk-seconds"),
    "chunk-seconds-nan": (["encode", "IN", "-o", "OUT", "--chunk-seconds", "nan"], 2, r"--chunk-seconds"),
    "chunk-seconds-negative": (["reconstruct", "IN", "-o", "OUT", "--chunk-seconds", "-3"], 2, r"--chunk-seconds"),
    "chunk-seconds-inf": (["encode", "IN", "-o", "OUT", "--chunk-seconds", "inf"], 2, r"--chunk-seconds"),
    "batch-size-0": (["encode", "IN", "-o", "OUT", "--batch-size", "0"], 2, r"--batch-size"),
    "batch-size-word": (["encode", "IN", "-o", "OUT", "--batch-size", "two"], 2, r"--batch-size"),
    "threads-0": (["encode", "IN", "-o", "OUT", "--threads", "0"], 2, r"--threads"),
    "unknown-tokenizer": (["encode", "IN", "-t", "nosuch", "-o", "OUT"], 1, r"nosuch.*released"),
    "unknown-vocoder": (["decode", "TOK", "-v", "nosuch", "-o", "OUT"], 1, r"nosuch"),
    "missing-model-file": (["encode", "IN", "-t", "none/model.safetensors", "-o", "OUT"], 1,
                           r"none/model.safetensors.*not found"),
    "output-is-the-input": (["reconstruct", "IN", "-o", "IN"], 1, r"IN|input"),
    "plot-over-its-input": (["plot", "tokens", "TOK", "-o", "TOK"], 1, r"\.png"),
    "export-over-its-input": (["export", "MODEL", "-o", "MODEL"], 1, r"is the input"),
    "eval-into-its-input": (["eval", "INDIR", "-o", "INDIR/report", "--no-dnsmos", "-q"], 1, r"inside the input"),
    "tokenize-into-its-input": (["tokenize", "folder", "INDIR", "INDIR/tok"], 1, r"inside the input"),
    "prepare-into-a-file": (["prepare", "folder", "INDIR", "TOK"], 1, r"is a file"),
    "set-misspelled-section": ([*TRAIN, "--set", "trian.batch_size=2"], 1, r"did you mean 'train'"),
    "set-wrong-type": ([*TRAIN, "--set", "train.batch_size=abc"], 1, r"expected an integer"),
    "set-unknown-key": ([*TRAIN, "--set", "train.batchsize=2"], 1, r"did you mean 'batch_size'"),
    "steps-0": ([*TRAIN[:-2], "--steps", "0", "--out", "OUT"], 2, r"--steps"),
    "set-optim-unknown-field": ([*TRAIN, "--set", "optim.generator.lrr=1"], 1, r"did you mean 'lr'"),
    "set-without-value": ([*TRAIN, "--set", "train.steps"], 1, r"expected key=value"),
    "set-unknown-data-key": ([*TRAIN, "--set", "data.crop_frame=5"], 1, r"did you mean 'crop_frames'"),
    "set-model-wrong-type": ([*TRAIN, "--set", "model.groups=abc"], 1, r"groups: expected an integer"),
    "set-model-list-wrong-type": ([*TRAIN, "--set", "model.channels=abc"], 1, r"channels: expected a list of integers"),
    "set-loss-wrong-type": ([*TRAIN, "--set", "loss.delta_weight=abc"], 1, r"delta_weight: expected a number"),
    "set-unread-section": ([*TRAIN, "--set", "discriminator.width=2"], 1, r"reads no discriminator section"),
    "unknown-preset": (["train", "tokenizer", "--config", "nosuchpreset", "--data", "PREP", "--out", "OUT"], 1,
                       r"nosuchpreset"),
    "export-unknown-name": (["export", "nosuchrun", "-o", "OUT.safetensors"], 1, r"nosuchrun.*released"),
    "entropy-with-npy": (["encode", "IN", "--entropy", "--format", "npy", "-o", "OUT"], 1, r"--format npy"),
    "code-model-not-json": (["decode", "TOK", "--code-model", "IN", "-o", "OUT"], 1, r"code model|readable"),
}


@pytest.mark.parametrize("row", sorted(OPTIONS))
def test_option_attack(row, tmp_path, capsys):
    argv, code, reason = OPTIONS[row]
    folder = tmp_path / "in"
    folder.mkdir()
    clip = _wav(folder / "clip.wav", speech())
    tok = _real_tokens(folder) if "TOK" in argv else None
    model = folder / "model.safetensors"
    if "MODEL" in argv:
        import shutil

        import spectok.models
        shutil.copy(spectok.models.resolve_tokenizer("default"), model)
    names = {"IN": str(clip), "TOK": str(tok), "OUT": str(tmp_path / "out"), "MODEL": str(model),
             "INDIR": str(folder), "PREP": str(tmp_path / "prep")}
    (tmp_path / "prep").mkdir()
    argv = [names.get(a, a.replace("INDIR", str(folder))) for a in argv]
    inputs = _digests(folder)
    outcome = run_cli(argv, capsys)
    assert outcome.code == code, outcome.err
    check(outcome, True, reason, "", tmp_path, inputs)


# ---- the Python API ---------------------------------------------------------------------------------
def _api_cases() -> dict[str, tuple[Callable[[Path], object], type, str]]:
    import spectok
    from spectok.audio.io import save_audio
    from spectok.errors import SpectokError

    def pipe():
        return spectok.Pipeline(spectok.load_tokenizer("default"))

    return {
        "encode-nan": (lambda d: pipe().encode(np.full(16000, np.nan, np.float32), 16000), SpectokError, r"NaN|finite"),
        "encode-inf": (lambda d: pipe().encode(np.full(16000, np.inf, np.float32), 16000), SpectokError,
                       r"NaN|finite"),
        "encode-no-rate": (lambda d: pipe().encode(speech()), SpectokError, r"give sample_rate"),
        "reconstruct-no-rate": (lambda d: pipe().reconstruct(speech()), SpectokError, r"give sample_rate"),
        "stream-encode-no-rate": (lambda d: list(pipe().stream_encode([speech()])), SpectokError,
                                  r"give sample_rate=16000"),
        "stream-encode-other-rate": (lambda d: list(pipe().stream_encode([speech(8000)], 8000)), SpectokError,
                                     r"a stream is not resampled"),
        "encode-too-short": (lambda d: pipe().encode(np.zeros(10, np.float32), 16000), SpectokError, r"too short"),
        "save-nan": (lambda d: save_audio(d / "x.wav", np.full(100, np.nan), 16000), SpectokError, r"NaN"),
        "read-tokens-fifo": (lambda d: spectok.read_tokens(_fifo(d / "x.sptk")), SpectokError, r"not a regular file"),
        "read-tokens-dir": (lambda d: spectok.read_tokens(d), SpectokError, r"is a directory"),
        "load-missing-tokenizer": (lambda d: spectok.load_tokenizer(d / "none.safetensors"), SpectokError,
                                   r"not found"),
        "load-audio-fifo": (lambda d: spectok.load_audio(_fifo(d / "x.wav"), 16000), SpectokError,
                            r"not a regular file"),
        "token-file-bad-codes": (lambda d: spectok.TokenFile(np.array([[5]]), "f", 16000, 25.0, (2,), 640),
                                 SpectokError, r"outside its codebook"),
        "decode-wrong-codebooks": (lambda d: pipe().decode(spectok.TokenFile(np.zeros((2, 3), np.int64), "f", 16000,
                                                                             25.0, (4, 4), 1920)),
                                   SpectokError, r"codebook sizes"),
    }


API = ["encode-nan", "encode-inf", "encode-no-rate", "reconstruct-no-rate", "stream-encode-no-rate",
       "stream-encode-other-rate", "encode-too-short", "save-nan",
       "read-tokens-fifo", "read-tokens-dir", "load-missing-tokenizer", "load-audio-fifo", "token-file-bad-codes",
       "decode-wrong-codebooks"]


@pytest.mark.parametrize("row", API)
def test_api_attack(row, tmp_path):
    call, error, reason = _api_cases()[row]
    with deadline(), pytest.raises(error, match=reason):
        call(tmp_path)
    assert not [p for p in tmp_path.rglob("*") if re.match(r"\..*\.tmp", p.name)]


def test_the_suite_has_at_least_150_cases():
    assert sorted(API) == sorted(_api_cases())
    n = len(AUDIO) * len(AUDIO_COMMANDS) + len(set(AUDIO) - FOLDER_SKIP) * len(FOLDER_COMMANDS) \
        + len(TOKENS) * len(TOKEN_COMMANDS) + len(OPTIONS) + len(API)
    assert n >= 150, n
