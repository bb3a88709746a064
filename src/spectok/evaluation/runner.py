"""The evaluation loop: each utterance through the tokenizer and the vocoder, measured.

Per utterance (mono, resampled to the tokenizer's rate, trimmed as its prepared mel was)::

    wav ─mel─▶ M ─encode─▶ codes ─decode─▶ M̂ ─vocoder─▶ ŵ      "tokenized"
                └──────────────────────────vocoder─▶ w̃      "copy" (copy synthesis)

- ``tokenizer``: mel metrics of ``M̂`` against ``M``: the tokenizer's own loss, no vocoder.
- ``tokenized`` / ``copy``: mel metrics of the re-analysed output audio against ``M``, and
  the waveform metrics (PESQ, STOI, STFT LSD, DNSMOS) of ``ŵ`` / ``w̃`` against ``wav``.
- ``gap``: ``tokenized − copy`` for every metric both have: what tokenization costs on top
  of what the vocoder already loses.
- ``original``: DNSMOS of the reference itself (its ceiling), when DNSMOS is available.

Codes of the whole set are counted with :class:`~spectok.quantizers.CodebookStats`, per token
row (entropy bound) and per physical codebook (usage, dead codes; a grid's rows share one).
Speed is audio seconds per compute second, one utterance at a time (batch 1), after one
untimed warm-up; totals are divided, not per-utterance ratios averaged.

Unreadable files and utterances whose processing raises are listed in ``skipped``; a
metric that cannot be measured is recorded in the utterance's ``failures``; neither stops
the run. The waveform metrics run in a child process (:mod:`spectok.evaluation.isolation`): a
crash of a native library (PESQ, onnxruntime) or an out-of-memory kill there costs that
utterance's waveform metrics only.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from spectok.audio.io import AudioReader, save_audio
from spectok.audio.mel import INFERENCE_STFT_DTYPE, MelSpectrogram
from spectok.contracts import Tokenizer
from spectok.errors import SpectokError
from spectok.evaluation import metrics as M
from spectok.evaluation.aggregate import aggregate, rank, speed
from spectok.evaluation.isolation import CallFailed, Isolated, WorkerDied
from spectok.evaluation.results_file import ResultsFile, read_results
from spectok.evaluation.segments import SEGMENT_SECONDS, SampleWindow, combine_segments
from spectok.evaluation.sources import Collection, EvalItem
from spectok.inference.chunking import encoder_geometry, side_context
from spectok.memory import release_free_memory
from spectok.pipeline import Pipeline
from spectok.plots import plot_reconstruction
from spectok.quantizers.stats import CodebookStats, by_codebook


@dataclass
class Signals:
    """One utterance through both paths. Waveforms ``[T]`` float32 at the tokenizer's rate; mels ``[n_mels, T_f]``."""

    wav: np.ndarray
    source_rate: int
    mel: torch.Tensor
    mel_tokenized: torch.Tensor
    codes: torch.Tensor  # [1, K, T']
    wav_tokenized: np.ndarray
    wav_copy: np.ndarray
    timing: dict[str, float]


@dataclass
class EvalResult:
    """Everything the report writers need."""

    utterances: list[dict]
    skipped: list[dict]
    sources: list[dict]
    tokens: dict
    code_counts: list[np.ndarray]
    speed: dict
    aggregate: dict
    ranking: dict
    tokenizer: dict
    vocoder: dict
    examples: list[dict] = field(default_factory=list)
    dnsmos: bool = False


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return text if isinstance(e, SpectokError) else f"{type(e).__name__}: {text}"


def _finite(values: dict[str, float], group: str, failures: dict) -> dict[str, float]:
    """``values`` without non-finite entries, which are recorded in ``failures``."""
    for k, v in values.items():
        if not math.isfinite(v):
            failures[f"{group}/{k}"] = f"not finite ({v}): the output holds NaN or infinite values"
    return {k: v for k, v in values.items() if math.isfinite(v)}


