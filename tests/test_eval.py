"""spectok eval on real clips with a tiny untrained conv tokenizer and Griffin-Lim (few iterations)."""

from __future__ import annotations

import base64
import json
import math
import re
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import shared_path

from spectok.audio.io import load_audio
from spectok.cli.main import main

GL = ["--gl-iters", "4", "-q"]


@pytest.fixture(scope="module")
def tokenizer_path(tmp_path_factory):
    """A tiny ConvVQVAE1d (hifigan-22k front end, 64 codes) written as a release artifact."""
    from spectok.artifacts import save_release
    from spectok.tokenizers import ConvVQVAE1d

    torch.manual_seed(0)
    tok = ConvVQVAE1d(mel="hifigan-22k", channels=(16, 16, 16), strides=(2, 2), num_res_blocks=1, norm="none",
                      quantizer={"type": "vq", "dim": 8, "codebook_size": 64})
    return save_release(tok, tmp_path_factory.mktemp("tok") / "tok.safetensors")


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    """Two 1.5 s LJSpeech clips, a 16 kHz LibriSpeech flac, an 8 kHz FSDD digit, a 0.15 s snippet
    (too short for PESQ) and a corrupt .wav."""
    root = tmp_path_factory.mktemp("audio")
    lj = sorted(shared_path("LJSpeech-1.1", "wavs").glob("*.wav"))
    for name, src in (("lj1", lj[0]), ("lj2", lj[1])):
        wav, sr = load_audio(src)
        sf.write(root / f"{name}.wav", wav[sr // 4: 7 * sr // 4], sr)
    wav, sr = load_audio(sorted(shared_path("LibriSpeech").rglob("*.flac"))[0])
    (root / "libri").mkdir()
    sf.write(root / "libri" / "utt.flac", wav[sr: sr * 5 // 2], sr)
    wav, sr = load_audio(sorted(shared_path("free-spoken-digit-dataset", "recordings").glob("*.wav"))[0])
    sf.write(root / "digit8k.wav", wav, sr)
    wav, sr = load_audio(lj[2])
    sf.write(root / "short.wav", wav[sr: sr + sr * 15 // 100], sr)
    (root / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot a real wave file")
    (root / "notes.txt").write_text("not audio: ignored")
    return root


@pytest.fixture(scope="module")
def report_dir(tokenizer_path, audio_dir, tmp_path_factory):
    """The Python API on the audio folder (DNSMOS off, a cheap Griffin-Lim: 4 iterations, no NNLS)."""
    from spectok.evaluation.html import write_report
    from spectok.evaluation.runner import describe_model, evaluate
    from spectok.evaluation.sources import collect
    from spectok.tokenizers import load_tokenizer
    from spectok.vocoders import GriffinLim

    out = tmp_path_factory.mktemp("report")
    tok = load_tokenizer(tokenizer_path)
    voc = GriffinLim(tok.mel_config, n_iter=4, nnls_iters=0)
    result = evaluate(tok, voc, collect([audio_dir]), out, describe_model(tok, tokenizer_path),
                      describe_model(voc, "griffin-lim"), dnsmos=False)
    write_report(result, out, options={"test": True})
    return out


@pytest.fixture(scope="module")
def report(report_dir) -> dict:
    return json.loads((report_dir / "report.json").read_text())


def by_id(report: dict) -> dict[str, dict]:
    return {u["id"]: u for u in report["utterances"]}


def test_report_identifies_models_and_data(report, tokenizer_path):
    from spectok import __version__
    from spectok.artifacts import read_header
    from spectok.tokenizers import load_tokenizer

    tok = load_tokenizer(tokenizer_path)
    assert report["spectok_version"] == __version__
    assert report["tokenizer"]["fingerprint"] == read_header(tokenizer_path)["fingerprint"] == tok.fingerprint()
    assert report["tokenizer"]["file_sha256"] and report["tokenizer"]["mel_fingerprint"] == tok.mel_config.fingerprint()
    assert report["vocoder"]["class"] == "GriffinLim" and report["vocoder"]["config"]["nnls_iters"] == 0
    assert report["vocoder"]["mel_fingerprint"] == tok.mel_config.fingerprint()
    (src,) = report["data"]["sources"]
    assert src["kind"] == "audio-folder" and src["items"] == 6  # notes.txt is not audio


def test_corrupt_file_is_listed_and_the_rest_evaluated(report):
    assert sorted(by_id(report)) == ["digit8k", "libri/utt", "lj1", "lj2", "short"]
    (skipped,) = report["data"]["skipped"]
    assert skipped["id"] == "corrupt" and "cannot decode audio" in skipped["reason"]


def test_short_and_narrowband_clips_are_marked_not_fatal(report):
    u = by_id(report)
    short = u["short"]
    assert "short" in short["flags"] and "too short for PESQ" in short["failures"]["tokenized/pesq"]
    assert "pesq" not in short["tokenized"] and math.isfinite(short["tokenizer"]["mfcc_dist_db"])
    digit = u["digit8k"]
    assert "narrowband" in digit["flags"] and digit["source_sample_rate"] == 8000
    assert digit["notes"]["pesq"] == "narrowband (8 kHz)"
    assert "narrowband" not in u["libri/utt"]["flags"] and "pesq" not in u["libri/utt"]["notes"]
    assert report["aggregate"]["tokenized"]["pesq"]["failed"] == 1


def test_gap_is_tokenized_minus_copy_and_aggregates_count_utterances(report):
    for u in report["utterances"]:
        assert set(u["gap"]) == set(u["tokenized"]) & set(u["copy"])
        for k, v in u["gap"].items():
            assert v == pytest.approx(u["tokenized"][k] - u["copy"][k])
    agg = report["aggregate"]
    pesq = [u["tokenized"]["pesq"] for u in report["utterances"] if "pesq" in u["tokenized"]]
    assert agg["tokenized"]["pesq"]["n"] == len(pesq) and agg["tokenized"]["pesq"]["mean"] == pytest.approx(
        np.mean(pesq))
    s = agg["tokenizer"]["mfcc_dist_db"]
    assert s["n"] == 5 and s["ci_low"] < s["mean"] < s["ci_high"]
    # an untrained tokenizer loses far more than the vocoder: copy synthesis scores higher
    assert agg["gap"]["pesq"]["mean"] < 0 and agg["gap"]["mfcc_dist_db"]["mean"] > 0


def test_tokens_and_speed(report, tokenizer_path):
    from spectok.tokenizers import load_tokenizer

    tok = load_tokenizer(tokenizer_path)
    t = report["tokens"]
    assert t["nominal_bits_per_second"] == pytest.approx(tok.bitrate)
    assert t["columns_counted"] == sum(u["token_columns"] for u in report["utterances"])
    assert 0 < t["entropy_bits_per_second"] <= t["nominal_bits_per_second"]
    assert t["dead_codes"] == round(64 * (1 - t["used_fraction"]))
    sp = report["speed"]
    assert sp["audio_seconds"] == pytest.approx(sum(u["seconds"] for u in report["utterances"]))
    assert all(sp[k] > 0 for k in ("encode_x_realtime", "decode_x_realtime", "vocoder_x_realtime"))


def test_examples_markdown_and_html_are_written(report, report_dir):
    rk = report["ranking"]
    assert rk["metric"] == "tokenizer/mfcc_dist_db"  # one clip has no PESQ, so PESQ cannot rank them all
    mcd = {u["id"]: u["tokenizer"]["mfcc_dist_db"] for u in report["utterances"]}
    assert mcd[rk["best"]] == min(mcd.values()) and mcd[rk["worst"]] == max(mcd.values())
    assert [e["rank"] for e in report["examples"]] == ["best", "median", "worst"]
    for ex in report["examples"]:
        seconds = by_id(report)[ex["id"]]["seconds"]
        for kind in ("original", "copy", "tokenized"):
            wav, sr = load_audio(report_dir / ex["audio"][kind])
            assert sr == 22050 and len(wav) == round(seconds * sr)
        assert (report_dir / ex["mel_plot"]).stat().st_size > 0
    md = (report_dir / "report.md").read_text()
    assert "| PESQ (MOS-LQO) ↑ |" in md and "corrupt.wav" in md and "## Tokens" in md
    page = (report_dir / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 4 and page.count("<audio") == 9


def test_cli_on_a_prepared_folder_uses_its_test_split_and_trim(tokenizer_path, audio_dir, tmp_path):
    """``spectok eval`` end to end: the test split of a prepared folder, cut as prepared, DNSMOS when installed."""
    from spectok.data.corpora import CorpusItem
    from spectok.data.prepare import open_prepared, prepare
    from spectok.evaluation.metrics import dnsmos_available

    items = [CorpusItem(id=name, path=audio_dir / f"{name}.wav", speaker="LJ", split=split)
             for name, split in (("lj1", "train"), ("lj2", "test"))]
    prepared = tmp_path / "prepared"
    assert prepare(items, prepared, mel="hifigan-22k", trim_silence_db=20, progress=False).done == 2
    row = open_prepared(prepared)["lj2"]
    assert row["trim_end"] - row["trim_start"] < 1.5 * 22050  # the trim cut something off
    out = tmp_path / "rep"
    assert main(["eval", "-t", str(tokenizer_path), str(prepared), "-o", str(out), *GL]) == 0
    rep = json.loads((out / "report.json").read_text())
    (src,) = rep["data"]["sources"]
    assert src["kind"] == "prepared" and src["split"] == "test" and src["items"] == 1
    (u,) = rep["utterances"]
    assert u["id"] == "lj2" and u["frames"] == row["frames"] and u["seconds"] == pytest.approx(row["seconds"], abs=1e-3)
    assert rep["options"]["gl_iters"] == 4 and rep["vocoder"]["config"]["n_iter"] == 4
    assert rep["dnsmos"] == dnsmos_available()
    if rep["dnsmos"]:
        for group in ("tokenized", "copy", "original"):
            assert 1 <= u[group]["dnsmos_ovrl"] <= 5
        assert "dnsmos_ovrl" in rep["aggregate"]["gap"]
    for name in ("report.json", "report.md", "report.html"):
        assert (out / name).stat().st_size > 0


def test_metric_failures_never_abort_the_run(tmp_path, audio_dir):
    """A vocoder that emits NaN: every waveform metric fails with a reason, the report is still valid JSON."""
    from spectok.audio.mel import MelConfig
    from spectok.evaluation.html import write_report
    from spectok.evaluation.runner import describe_model, evaluate
    from spectok.evaluation.sources import collect
    from spectok.tokenizers import ConvVQVAE1d
    from spectok.vocoders import Vocoder

    class NaNVocoder(Vocoder):
        def __init__(self) -> None:
            super().__init__()
            self.mel_config = MelConfig.preset("hifigan-22k")

        def forward(self, mel):
            return torch.full((mel.shape[0], mel.shape[-1] * 256), float("nan"))

    tok = ConvVQVAE1d(channels=(16, 16, 16), strides=(2, 2), num_res_blocks=1, norm="none",
                      quantizer={"type": "vq", "dim": 8, "codebook_size": 16}).eval()
    voc = NaNVocoder()
    result = evaluate(tok, voc, collect([audio_dir / "lj1.wav"]), tmp_path, describe_model(tok, "tiny"),
                      describe_model(voc, "nan"), dnsmos=False)
    (u,) = result.utterances
    assert "NaN" in u["failures"]["tokenized/pesq"] and "NaN" in u["failures"]["copy/stoi"]
    assert "not finite" in u["failures"]["copy/mfcc_dist_db"] and math.isfinite(u["tokenizer"]["mfcc_dist_db"])
    paths = write_report(result, tmp_path)
    data = json.loads(paths["json"].read_text(), parse_constant=lambda c: pytest.fail(f"{c} in report.json"))
    assert data["aggregate"]["copy"] == {} and data["aggregate"]["tokenizer"]["mfcc_dist_db"]["n"] == 1


# ---- the page in a real browser --------------------------------------------------------------
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium(page: Path, work: Path, *extra: str) -> subprocess.CompletedProcess:
    """Headless Chromium on ``page`` with a fresh profile; its net log goes to ``work/netlog.json``."""
    work.mkdir(parents=True, exist_ok=True)
    cmd = [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={work / 'profile'}",
           f"--log-net-log={work / 'netlog.json'}", *extra, page.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=True)


def _page_requests(netlog: Path) -> list[str]:
    """URLs the *page* asked the network stack for.

    Chromium's net log records every URL request it starts with its initiator. The browser's
    own background requests (time sync, updates, which it makes despite the flags) have no
    initiating origin ("not an origin"); anything a document asks for carries the document's
    origin ("null" for a file:// page). file:// and data: URLs never reach the network stack.
    """
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [e["params"]["url"] for e in log["events"] if e["type"] == start and "url" in e.get("params", {})
            and e["params"].get("initiator") != "not an origin"]


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_html_page_loads_offline_and_shows_its_plots(report_dir, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install -y chromium) for this test")
    # the check itself can fail: a page that asks for an http image is caught
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><img src='http://127.0.0.1:9/x.png'></body></html>")
    _chromium(bad, tmp_path / "bad", "--dump-dom")
    assert _page_requests(tmp_path / "bad" / "netlog.json") == ["http://127.0.0.1:9/x.png"]

    page = report_dir / "report.html"
    dom = _chromium(page, tmp_path / "dom", "--dump-dom").stdout
    assert _page_requests(tmp_path / "dom" / "netlog.json") == []
    assert "Quality: tokenized vs copy synthesis" in dom and "<table>" in dom
    links = re.findall(r'(?:src|href)="([^"]*)"', dom)
    assert links and not [u for u in links if re.match(r"(?i)^(https?:|wss?:|//)", u)]
    images = [base64.b64decode(u.split(",", 1)[1]) for u in links if u.startswith("data:image/png;base64,")]
    assert len(images) >= 4  # distributions, PESQ pairs, codebook usage, one mel figure per example
    assert all(w > 200 and h > 200 for w, h in map(_png_size, images))
    audio = [u for u in links if u.endswith(".wav")]
    assert len(audio) == 9 and all((report_dir / u).is_file() for u in audio)

    shot = tmp_path / "page.png"
    _chromium(page, tmp_path / "shot", f"--screenshot={shot}", "--window-size=1280,2400", "--hide-scrollbars")
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2400, 1280)
    ink = (pixels < 0.9).any(axis=-1).mean()  # tables, text and plots darken the white page
    assert 0.03 < ink < 0.9


def test_nothing_readable_exits_non_zero_with_a_report(tokenizer_path, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "broken.flac").write_bytes(b"fLaC but nothing else")
    out = tmp_path / "rep"
    assert main(["eval", "-t", str(tokenizer_path), str(data), "-o", str(out), *GL]) == 1
    rep = json.loads((out / "report.json").read_text())
    assert rep["utterances"] == [] and rep["data"]["skipped"][0]["id"] == "broken"
    assert "skipped" in capsys.readouterr().err
    assert main(["eval", "-t", str(tokenizer_path), str(tmp_path / "missing"), "-o", str(out)]) == 1
    assert "no such file or folder" in capsys.readouterr().err


def test_ranking_uses_pesq_only_when_every_utterance_has_it_on_one_scale():
    from spectok.evaluation.aggregate import rank

    def utt(id, pesq, mcd, note=None):
        return {"id": id, "tokenized": {} if pesq is None else {"pesq": pesq}, "tokenizer": {"mfcc_dist_db": mcd},
                "notes": {"pesq": note} if note else {}}

    wb = [utt("a", 2.0, 9.0), utt("b", 3.0, 8.0), utt("c", 1.0, 1.0)]
    assert rank(wb) == {"metric": "tokenized/pesq", "best": "b", "median": "a", "worst": "c"}
    mixed = wb + [utt("d", 4.0, 5.0, "narrowband (8 kHz)")]
    assert rank(mixed) == {"metric": "tokenizer/mfcc_dist_db", "best": "c", "median": "d", "worst": "a"}
    assert rank(wb[:2] + [utt("c", None, 1.0)])["metric"] == "tokenizer/mfcc_dist_db"
    assert rank([])["best"] is None


def test_grid_tokenizer_with_residual_stages_reports_every_row(audio_dir, tmp_path):
    """A 2-D grid tokenizer with 2 RVQ stages: K = 4 rows × 2 stages; bitrates and the per-row table follow."""
    from spectok.evaluation import report as rep
    from spectok.evaluation.runner import describe_model, evaluate
    from spectok.evaluation.sources import collect
    from spectok.tokenizers import ConvVQVAE2d
    from spectok.vocoders import GriffinLim

    tok = ConvVQVAE2d(channels=[8, 8, 16], strides=[[4, 2], [5, 1]], num_res_blocks=1,
                      quantizer={"type": "rvq", "dim": 8, "codebook_size": 32, "num_quantizers": 2}).eval()
    voc = GriffinLim(tok.mel_config, n_iter=1, nnls_iters=0)
    result = evaluate(tok, voc, collect([audio_dir / "lj1.wav"]), tmp_path, describe_model(tok, "grid"),
                      describe_model(voc, "griffin-lim"), dnsmos=False)
    t = result.tokens
    assert t["rows"] == len(tok.codebook_sizes) == 8
    # the 4 frequency rows of each stage share that stage's codebook: usage is counted per codebook
    assert t["codebooks"] == len(result.code_counts) == 2 and t["rows_per_codebook"] == 4
    assert t["total_codes"] == 64 and [int(c.sum()) for c in result.code_counts] == [4 * t["columns_counted"]] * 2
    assert t["dead_codes"] == sum(int((c == 0).sum()) for c in result.code_counts)
    assert t["nominal_bits_per_second"] == pytest.approx(tok.bitrate) == pytest.approx(tok.frame_rate * 8 * 5)
    assert len(t["row_entropy_bits"]) == 8 and sum(t["row_entropy_bits"]) == pytest.approx(t["entropy_bits_per_column"])
    assert t["entropy_bits_per_second"] == pytest.approx(tok.frame_rate * t["entropy_bits_per_column"])
    (u,) = result.utterances
    assert t["columns_counted"] == u["token_columns"] == math.ceil(u["frames"] / 2)
    md = rep.render_markdown(rep.build(result))
    assert "## Tokens per row" in md and md.count("\n| 7 | 32 |") == 1 and "each shared by 4 rows" in md


def test_a_missing_input_is_reported_and_the_rest_evaluated(tokenizer_path, audio_dir, tmp_path, capsys):
    """The exit-code policy: one missing path costs that input only; the report lists it, exit 1."""
    out = tmp_path / "rep"
    one = sorted(audio_dir.rglob("lj1*"))[0]
    assert main(["eval", "-t", str(tokenizer_path), str(one), str(tmp_path / "missing.wav"), "-o", str(out),
                 *GL]) == 1
    rep = json.loads((out / "report.json").read_text())
    assert len(rep["utterances"]) == 1
    assert rep["data"]["skipped"][0]["reason"] == "no such file or folder"
    assert "missing.wav" in capsys.readouterr().err


def test_results_are_written_as_they_come_and_a_killed_run_resumes(tokenizer_path, audio_dir, tmp_path,
                                                                   monkeypatch):
    """utterances.jsonl gets each record when it is measured; a re-run with the same models measures only
    what is missing (here: a run 'killed' after two utterances) and reports the same scores."""
    from spectok.evaluation import runner

    out = tmp_path / "rep"
    assert main(["eval", "-t", str(tokenizer_path), str(audio_dir), "-o", str(out), *GL]) == 1  # corrupt.wav
    full = json.loads((out / "report.json").read_text())
    lines = (out / "utterances.jsonl").read_text().splitlines()
    assert "identity" in json.loads(lines[0]) and len(lines) == 1 + len(full["utterances"])
    (out / "utterances.jsonl").write_text("\n".join(lines[:3]) + '\n{"id": "cut by a ki')  # 2 kept, 1 torn
    measured = []
    original = runner.Evaluator.measure
    monkeypatch.setattr(runner.Evaluator, "measure", lambda self, item, s: measured.append(item.id) or
                        original(self, item, s))
    assert main(["eval", "-t", str(tokenizer_path), str(audio_dir), "-o", str(out), *GL]) == 1
    resumed = json.loads((out / "report.json").read_text())
    assert len(measured) == len(full["utterances"]) - 2
    assert resumed["aggregate"] == full["aggregate"] and resumed["tokens"] == full["tokens"]
    # other settings (8 Griffin-Lim iterations): nothing is reused
    measured.clear()
    assert main(["eval", "-t", str(tokenizer_path), str(audio_dir), "-o", str(out), "--gl-iters", "8", "-q"]) == 1
    assert len(measured) == len(full["utterances"])


def test_a_long_clip_is_evaluated_in_segments_equal_to_the_whole(tmp_path, monkeypatch, ljspeech_wavs):
    """With segments of 3 s, a 9 s clip's signals, codes and mel metrics equal whole-clip processing
    (each segment runs with the models' full context), and its record combines the segments'."""
    import numpy as np

    from spectok.audio.io import load_audio
    from spectok.evaluation import runner
    from spectok.evaluation.runner import Evaluator
    from spectok.evaluation.sources import EvalItem
    from spectok.tokenizers import load_tokenizer
    from spectok.vocoders import GriffinLim

    tok = load_tokenizer("default")
    ev = Evaluator(tok, GriffinLim(tok.mel_config, n_iter=4), dnsmos=False, isolate=False)
    wav = np.concatenate([load_audio(p, 16000)[0] for p in ljspeech_wavs[:2]])[: 9 * 16000]
    item = EvalItem(id="long", path=ljspeech_wavs[0])
    whole_rec, whole_codes = ev.clip(item, wav, 16000)
    whole = ev.synthesize(wav, 16000)
    monkeypatch.setattr(runner, "SEGMENT_SECONDS", 3.0)
    pieces = ev.segments(len(wav))
    assert len(pieces) == 3 and pieces[0][:1] == (0,) and pieces[-1][1] == len(wav)
    step = tok.mel_config.hop_length * tok.time_downsample
    assert all((a + k0) % step == 0 for a, _, k0, _ in pieces)
    joined = np.concatenate([ev.synthesize(wav[a:b], 16000, keep=(k0, k1), start=a).wav_tokenized
                             for a, b, k0, k1 in pieces])
    np.testing.assert_allclose(joined, whole.wav_tokenized, atol=1e-4)
    rec, codes = ev.clip(item, wav, 16000)
    assert torch.equal(codes, whole_codes)
    assert rec["seconds"] == pytest.approx(9.0) and rec["token_columns"] == whole_codes.shape[-1]
    assert rec["frames"] == whole_rec["frames"] and "3 segments" in rec["notes"]["segments"]
    for key in ("mel_l1", "mfcc_dist_db"):  # frame means: the segments' weighted mean is the whole's mean
        assert rec["tokenizer"][key] == pytest.approx(whole_rec["tokenizer"][key], rel=1e-4)
    assert rec["tokenized"]["pesq"] == pytest.approx(whole_rec["tokenized"]["pesq"], abs=0.3)
    assert rec["tokenized"]["stoi"] == pytest.approx(whole_rec["tokenized"]["stoi"], abs=0.03)


def test_a_resumed_eval_never_reuses_records_of_other_weights(tmp_path, audio_dir):
    """Two trainings of one config share a fingerprint: the records' identity holds a digest of the
    weights, so an eval of other weights into the same folder measures everything anew."""
    from spectok.evaluation.runner import describe_model, evaluate
    from spectok.evaluation.sources import collect
    from spectok.tokenizers import ConvVQVAE1d
    from spectok.vocoders import GriffinLim

    def tok(seed):
        torch.manual_seed(seed)
        return ConvVQVAE1d(channels=(16, 16, 16), strides=(2, 2), num_res_blocks=1, norm="none",
                           quantizer={"type": "fsq", "levels": [5, 5, 5], "dim": 3}).eval()

    a, b = tok(0), tok(1)
    assert a.fingerprint() == b.fingerprint()
    voc = GriffinLim(a.mel_config, n_iter=2)
    ra = evaluate(a, voc, collect([audio_dir / "lj1.wav"]), tmp_path, describe_model(a, "a"),
                  describe_model(voc, "gl"), dnsmos=False)
    rb = evaluate(b, voc, collect([audio_dir / "lj1.wav"]), tmp_path, describe_model(b, "b"),
                  describe_model(voc, "gl"), dnsmos=False)
    assert ra.utterances[0]["tokenizer"]["mel_l1"] != rb.utterances[0]["tokenizer"]["mel_l1"]
