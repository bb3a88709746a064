"""spectok.plots: the figures are written, and the numbers behind them are right."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spectok import plots
from spectok.audio.mel import MelConfig
from spectok.errors import SpectokError

PNG = b"\x89PNG\r\n\x1a\n"


def test_codebook_usage_counts_each_codebook_and_the_total() -> None:
    stats = plots.codebook_usage([np.array([[0, 1, 1], [3, 3, 3]]), np.array([[1], [2]])], 5)
    assert [c.tolist() for c in stats.counts] == [[1, 3, 0, 0, 0], [0, 0, 1, 3, 0]]
    s = stats.summary()
    assert (s["row0/used_fraction"], s["row1/used_fraction"], s["used_fraction"]) == (0.4, 0.4, 0.4)
    # two rows sharing one codebook (a grid): counted once, together
    shared = plots.codebook_usage([np.array([[0, 1, 1], [3, 3, 3]])], 5, rows_per_codebook=2)
    assert [c.tolist() for c in shared.counts] == [[1, 2, 0, 3, 0]]
    assert shared.summary()["used_fraction"] == 0.6


def test_curve_groups_put_train_and_valid_of_one_metric_together() -> None:
    records = [{"event": "train", "step": 1, "time": 5.0, "train/generator/l1": 0.5, "lr/generator": 1e-3},
               {"event": "valid", "step": 2, "valid/l1": 0.4, "valid/note": "text", "valid/bad": float("nan")},
               {"no_step": 1.0}]
    groups = plots._curve_groups(records)
    assert set(groups) == {"l1", "lr"}
    assert groups["l1"] == {"train/generator/l1": ([1], [0.5]), "valid/l1": ([2], [0.4])}


def test_figures_are_written(tmp_path) -> None:
    config = MelConfig.preset("speech-16k")
    rng = np.random.default_rng(0)
    mel = rng.normal(-5, 2, (80, 120)).astype(np.float32)
    assert plots.plot_reconstruction(mel, mel + 0.1, config, tmp_path / "r.png").read_bytes()[:8] == PNG
    codes = rng.integers(0, 32, (4, 30))
    out = plots.plot_token_map(codes, 25.0, [32] * 4, tmp_path / "t.png", mel=mel, mel_config=config)
    assert out.read_bytes()[:8] == PNG
    assert plots.plot_codebook_usage([codes], 32, tmp_path / "u.png").read_bytes()[:8] == PNG
    run = tmp_path / "run"
    run.mkdir()
    lines = [{"event": "train", "step": s, "train/g/l1": 1.0 / (s + 1), "lr/g": 1e-3} for s in range(20)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"torn')
    assert plots.plot_training_curves(run, tmp_path / "c.png").read_bytes()[:8] == PNG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "r.png", "run", "t.png", "u.png"]


def test_clear_errors(tmp_path) -> None:
    with pytest.raises(SpectokError, match="metrics.jsonl: not found"):
        plots.plot_training_curves(tmp_path, tmp_path / "c.png")
    (tmp_path / "metrics.jsonl").write_text('{"event": "x"}\n')
    with pytest.raises(SpectokError, match="no numeric values"):
        plots.plot_training_curves(tmp_path, tmp_path / "c.png")
    with pytest.raises(SpectokError, match="no codes"):
        plots.plot_codebook_usage([np.zeros((1, 0), np.int64)], 4, tmp_path / "u.png")
    with pytest.raises(SpectokError, match=r"codes \[K, T'\]"):
        plots.plot_token_map(np.zeros(5), 10.0, [4], tmp_path / "t.png")


@pytest.mark.parametrize("name", ["default", "ljspeech22k"])
def test_plot_usage_and_eval_count_codebook_usage_alike(tmp_path, name) -> None:
    """One definition: `spectok plot usage` on token files and `spectok eval` on the same clips agree
    per codebook (residual stage, or a grid's shared codebook) and in total."""
    from spectok.cli.demo import demo_clips
    from spectok.cli.main import main
    from spectok.tokens import read_tokens

    clips = sorted((demo_clips() / "test").glob("*.flac"))[:2]
    assert main(["encode", *map(str, clips), "-t", name, "-o", str(tmp_path / "tok"), "-q"]) == 0
    assert main(["plot", "usage", str(tmp_path / "tok"), "-o", str(tmp_path / "u.png")]) == 0
    tokens = [read_tokens(p) for p in sorted((tmp_path / "tok").glob("*.sptk"))]
    rows = int(tokens[0].metadata.get("rows_per_codebook", 1))
    stats = plots.codebook_usage([t.codes for t in tokens], tokens[0].codebook_sizes, rows).summary()
    assert main(["eval", "-t", name, "-v", "griffin-lim", "--gl-iters", "1", "--no-dnsmos", "-q", *map(str, clips),
                 "-o", str(tmp_path / "rep")]) == 0
    report = json.loads((tmp_path / "rep" / "report.json").read_text())["tokens"]
    n = report["codebooks"]
    assert n == len(tokens[0].codebook_sizes) // rows
    per = [stats[f"row{i}/used_fraction"] for i in range(n)] if n > 1 else [stats["used_fraction"]]
    assert per == pytest.approx(report["codebook_used_fraction"])
    assert stats["used_fraction"] == pytest.approx(report["used_fraction"])
    assert 0 < stats["used_fraction"] <= 1