class Evaluator:
    """Runs utterances through a tokenizer and a vocoder that share one mel front end.

    Args:
        tokenizer: an :class:`~spectok.contracts.AudioTokenizer` (put in eval mode).
        vocoder: a :class:`~spectok.contracts.Vocoder` with the same ``mel_config``.
        device: where the models run; metrics run on the CPU.
        dnsmos: measure DNSMOS; ``None``: when ``speechmos`` is installed.
        n_cepstra: MFCC-distance order (cepstra ``c_1 .. c_n``).
        isolate: run the waveform metrics (PESQ, STOI, DNSMOS: native libraries) in a child process
            (:class:`~spectok.evaluation.isolation.Isolated`), so a crash costs one utterance's
            metrics, recorded in its ``failures``, and the run goes on.

    Raises:
        SpectokError: the tokenizer has no mel config; MelMismatchError when the front ends differ.
    """

    def __init__(self, tokenizer: nn.Module, vocoder: nn.Module, device: str | torch.device = "cpu",
                 dnsmos: bool | None = None, n_cepstra: int = 24, isolate: bool = True) -> None:
        self.mel_config = tokenizer.mel_config
        if self.mel_config is None:
            raise SpectokError(f"{type(tokenizer).__name__} has no mel config: spectok eval is for audio tokenizers")
        vocoder.mel_config.check_compatible(self.mel_config, what="vocoder and tokenizer mel configs",
                                            sides=("vocoder", "tokenizer"))
        self.device = torch.device(device)
        self.tokenizer = tokenizer.to(self.device).eval()
        self.vocoder = vocoder.to(self.device).eval()
        # the front end of `spectok encode` (Pipeline): a report measures the codes users get
        self.mel = MelSpectrogram(self.mel_config, stft_dtype=INFERENCE_STFT_DTYPE).to(self.device)
        self.stats = CodebookStats(list(tokenizer.codebook_sizes))  # per token row: the entropy bound
        self.codebook_sizes, self.rows_per_codebook = shared_codebooks(tokenizer)
        self.codebooks = CodebookStats(self.codebook_sizes)  # per physical codebook: usage, dead codes
        self.dnsmos = M.dnsmos_available() if dnsmos is None else dnsmos
        self.n_cepstra = n_cepstra
        self.sample_rate = self.mel_config.sample_rate
        self.isolate = isolate
        self._worker = Isolated() if isolate else None

    # ---- signals -----------------------------------------------------------------------------
    def _timed(self, fn: Callable[[], Any]) -> tuple[Any, float]:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        t0 = time.perf_counter()
        out = fn()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return out, time.perf_counter() - t0

    @contextlib.contextmanager
    def reading(self, item: EvalItem) -> Iterator[tuple[Callable[[int, int], np.ndarray], int, int]]:
        """``(read(a, b), n, source rate)`` of ``item``'s ``n`` samples at the tokenizer's rate, read
        from its file block by block: ``read`` gives samples ``[a, b)`` for requests that never move
        back, so a long recording is never whole in memory. ``n`` comes from the header (a resampler's
        last sample or two, where the stream ends short of it, are zeros); AudioError when unreadable."""
        with AudioReader(item.path) as reader:
            rate = reader.sample_rate
            n = reader.num_samples if rate == self.sample_rate else round(reader.num_samples * self.sample_rate / rate)
            start, end = item.bounds(self.sample_rate, n)
            window = SampleWindow(reader.blocks(self.sample_rate))
            yield (lambda a, b: window.take(start + a, start + b)), end - start, rate

    @torch.no_grad()
    def encode(self, wav: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``[T]`` waveform -> ``(log-mel [1, n_mels, F], codes [1, K, T'])`` on :attr:`device`."""
        mel = self.mel(torch.from_numpy(wav).to(self.device))
        return mel, self.tokenizer.encode(mel)

    @torch.no_grad()
    def synthesize(self, wav: np.ndarray, source_rate: int, keep: tuple[int, int] | None = None,
                   start: int = 0) -> Signals:
        """Both paths for one waveform ``[T]`` at the tokenizer's rate.

        ``keep=(k0, k1)``: ``wav`` is a piece of a longer clip, starting ``start`` samples into it,
        with context on both sides (see :meth:`segments`); only samples ``[k0, k1)`` of the piece,
        and their frames and token columns, are returned. ``start`` and ``k0`` are multiples of a
        token column's samples, so the returned signals equal those of the whole clip's processing.
        """
        silence = self.mel_config.silence
        (mel, codes), t_enc = self._timed(lambda: self.encode(wav))
        frames = mel.shape[-1]
        mel_tok, t_dec = self._timed(lambda: self.tokenizer.decode(codes))
        mel_tok = mel_tok[..., :frames]
        if mel_tok.shape[-1] < frames:
            mel_tok = nn.functional.pad(mel_tok, (0, frames - mel_tok.shape[-1]), value=silence)
        hop, step = self.mel_config.hop_length, self.mel_config.hop_length * self.tokenizer.time_downsample
        wav_tok, t_voc_tok = self._timed(lambda: self.vocoder.vocode(mel_tok, start // hop))
        wav_copy, t_voc = self._timed(lambda: self.vocoder.vocode(mel, start // hop))
        k0, k1 = (0, len(wav)) if keep is None else keep
        f0, f1 = k0 // hop, min(frames, -(-k1 // hop))
        c0, c1 = k0 // step, min(codes.shape[-1], -(-k1 // step))
        n = k1 - k0
        timing = {"audio_s": n / self.sample_rate, "encode_s": t_enc, "tokenizer_decode_s": t_dec,
                  "decode_s": t_dec + t_voc_tok, "vocoder_s": t_voc}
        return Signals(wav[k0:k1], source_rate, mel[0, :, f0:f1].cpu(), mel_tok[0, :, f0:f1].float().cpu(),
                       codes[..., c0:c1].cpu(), Pipeline.fit_length(wav_tok[0, k0:], n),
                       Pipeline.fit_length(wav_copy[0, k0:], n),
                       timing)

    def segments(self, n: int) -> list[tuple[int, int, int, int]]:
        """How a clip of ``n`` samples is processed: ``[(a, b, k0, k1)]``, each piece ``wav[a:b]`` run
        through both paths, of which samples ``[a + k0, a + k1)`` are kept.

        A clip up to :data:`SEGMENT_SECONDS` is one piece. A longer one is cut into equal segments
        of at most that length, on token-column boundaries, each run with :meth:`context_samples`
        of audio on both sides: the models are time-local, so every kept sample, frame and code
        equals the whole clip's, while memory stays that of one segment.
        """
        size = int(SEGMENT_SECONDS * self.sample_rate)
        if n <= size:
            return [(0, n, 0, n)]
        step = self.mel_config.hop_length * self.tokenizer.time_downsample
        k = -(-n // size)
        bounds = [min(n, round(i * n / k / step) * step) for i in range(k)] + [n]
        ctx = self.context_samples()
        out = []
        for s0, s1 in zip(bounds[:-1], bounds[1:]):
            a, b = max(0, s0 - ctx), min(n, s1 + ctx)
            out.append((a, b, s0 - a, s1 - a))
        return out

    def context_samples(self) -> int:
        """Audio on each side of a segment that makes its kept part exact: the encoder's, the
        decoder's and the vocoder's reach added up (declared receptive fields; 2 s each where a model
        states none), rounded up to whole token columns."""
        hop, d = self.mel_config.hop_length, self.tokenizer.time_downsample
        _, enc_rf = encoder_geometry(self.tokenizer)
        default = int(2 * self.mel_config.frame_rate)
        frames = (side_context(enc_rf, default) + side_context(self.tokenizer.decoder_receptive_field, default) * d
                  + side_context(self.vocoder.receptive_field, default) + 2 * d)
        return -(-frames // d) * d * hop

    # ---- metrics -----------------------------------------------------------------------------
    def _waveform(self, ref: np.ndarray | None, est: np.ndarray, narrowband: bool, out: dict, failures: dict,
                  notes: dict, group: str) -> None:
        """Waveform metrics (:func:`~spectok.evaluation.metrics.waveform_metrics`) into ``out``, their
        notes into ``notes`` and what failed into ``failures``; run in the isolated child when
        :attr:`isolate`, so a crash of a native library costs this utterance's metrics only."""
        args = (ref, est, self.sample_rate, narrowband, self.mel_config.fmax, self.dnsmos)
        try:
            measured = self._worker.call(M.waveform_metrics, *args) if self._worker else M.waveform_metrics(*args)
        except (WorkerDied, CallFailed) as e:
            failures[f"{group}/waveform"] = str(e)
            return
        for name, m in measured.items():
            if m.ok:
                out[name] = m.value
                if m.note:
                    notes[name] = m.note
            else:
                failures[f"{group}/{name}"] = m.failure

    def _mel_of(self, wav: np.ndarray) -> torch.Tensor:
        return self.mel(torch.from_numpy(wav).to(self.device))[0].cpu()

    def measure(self, item: EvalItem, s: Signals) -> dict:
        """The per-utterance record (see the module doc for its groups)."""
        power = self.mel_config.power
        narrowband = min(s.source_rate, self.sample_rate) < 16000
        rec: dict = {"id": item.id, "path": str(item.path), "seconds": len(s.wav) / self.sample_rate,
                     "source_sample_rate": s.source_rate, "frames": int(s.mel.shape[-1]),
                     "token_columns": int(s.codes.shape[-1]), "failures": {}, "notes": {}, "flags": []}
        rec["tokenizer"] = _finite(M.mel_metrics(s.mel, s.mel_tokenized, power, self.n_cepstra), "tokenizer",
                                   rec["failures"])
        for group, est in (("tokenized", s.wav_tokenized), ("copy", s.wav_copy)):
            try:
                values = _finite(M.mel_metrics(s.mel, self._mel_of(est), power, self.n_cepstra), group,
                                 rec["failures"])
            except Exception as e:  # never abort the run on a metric
                values = {}
                rec["failures"][f"{group}/mel"] = _reason(e)
            self._waveform(s.wav, est, narrowband, values, rec["failures"], rec["notes"], group)
            rec[group] = values
        rec["gap"] = {k: rec["tokenized"][k] - rec["copy"][k] for k in rec["tokenized"] if k in rec["copy"]}
        rec["original"] = {}
        if self.dnsmos:  # the reference's own score: its ceiling
            self._waveform(None, s.wav, narrowband, rec["original"], rec["failures"], rec["notes"], "original")
        if any("too short" in r for r in rec["failures"].values()):
            rec["flags"].append("short")
        if narrowband:
            rec["flags"].append("narrowband")
        rec["timing"] = s.timing
        return rec

    def close(self) -> None:
        """Stop the metric process (a later measurement starts a new one)."""
        if self._worker is not None:
            self._worker.close()

    def clip(self, item: EvalItem, wav: np.ndarray, source_rate: int, measure: bool = True
             ) -> tuple[dict | None, torch.Tensor]:
        """``(record, codes [1, K, T'])`` of one clip ``wav [T]``, processed segment by segment
        (:meth:`segments`); a long clip's record holds the length-weighted means of its segments'
        metrics. With ``measure=False`` only the codes (``record`` is None)."""
        return self._run_segments(item, lambda a, b: wav[a:b], len(wav), source_rate, measure)

    def clip_file(self, item: EvalItem, measure: bool = True) -> tuple[dict | None, torch.Tensor]:
        """:meth:`clip` of ``item`` read from its file block by block (:meth:`reading`): only the
        segment being measured and its context are in memory."""
        with self.reading(item) as (read, n, rate):
            return self._run_segments(item, read, n, rate, measure)

    def _run_segments(self, item: EvalItem, read: Callable[[int, int], np.ndarray], n: int, source_rate: int,
                      measure: bool) -> tuple[dict | None, torch.Tensor]:
        step = self.mel_config.hop_length * self.tokenizer.time_downsample
        parts, codes = [], []
        for a, b, k0, k1 in self.segments(n):
            piece = read(a, b)
            if measure:
                s = self.synthesize(piece, source_rate, keep=(k0, k1), start=a)
                parts.append(self.measure(item, s))
                codes.append(s.codes)
            else:
                codes.append(self.encode(piece)[1][..., k0 // step:-(-k1 // step)].cpu())
            release_free_memory()  # a long clip's segments would otherwise fragment the heap upward
        codes = torch.cat(codes, dim=-1)
        if not measure:
            return None, codes
        return (parts[0] if len(parts) == 1 else combine_segments(parts)), codes

    # ---- the loop ----------------------------------------------------------------------------
    def warm_up(self, items: Iterable[EvalItem]) -> None:
        """One untimed pass over the first readable item (up to 1 s), so timings exclude lazy set-up."""
        for item in items:
            try:
                with self.reading(item) as (read, n, rate):
                    self.synthesize(read(0, min(n, self.sample_rate)), rate)
                return
            except Exception:
                continue

    def identity(self) -> dict:
        """What makes two runs' per-utterance records comparable: the models (their configs and a
        digest of their weights: two trainings of one config share a fingerprint) and the settings."""
        voc = self.vocoder
        return {"tokenizer": self.tokenizer.fingerprint(), "tokenizer_weights": _weights_digest(self.tokenizer),
                "vocoder": type(voc).__name__,
                "vocoder_settings": {k: v for k, v in vars(voc).items()
                                     if not k.startswith("_") and isinstance(v, (int, float, str, bool))},
                "vocoder_weights": _weights_digest(voc), "dnsmos": self.dnsmos, "n_cepstra": self.n_cepstra}

    def run(self, collection: Collection, progress: bool = False, results: Path | None = None
            ) -> tuple[list[dict], list[dict]]:
        """Evaluate every item; returns ``(utterance records, skipped)`` (skipped includes the collection's).

        ``results``: a JSONL file that receives each record as soon as it is measured (first line:
        :meth:`identity`). When it already holds records of the same models and settings (a killed
        run), those utterances are not measured again, only re-encoded for the codebook figures.
        """
        from tqdm import tqdm

        identity = self.identity() if results is not None else None
        done = read_results(results, identity) if results is not None else {}
        sink = ResultsFile(results, identity, done) if results is not None else None
        self.warm_up(collection.items[:3])
        records, skipped = [], list(collection.skipped)
        try:
            for item in tqdm(collection.items, desc="eval", unit="utt", disable=not progress, dynamic_ncols=True):
                key = f"{item.id}\t{item.path}"
                try:
                    record, codes = self.clip_file(item, measure=key not in done)
                except Exception as e:
                    reason = _reason(e)
                    if reason.startswith(str(item.path)):
                        reason = reason[len(str(item.path)):].lstrip(": ")
                    skipped.append({"id": item.id, "path": str(item.path), "reason": reason})
                    continue
                self.stats.update(codes)
                self.codebooks.update(by_codebook(codes, self.rows_per_codebook))
                if key in done:
                    records.append(done[key])
                    continue
                records.append(record)
                if sink is not None:
                    sink.write(record)
        finally:
            if sink is not None:
                sink.close()
        return records, skipped

    def token_summary(self) -> dict:
        """Codebook health over the whole set, the nominal bitrate and the entropy bound (bits/s).

        Usage, dead codes and codebook perplexity count the physical codebooks (a grid's rows share
        one); the entropy bound sums the entropies of the K token rows, each coded on its own.
        """
        fr = float(self.tokenizer.frame_rate)
        sizes = list(self.tokenizer.codebook_sizes)
        summary = self.stats.summary(fr)
        k, n = len(sizes), len(self.codebook_sizes)
        rows = [summary[f"row{i}/entropy_bits"] for i in range(k)] if k > 1 else [summary["entropy_bits"]]
        cb = self.codebooks.summary()
        cb_h = [cb[f"row{i}/entropy_bits"] for i in range(n)] if n > 1 else [cb["entropy_bits"]]
        cb_used = [cb[f"row{i}/used_fraction"] for i in range(n)] if n > 1 else [cb["used_fraction"]]
        return {"frame_rate": fr, "codebook_sizes": sizes, "rows": k,
                "nominal_bits_per_second": M.nominal_bitrate(fr, sizes),
                "entropy_bits_per_second": M.entropy_bitrate(fr, rows),
                "entropy_bits_per_column": summary["entropy_bits"], "perplexity_per_column": summary["perplexity"],
                "columns_counted": int(summary["count"]),
                "row_perplexity": [2.0**h for h in rows], "row_entropy_bits": rows,
                "row_used_fraction": ([summary[f"row{i}/used_fraction"] for i in range(k)] if k > 1
                                      else [summary["used_fraction"]]),
                "codebooks": n, "codebook_entries": list(self.codebook_sizes),
                "rows_per_codebook": self.rows_per_codebook, "used_fraction": cb["used_fraction"],
                "dead_codes": int(cb["dead_codes"]), "total_codes": int(sum(self.codebook_sizes)),
                "codebook_perplexity": [2.0**h for h in cb_h], "codebook_used_fraction": cb_used}


def _weights_digest(model: nn.Module) -> str:
    """SHA-256 (16 hex digits) of a model's state: every tensor's name, dtype, shape and bytes."""
    import hashlib

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def shared_codebooks(tokenizer: Tokenizer) -> tuple[list[int], int]:
    """``(sizes of the physical codebooks, token rows per codebook)``: the declared token layout."""
    return [int(k) for k in tokenizer.codebooks], int(tokenizer.rows_per_codebook)


def safe_name(id: str) -> str:
    """A file-name-safe form of an utterance id."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", id).strip("._") or "utt"


def write_examples(ev: Evaluator, items: dict[str, EvalItem], ranking: dict, out_dir: Path) -> list[dict]:
    """Audio (``audio/NAME.{original,copy,tokenized}.wav``) and a mel figure (``plots/NAME.mel.png``)
    for the best, median and worst utterances, re-synthesised (the models are deterministic)."""
    examples, done = [], {}
    for which in ("best", "median", "worst"):
        id = ranking.get(which)
        if id is None:
            continue
        if id not in done:
            name = safe_name(id)
            try:
                with ev.reading(items[id]) as (read, n, rate):  # a long clip's example is its first segment
                    a, b, k0, k1 = ev.segments(n)[0]
                    s = ev.synthesize(read(a, b), rate, keep=(k0, k1), start=a)
                audio = {}
                for kind, x in (("original", s.wav), ("copy", s.wav_copy), ("tokenized", s.wav_tokenized)):
                    save_audio(out_dir / "audio" / f"{name}.{kind}.wav", x, ev.sample_rate)
                    audio[kind] = f"audio/{name}.{kind}.wav"
                plot = plot_reconstruction(s.mel, s.mel_tokenized, ev.mel_config, out_dir / "plots" / f"{name}.mel.png",
                                           title=f"{id}: reference vs tokenizer output")
                done[id] = {"audio": audio, "mel_plot": str(Path(plot).relative_to(out_dir))}
            except Exception as e:  # an example that cannot be redone leaves the report without it
                done[id] = {"audio": {}, "mel_plot": None, "failure": _reason(e)}
        examples.append({"rank": which, "id": id, **done[id]})
    return examples


def evaluate(tokenizer: nn.Module, vocoder: nn.Module, collection: Collection, out_dir: str | Path,
             tokenizer_info: dict, vocoder_info: dict, device: str = "cpu", dnsmos: bool | None = None,
             progress: bool = False) -> EvalResult:
    """Evaluate ``collection`` and write the example audio and figures under ``out_dir``."""
    ev = Evaluator(tokenizer, vocoder, device=device, dnsmos=dnsmos)
    out = Path(out_dir)
    try:
        records, skipped = ev.run(collection, progress=progress, results=out / "utterances.jsonl")
    finally:
        ev.close()
    ranking = rank(records)
    examples = write_examples(ev, {i.id: i for i in collection.items}, ranking, out) if records else []
    return EvalResult(utterances=records, skipped=skipped, sources=collection.sources, tokens=ev.token_summary(),
                      code_counts=[c.cpu().numpy() for c in ev.codebooks.counts],
                      speed=speed(records, ev.device) if records else {}, aggregate=aggregate(records),
                      ranking=ranking, tokenizer=tokenizer_info, vocoder=vocoder_info, examples=examples,
                      dnsmos=ev.dnsmos)


def describe_model(model: nn.Module, source: str | Path) -> dict:
    """Identity of a model for the report: source, class, fingerprints, config (and file SHA-256)."""
    import hashlib
    import json

    header = getattr(model, "artifact_header", None) or {}
    config = getattr(model, "hparams", None)
    if config is None:  # e.g. Griffin-Lim: its public scalar settings
        config = {k: v for k, v in vars(model).items()
                  if not k.startswith("_") and k != "training" and isinstance(v, (int, float, str, bool))}
    fp = model.fingerprint() if isinstance(model, Tokenizer) else header.get("fingerprint")
    if fp is None:
        fp = hashlib.sha256(json.dumps([type(model).__name__, config], sort_keys=True, default=str)
                            .encode()).hexdigest()[:16]
    info = {"source": str(source), "class": header.get("class", type(model).__name__), "fingerprint": fp,
            "mel_fingerprint": model.mel_config.fingerprint() if model.mel_config is not None else None,
            "config": config,
            "parameters": sum(p.numel() for p in model.parameters())}
    p = Path(source)
    if p.is_file():
        info["file_sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
    if header.get("training"):
        info["training"] = header["training"]
    if isinstance(model, Tokenizer):
        info["codebook_sizes"] = list(model.codebook_sizes)
        if model.mel_config is not None:  # images have no rate
            info["frame_rate"] = float(model.frame_rate)
            info["bitrate"] = float(model.bitrate)
    return info
