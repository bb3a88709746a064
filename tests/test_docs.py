"""The documentation's code blocks work: every ```python block of README.md and docs/*.md runs
(the blocks of one page in order, in one namespace, in a folder holding the files they name), and
every command of the shell blocks runs and exits 0 (in order, in a folder per page holding what they
name, on tiny real data, training capped to a few steps); only blocks marked
``<!-- Not runnable here: REASON -->`` (several machines, a GPU, a server) are parsed instead."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, shared_path, train_and_export
from test_released_loading import TINY

from spectok.audio.io import load_audio
from spectok.cli.main import build_parser

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def blocks(page: Path, langs: tuple[str, ...]) -> list[str]:
    return [body for lang, body in BLOCK.findall(page.read_text(encoding="utf-8")) if lang in langs]


def command_lines(body: str) -> list[list[str]]:
    """The shell commands of a block: continuation lines joined, comments and blank lines dropped."""
    out = []
    for line in body.replace("\\\n", " ").splitlines():
        line = line.split(" #")[0].strip()
        if line and not line.startswith("#"):
            out.append(shlex.split(line))
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_prepared) -> Path:
    """A folder with what the Python blocks name: tok.safetensors, voc.safetensors, a training run's
    checkpoint, an evaluation report, a token file."""
    from spectok.cli.main import main
    from spectok.vocoders.istft import ISTFTVocoder

    work = tmp_path_factory.mktemp("docs")
    shutil.copy(REPO / "src" / "spectok" / "models" / "default.safetensors", work / "tok.safetensors")
    from spectok.artifacts import save_release

    save_release(ISTFTVocoder(mel="speech-16k", dim=32, hidden=64, n_layers=1).eval(), work / "voc.safetensors")
    run = work / "train"
    run.mkdir()
    train_and_export("tokenizer", TINY, tiny_prepared, run, "tiny.safetensors")
    (work / "runs" / "tok").mkdir(parents=True)
    shutil.copytree(run / "run" / "checkpoints", work / "runs" / "tok" / "checkpoints")
    clips = sorted(shared_path("LJSpeech-1.1", "wavs").glob("*.wav"))[:2]
    (work / "clips").mkdir()
    for c in clips:
        shutil.copy(c, work / "clips" / c.name)
    assert main(["eval", "-t", "default", "-v", "griffin-lim", str(work / "clips"), "-o",
                 str(work / "reports" / "default"), "-q", "--no-dnsmos"]) == 0
    assert main(["encode", str(work / "clips" / clips[0].name), "-t", "default", "-o", str(work / "tokens"),
                 "-q"]) == 0
    (work / "tokens" / clips[0].with_suffix(".sptk").name).rename(work / "tokens" / "a.sptk")
    return work


def page_namespace(workdir: Path) -> dict:
    """The variables the blocks assume: real speech, and the inputs of the quantizer examples."""
    wav, rate = load_audio(sorted(shared_path("LJSpeech-1.1", "wavs").glob("*.wav"))[0], 16_000)
    return {"wav": torch.from_numpy(wav), "sample_rate": rate, "wav_a": wav, "wav_b": wav[: rate],
            "batches": [torch.randn(2, 64, 10)], "codes": np.zeros((4, 50), np.int64)}


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, ("python",))], ids=lambda p: p.name)
def test_python_blocks_run(page, workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    namespace = page_namespace(workdir)
    for i, body in enumerate(blocks(page, ("python",))):
        try:
            exec(compile(body, f"{page.name}[python block {i}]", "exec"), namespace)
        except Exception as e:
            pytest.fail(f"{page.name}, python block {i} fails: {type(e).__name__}: {e}\n{body}")


# ---- shell blocks: every command runs, in a folder holding what the page names --------------------------

NOT_RUN = re.compile(r"<!-- Not runnable here: (.+?) -->\s*$", re.S)
SHELL = ("bash", "sh", "console")
#: training commands of the docs train for hours; here each one trains 2 steps (3 when it resumes) in batches of 1
TRAIN_CAPS = ["--set", "train.batch_size=1", "--set", "train.valid_every=1", "--set", "train.checkpoint_every=1",
              "--set", "train.media_every=0", "--set", "train.progress=false"]
#: what a page's commands expect to exist before its first block (paths relative to the page's folder),
#: copied from the shared sandbox: a prepared 16 kHz folder, or a finished tiny training run
PAGE_INPUTS = {"README.md": {"MY_PREPARED": "_speech16k", "PREPARED_OR_AUDIO_DIR": "_speech16k", "RUN": "_run"},
               "evaluation.md": {"runs/speech": "_speech16k"}, "quantizers.md": {"runs/speech": "_speech16k"},
               "artifacts.md": {"runs/tok": "_run",  # and a checkpoint under the name the page uses
                                "runs/tok/checkpoints/step-00004000.pt": "_run/checkpoints/step-00000001.pt"}}


def page_blocks(page: Path) -> list[tuple[str, str, str | None]]:
    """``(language, body, reason it is not run or None)`` of every block, in page order."""
    text, out, last = page.read_text(encoding="utf-8"), [], 0
    for m in BLOCK.finditer(text):
        marker = NOT_RUN.search(text[last: m.start()])
        out.append((m.group(1), m.group(2), marker.group(1) if marker else None))
        last = m.end()
    return out


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, tiny_prepared) -> Path:
    """The inputs the shell blocks name, under ``root/base``, with ``root/shared`` -> ../shared (so the
    README's ``../shared/data/...`` paths resolve): real LJSpeech clips as speech.wav, a.wav, clips/,
    my_voice/, my_audio/, held_out_clips/; the released ``default`` as tokenizer.safetensors and
    tok.safetensors; untrained tiny vocoder.safetensors and cifar.safetensors; the CIFAR-10 batches;
    PREPARED (22 kHz) and X.yaml; a prepared 16 kHz folder and a 1-step run to copy per page."""
    from spectok.artifacts import build_section, save_release
    from spectok.cli.main import main
    from spectok.data.corpora import CorpusItem
    from spectok.data.prepare import prepare
    from spectok.vocoders.istft import ISTFTVocoder

    root = tmp_path_factory.mktemp("docs-shell")
    (root / "shared").symlink_to(REPO.parent / "shared")
    base = root / "base"
    base.mkdir()
    for name in ("configs", "examples"):
        (base / name).symlink_to(REPO / name)
    lj = sorted(shared_path("LJSpeech-1.1", "wavs").glob("*.wav"), key=lambda f: (f.stat().st_size, f.name))
    files = [("speech.wav", lj[0]), ("a.wav", lj[0]), ("extra.wav", lj[1]), ("clips/a.wav", lj[0]),
             ("clips/b.wav", lj[1]), ("held_out_clips/c.wav", lj[2]), ("held_out_clips/d.wav", lj[3])]
    files += [(f"my_voice/me/{c.name}", c) for c in lj[:10]] + [(f"my_audio/me/{c.name}", c) for c in lj[:8]]
    for name, clip in files:
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, base / name)
    for name in ("tokenizer.safetensors", "tok.safetensors"):
        shutil.copy(REPO / "src" / "spectok" / "models" / "default.safetensors", base / name)
    save_release(ISTFTVocoder(mel="speech-16k", dim=32, hidden=64, n_layers=1).eval(), base / "vocoder.safetensors")
    from test_image_eval import TINY_IMAGE

    save_release(build_section(TINY_IMAGE["model"], "tokenizer").eval(), base / "cifar.safetensors")
    (base / "cifar-10-batches-py").symlink_to(shared_path("cifar-10-batches-py"))
    (base / "PREPARED").symlink_to(tiny_prepared)
    shutil.copy(REPO / "src" / "spectok" / "presets" / "tokenizer" / "ljspeech22k.yaml", base / "X.yaml")
    splits = ["train"] * 6 + ["valid", "test", "test"]
    items = [CorpusItem(id=c.stem, path=c, speaker="LJ", split=split) for c, split in zip(lj, splits)]
    assert prepare(items, base / "_speech16k", mel="speech-16k", dtype="float32", progress=False).failed == 0
    assert main(["train", "tokenizer", "--config", "default", "--data", str(base / "_speech16k"), "--out",
                 str(base / "_run"), "--steps", "1", *TRAIN_CAPS]) == 0
    return base


def run_command(argv: list[str], where: Path, label: str) -> None:
    """One command line of a shell block, run for real: ``spectok`` in this process, ``torchrun`` as a
    child; training capped to 2 steps (3 on resume), evaluation without DNSMOS."""
    from spectok.cli.main import main

    if argv[0] in ("spectok", "torchrun") and "train" in argv:
        argv = [*argv, "--steps", "3" if "--resume" in argv else "2", *TRAIN_CAPS]
    if argv[:2] == ["spectok", "eval"] and "cifar10" not in argv:
        argv = [*argv, "--no-dnsmos"]  # DNSMOS's network takes seconds per clip on a CPU; the rest is measured
    t0 = time.perf_counter()
    if argv[0] == "spectok":
        code = main(argv[1:])
    elif argv[0] == "torchrun":
        code = subprocess.run([sys.executable, "-m", "torch.distributed.run", *argv[1:]], cwd=where,
                              timeout=600).returncode
    else:
        pytest.fail(f"{label}: `{shlex.join(argv)}` is no spectok command: mark its block not runnable, "
                    "with the reason")
    assert code == 0, f"{label}: `{shlex.join(argv)}` exits {code}"
    print(f"[{time.perf_counter() - t0:5.1f} s] {shlex.join(argv)[:100]}")


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, SHELL)], ids=lambda p: p.name)
def test_shell_blocks_run(page, sandbox, monkeypatch):
    """Every command of the page's shell blocks runs and exits 0, in order, in one folder per page (on
    tiny data, training capped). Blocks marked ``<!-- Not runnable here: REASON -->`` (several machines,
    a GPU, a server, or this very suite) are parsed by the real parser instead."""
    where = sandbox.parent / page.stem
    shutil.copytree(sandbox, where, symlinks=True)
    for dst, src in PAGE_INPUTS.get(page.name, {}).items():
        (where / dst).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (sandbox / src).is_dir() else shutil.copy)(sandbox / src, where / dst)
    monkeypatch.chdir(where)
    parser, ran = build_parser(), 0
    for i, (lang, body, reason) in enumerate(page_blocks(page)):
        label = f"{page.name}, block {i}"
        first = body.splitlines()[0] if body else ""
        if lang in ("yaml", "yml", "json") and re.fullmatch(r"# [\w.-]+\.(yaml|yml|json)", first):
            (where / first[2:]).write_text(body)  # a file the next commands name
        if lang not in SHELL:
            continue
        for argv in command_lines(body):
            while argv and re.fullmatch(r"[A-Z_]+=\S*", argv[0]):  # VAR=value prefixes
                name, value = argv[0].split("=", 1)
                monkeypatch.setenv(name, value)
                argv = argv[1:]
            if argv[0] == "make":
                assert re.search(rf"^{re.escape(argv[1])}:", (REPO / "Makefile").read_text(), re.M), argv
            elif reason is not None:
                assert reason.strip()
                if "spectok" in argv:
                    try:
                        parser.parse_args(argv[argv.index("spectok") + 1:])
                    except SystemExit as e:
                        pytest.fail(f"{label}: `{shlex.join(argv)}` is refused by the parser (exit {e.code})")
            else:
                run_command(argv, where, label)
                ran += 1
    assert ran, f"{page.name}: no command ran"


def test_every_page_is_linked_from_the_index():
    index = (REPO / "docs" / "index.md").read_text()
    for page in sorted((REPO / "docs").glob("*.md")):
        assert page.name == "index.md" or f"({page.name})" in index, f"{page.name} is not in docs/index.md"
