"""The documentation's code blocks work: every ```python block of README.md and docs/*.md runs
(the blocks of one page in order, in one namespace, in a folder holding the files they name),
and every `spectok` command line of the shell blocks is accepted by the real command-line parser
(parsed, not run: many of them train for hours or need a cluster)."""

from __future__ import annotations

import re
import shlex
import shutil
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


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, ("bash", "sh", "console"))], ids=lambda p: p.name)
def test_shell_commands_parse(page):
    parser, checked = build_parser(), 0
    for body in blocks(page, ("bash", "sh", "console")):
        for argv in command_lines(body):
            while argv and re.fullmatch(r"[A-Z_]+=\S*", argv[0]):  # VAR=value prefixes
                argv = argv[1:]
            if argv[0] == "torchrun":
                argv = argv[argv.index("spectok"):]
            if argv[0] == "make":
                assert re.search(rf"^{re.escape(argv[1])}:", (REPO / "Makefile").read_text(), re.M), argv
                continue
            if argv[0] != "spectok":
                continue  # other tools (tensorboard)
            try:
                parser.parse_args(argv[1:])
            except SystemExit as e:
                pytest.fail(f"{page.name}: `{shlex.join(argv)}` is refused by the parser (exit {e.code})")
            checked += 1
    assert checked or page.name == "README.md"


def test_every_page_is_linked_from_the_index():
    index = (REPO / "docs" / "index.md").read_text()
    for page in sorted((REPO / "docs").glob("*.md")):
        assert page.name == "index.md" or f"({page.name})" in index, f"{page.name} is not in docs/index.md"
