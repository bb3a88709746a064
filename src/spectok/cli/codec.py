"""``spectok encode``, ``spectok decode`` and ``spectok reconstruct``: audio ⇄ token files, for users.

Inputs may be files or directories (searched recursively). An input that fails is
reported on one line (file and reason) and skipped; the others are done. The exit status
is non-zero only when nothing succeeded.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from pathlib import Path

from spectok.cli.common import (
    Runner,
    add_command,
    add_tokenizer_option,
    add_vocoder_option,
    load_models,
    positive_int,
    positive_seconds,
)
from spectok.errors import SpectokError, TokenFileError
from spectok.fsutil import resolved as _resolved

TOKEN_SUFFIXES = (".sptk", ".npy")


def register(sub) -> None:
    p = add_command(sub, "encode", "Encode audio files into token files (one per input).",
                    "spectok encode recordings/ -t default -o tokens/", _encode)
    _inputs(p, "INPUT", "audio files or directories (searched recursively)")
    add_tokenizer_option(p)
    p.add_argument("-o", "--out", required=True, type=Path,
                   help="output directory (or a file name when there is one input file)")
    p.add_argument("--format", choices=("spectok", "npy"), default="spectok",
                   help="spectok: self-describing .sptk token files (default); npy: bare int64 [K, T'] arrays")
    p.add_argument("--entropy", action="store_true",
                   help="range-code the codes against the released tokenizer's code frequencies (format "
                   "version 3): files near the entropy bound instead of ceil(log2 K) bits per code")
    _code_model_option(p, "range-code against this code model (from 'spectok code-model'; implies --entropy)")
    _batching(p)

    p = add_command(sub, "decode", "Decode token files back to audio (.wav).",
                    "spectok decode tokens/ -t default -v griffin-lim -o decoded/", _decode)
    _inputs(p, "CODES", ".sptk token files (or .npy arrays, with --force) or directories")
    add_tokenizer_option(p)
    add_vocoder_option(p)
    p.add_argument("-o", "--out", required=True, type=Path, help="output directory (or a .wav for one input)")
    p.add_argument("--force", action="store_true",
                   help="decode tokens made by a tokenizer with another fingerprint (or bare .npy arrays)")
    _code_model_option(p, "the code model range-coded files were written with, where it is not a released "
                       "tokenizer's")
    _batching(p)

    p = add_command(sub, "reconstruct", "Audio → tokens → audio, to hear what the tokens keep.",
                    "spectok reconstruct clip.wav -t default -v griffin-lim -o recon/ --plot",
                    _reconstruct)
    _inputs(p, "INPUT", "audio files or directories (searched recursively)")
    add_tokenizer_option(p)
    add_vocoder_option(p)
    p.add_argument("-o", "--out", required=True, type=Path, help="output directory (or a .wav for one input)")
    p.add_argument("--plot", action="store_true",
                   help="also write NAME.png (log-mel vs reconstruction vs difference) and NAME.tokens.png (token map)")
    _batching(p)


# ---- argument groups ------------------------------------------------------------------------
def _inputs(p: argparse.ArgumentParser, name: str, help: str) -> None:
    p.add_argument("inputs", nargs="+", type=Path, metavar=name, help=help)


def _code_model_option(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--code-model", type=Path, metavar="FILE", help=help)


def _batching(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", type=positive_int, default=1,
                   help="files of equal length per forward pass (default 1: each file's output is bit-identical "
                   "however the files are grouped, so a resumed run equals an uninterrupted one; larger batches "
                   "help on a GPU and can differ in the last bits)")
    p.add_argument("--chunk-seconds", type=positive_seconds, default=30.0,
                   help="longer inputs are processed in overlapping chunks of this length (default 30)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true",
                   help="rewrite outputs that already exist (default: keep them and skip their inputs, so a "
                        "re-run after an interruption resumes)")


# ---- helpers ----------------------------------------------------------------------------------
def collect(inputs: Iterable[Path], suffixes: tuple[str, ...]) -> list[tuple[Path, Path]]:
    """``(file, name relative to its root)`` for files given directly and files under directories.

    A missing input is kept (it is reported as a failure later, with the others).
    """
    found: list[tuple[Path, Path]] = []
    for root in inputs:
        if root.is_dir():
            found += [(f, f.relative_to(root)) for f in sorted(root.rglob("*"))
                      if f.is_file() and f.suffix.lower() in suffixes and not hidden(f.relative_to(root))]
        else:
            found.append((root, Path(root.name)))
    seen: set[Path] = set()
    unique = []
    for f, rel in found:  # the same file named twice (a.wav and x/../a.wav) is one input
        key = _resolved(f)
        if key not in seen:
            seen.add(key)
            unique.append((f, rel))
    return _disambiguate(unique)


def hidden(rel: Path) -> bool:
    """A hidden file or one inside a hidden folder (``.x.tmp123.wav``, ``.cache/a.wav``): never an input."""
    return any(part.startswith(".") for part in rel.parts)


def collect_some(inputs: list[Path], suffixes: tuple[str, ...], what: str) -> list[tuple[Path, Path]]:
    """:func:`collect`, raising :class:`SpectokError` before any work when every input named is missing
    ("PATH: file not found") or when it finds nothing ("no {what} found in ...")."""
    missing = [p for p in inputs if not p.exists() and not p.is_symlink()]
    if missing and len(missing) == len(inputs):
        raise SpectokError(f"{missing[0]}: file not found" + (f" (and {len(missing) - 1} more)" if len(missing) > 1
                                                              else ""))
    files = collect(inputs, suffixes)
    if not files:
        raise SpectokError(f"no {what} found in {', '.join(map(str, inputs))}")
    return files


def _disambiguate(found: list[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
    """Give inputs whose relative names clash (``a/17.flac`` and ``b/17.flac`` passed as files) their
    parent folders as well, so no output overwrites another."""
    depth = 1
    while True:
        names = [rel if len(rel.parts) >= depth else Path(*f.resolve().parts[1:][-depth:]) for f, rel in found]
        if len(set(names)) == len(names) or depth > 32:
            return [(f, n) for (f, _), n in zip(found, names)]
        depth += 1


def output_path(out: Path, rel: Path, suffix: str, single: bool) -> Path:
    """Where the result for ``rel`` goes: ``out`` itself for one input named with ``suffix``, else
    ``out/rel`` with the suffix replaced."""
    if single and out.suffix.lower() == suffix:
        return out
    return out / rel.with_suffix(suffix)


def plan_outputs(files: list[tuple[Path, Path]], out: Path, suffix: str) -> dict[Path, Path]:
    """``{input: output}`` for every input of :func:`collect`, checked before anything is written.

    Refused, in one line naming the two paths: an output that resolves to an input file (so
    ``-o`` may be an input folder only when every output differs from every input), an output
    outside ``-o``, and two inputs that would write the same output (:func:`collect` has already
    made the same file named twice, ``a.wav`` and ``x/../a.wav``, one input).
    """
    single = len(files) == 1
    root = out.resolve()
    inputs = {_resolved(f) for f, _ in files}
    plan: dict[Path, Path] = {}
    written: dict[Path, Path] = {}
    for f, rel in files:
        dest = output_path(out, rel, suffix, single)
        target = dest.resolve()
        if target in inputs:
            raise SpectokError(f"refusing to write {dest}: it is the input {f} (choose another -o)")
        if target != root and root not in target.parents:
            raise SpectokError(f"refusing to write {dest}: it is outside -o {out}")
        if target in written:
            raise SpectokError(f"inputs {written[target]} and {f} would both write {dest}")
        written[target] = f
        plan[f] = dest
    return plan


def pending(files: list[tuple[Path, Path]], plan: dict[Path, Path], overwrite: bool
            ) -> tuple[list[tuple[Path, Path]], int]:
    """The inputs still to do, and how many were skipped because their output exists. Outputs are
    written to a temporary name and renamed, so one that exists is complete; the temporary files
    of a killed earlier run are removed here."""
    from collections import defaultdict

    from spectok.fsutil import remove_stale_temps

    names = defaultdict(set)
    for dest in plan.values():
        names[dest.parent].add(dest.name)
    for folder, these in names.items():
        remove_stale_temps(folder, these)
    if overwrite:
        return files, 0
    todo = [item for item in files if not plan[item[0]].exists()]
    return todo, len(files) - len(todo)


def _load_pipeline(args: argparse.Namespace, with_vocoder: bool):
    from spectok.pipeline import Pipeline

    tok, voc = load_models(args, with_vocoder)
    return Pipeline(tok, voc, chunk_seconds=args.chunk_seconds, batch_size=args.batch_size)


def _batched_audio(pipe, files: list[tuple[Path, Path]], runner: Runner,
                   handle: Callable[[list[tuple[Path, Path]], list], None]) -> None:
    """Load audio files a batch at a time; long files go through ``encode_reader`` (streamed) one by one.

    ``handle(items, token_files, waveforms)`` receives the files that encoded, their TokenFiles and
    their waveforms at the pipeline's rate (``None`` for a long file, which was never loaded whole).
    """
    from spectok.audio.io import AudioReader

    batch: list[tuple[Path, Path]] = []
    wavs = []

    def flush() -> None:
        if not batch:
            return
        try:
            tokens, kept = pipe.encode(wavs, pipe.sample_rate), list(zip(batch, wavs))
        except Exception:  # one bad item must not sink the batch: retry one by one
            tokens, kept = [], []
            for item, w in zip(batch, wavs):
                try:
                    tokens.append(pipe.encode(w, pipe.sample_rate))
                    kept.append((item, w))
                except Exception as e:
                    runner.fail(item[0], e)
        items, audio = [k[0] for k in kept], [k[1] for k in kept]
        for (f, _), t in zip(items, tokens):
            t.metadata["source"] = f.name
        _guard(runner, items, lambda: handle(items, tokens, audio))
        batch.clear()
        wavs.clear()

    for item in files:
        path = item[0]
        try:
            with AudioReader(path) as reader:  # the file is opened once
                n = round(reader.num_samples * pipe.sample_rate / reader.sample_rate)
                if pipe.is_long(n):
                    tf = pipe.encode_reader(reader, {"source": path.name})
                    _guard(runner, [item], lambda tf=tf, item=item: handle([item], [tf], [None]))
                    continue
                wav = reader.read_all(pipe.sample_rate)
        except Exception as e:
            runner.fail(path, e)
            continue
        batch.append(item)
        wavs.append(wav)
        if len(batch) >= pipe.batch_size:
            flush()
    flush()


def _guard(runner: Runner, items: list[tuple[Path, Path]], job: Callable[[], None]) -> None:
    try:
        job()
        runner.ok(len(items))
    except Exception as e:
        for f, _ in items:
            runner.fail(f, e)


# ---- commands -------------------------------------------------------------------------------
def _encode(args: argparse.Namespace) -> int:
    from spectok.audio.io import AUDIO_EXTENSIONS
    from spectok.tokens import write_npy, write_tokens

    files = collect_some(args.inputs, AUDIO_EXTENSIONS, "audio files")
    suffix = ".npy" if args.format == "npy" else ".sptk"
    plan = plan_outputs(files, args.out, suffix)
    pipe = _load_pipeline(args, with_vocoder=False)
    code_model = _encoding_code_model(args, pipe.tokenizer)
    files, existing = pending(files, plan, args.overwrite)
    runner = Runner("encode", len(files), args.quiet, args.out, existing)

    def write(items, tokens, _audio) -> None:
        for (path, _), tf in zip(items, tokens):
            dest = plan[path]
            write_npy(dest, tf.codes) if args.format == "npy" else write_tokens(dest, tf, code_model)

    _batched_audio(pipe, files, runner, write)
    return runner.finish()


def _encoding_code_model(args: argparse.Namespace, tokenizer):
    """The code model ``encode`` range-codes against (``--code-model``, or the release's with
    ``--entropy``), checked against the tokenizer before any work; None for bit-packed files."""
    from spectok.entropy import CodeModel, code_model_for

    if args.code_model is None and not args.entropy:
        return None
    if args.format == "npy":
        raise SpectokError("--entropy and --code-model write .sptk files; drop --format npy")
    model = CodeModel.load(args.code_model) if args.code_model else code_model_for(tokenizer.fingerprint())
    if model is None:
        raise SpectokError(f"{args.tokenizer}: no released code model for this tokenizer; fit one on its "
                           f"tokens with 'spectok code-model TOKENS -o FILE' and pass --code-model FILE")
    if model.codebook_sizes != tuple(tokenizer.codebook_sizes):
        raise SpectokError(f"{args.code_model or 'the released code model'}: a code model for codebooks "
                           f"{list(model.codebook_sizes)}, the tokenizer has {list(tokenizer.codebook_sizes)}")
    return model


def _read_token_file(path: Path, pipe, force: bool, code_model=None):
    from spectok.tokens import TokenFile, read_npy, read_tokens

    if path.suffix.lower() != ".npy":
        tf = read_tokens(path, code_model)
        tf.metadata.setdefault("source", path.name)
        return tf
    if not force:
        raise TokenFileError(f"{path}: a bare .npy array carries no tokenizer fingerprint or length; "
                             f"pass --force to decode it with this tokenizer")
    codes = read_npy(path)
    tok = pipe.tokenizer
    n = codes.shape[1] * pipe.time_downsample * pipe.hop_length
    return TokenFile(codes=codes, tokenizer_fingerprint=tok.fingerprint(), sample_rate=pipe.sample_rate,
                     frame_rate=tok.frame_rate, codebook_sizes=tuple(tok.codebook_sizes), num_samples=n,
                     metadata={**pipe.layout_metadata, "source": path.name})


def _decode(args: argparse.Namespace) -> int:
    from spectok.audio.io import save_audio
    from spectok.entropy import CodeModel

    files = collect_some(args.inputs, TOKEN_SUFFIXES, "token files (.sptk, .npy)")
    plan = plan_outputs(files, args.out, ".wav")
    pipe = _load_pipeline(args, with_vocoder=True)
    code_model = CodeModel.load(args.code_model) if args.code_model else None
    files, existing = pending(files, plan, args.overwrite)
    runner = Runner("decode", len(files), args.quiet, args.out, existing)
    for start in range(0, len(files), pipe.batch_size):
        group, tokens = [], []
        for path, rel in files[start:start + pipe.batch_size]:
            try:
                tf = _read_token_file(path, pipe, args.force, code_model)
                pipe.check_tokens(tf, args.force, name=str(path))
            except Exception as e:
                runner.fail(path, e)
                continue
            group.append((path, rel))
            tokens.append(tf)
        if not group:
            continue

        def job(group=group, tokens=tokens) -> None:
            short = [i for i, tf in enumerate(tokens) if not pipe.is_long_tokens(tf)]
            for i, wav in zip(short, pipe.decode([tokens[i] for i in short], force=args.force)):
                save_audio(plan[group[i][0]], wav, pipe.sample_rate)
            for (path, _), tf in zip(group, tokens):
                if pipe.is_long_tokens(tf):  # decoded and written block by block: never whole in memory
                    save_audio(plan[path], pipe.decode_blocks(tf, force=args.force), pipe.sample_rate)

        _guard(runner, group, job)
    return runner.finish()


def _reconstruct(args: argparse.Namespace) -> int:
    from spectok.audio.io import AUDIO_EXTENSIONS, save_audio

    files = collect_some(args.inputs, AUDIO_EXTENSIONS, "audio files")
    plan = plan_outputs(files, args.out, ".wav")
    pipe = _load_pipeline(args, with_vocoder=True)
    files, existing = pending(files, plan, args.overwrite)
    runner = Runner("reconstruct", len(files), args.quiet, args.out, existing)

    def write(items, tokens, audio) -> None:
        loaded = [i for i, source in enumerate(audio) if source is not None]
        for i, wav in zip(loaded, pipe.decode([tokens[i] for i in loaded])):
            save_audio(plan[items[i][0]], wav, pipe.sample_rate)
        for (path, _), tf, source in zip(items, tokens, audio):
            if source is None:  # a long file, never loaded whole: decoded and written block by block
                save_audio(plan[path], pipe.decode_blocks(tf), pipe.sample_rate)
            if args.plot:
                _plot_pair(pipe, path, tf, plan[path].with_suffix(".png"), source)

    _batched_audio(pipe, files, runner, write)
    return runner.finish()


def _plot_pair(pipe, path: Path, tf, png: Path, wav=None) -> None:
    """log-mel vs reconstruction vs difference, and the token map, for one file (``wav``: its audio at the
    pipeline's rate when already loaded; a long file is read again, in pieces)."""
    from spectok.audio.io import AudioReader
    from spectok.inference.chunking import ChunkedMel
    from spectok.plots import plot_reconstruction, plot_token_map

    if wav is not None:
        mel = pipe.log_mel(wav)
    else:
        with AudioReader(path) as reader:
            mel = ChunkedMel(pipe.mel, *pipe.reader_samples(reader)).all(pipe.chunk_frames)
    rec = pipe.decode_mel(tf.codes)[:, :mel.shape[-1]]
    plot_reconstruction(mel, rec, pipe.mel_config, png, title=path.name)
    plot_token_map(tf.codes, tf.frame_rate, tf.codebook_sizes, png.with_name(png.stem + ".tokens.png"),
                   mel=mel, mel_config=pipe.mel_config, title=path.name)
