"""``spectok demo``'s parts: the FSDD digit strings, the paired comparison, and (slow) the whole demo."""

from __future__ import annotations

import json
import math

import pytest
import soundfile as sf
from conftest import shared_path

from spectok.data.digit_strings import write_digit_strings
from spectok.errors import DataError
from spectok.evaluation.aggregate import paired_comparison


def test_digit_strings_are_whole_speakers_and_written_once(tmp_path) -> None:
    fsdd = shared_path("free-spoken-digit-dataset")
    paths = write_digit_strings(fsdd, tmp_path, speakers=("theo",), per_speaker=3, digits=4)
    assert [p.name.split("_")[:2] for p in paths] == [["theo", "00"], ["theo", "01"], ["theo", "02"]]
    for p in paths:
        info = sf.info(str(p))
        spoken = p.stem.split("_")[2].split("-")
        assert info.samplerate == 8000 and len(spoken) == 4 and all(d.isdigit() for d in spoken)
        assert 1.0 < info.duration < 4.0  # four digits of 0.3-0.9 s
    stamps = [p.stat().st_mtime_ns for p in paths]
    assert write_digit_strings(fsdd, tmp_path, speakers=("theo",), per_speaker=3, digits=4) == paths
    assert [p.stat().st_mtime_ns for p in paths] == stamps  # kept, not rewritten
    with pytest.raises(DataError, match="'theo' has 500 clips; 200 strings of 5 need 1000"):
        write_digit_strings(fsdd, tmp_path / "x", speakers=("theo",), per_speaker=200, digits=5)


def _report(values: dict[str, dict[str, float]]) -> dict:
    from spectok.evaluation.aggregate import aggregate

    utts = [{"id": k, "tokenized": v} for k, v in values.items()]
    return {"utterances": utts, "aggregate": aggregate(utts)}


def test_paired_comparison_is_clip_by_clip() -> None:
    before = _report({"a": {"pesq": 2.0, "stoi": 0.80}, "b": {"pesq": 3.0, "stoi": 0.90},
                      "c": {"pesq": 1.0, "stoi": 0.70}, "d": {"pesq": 2.5}})
    after = _report({"a": {"pesq": 2.1, "stoi": 0.82}, "b": {"pesq": 3.2, "stoi": 0.91},
                     "c": {"pesq": 1.3, "stoi": 0.73}, "d": {"pesq": 2.5, "stoi": 0.9}})
    c = paired_comparison(before, after)
    assert c["clips"] == 4
    assert c["gain"]["pesq_wb"]["mean"] == pytest.approx((0.1 + 0.2 + 0.3 + 0.0) / 4)
    assert c["gain"]["stoi"]["clips"] == 3  # d has no STOI before: left out of the pairs
    assert c["gain"]["stoi"]["mean"] == pytest.approx(0.02)
    lo, hi = c["gain"]["pesq_wb"]["ci95"]
    assert 0 < hi - lo < 1 and lo < c["gain"]["pesq_wb"]["mean"] < hi
    # the spread between clips (1.0 to 3.0) widens each side's interval, not the paired one
    assert (hi - lo) < (c["after"]["pesq_wb"]["ci95"][1] - c["after"]["pesq_wb"]["ci95"][0]) / 5
    assert c["before"]["pesq_wb"]["mean"] == pytest.approx(2.125)


@pytest.mark.slow
def test_demo_shows_a_gain_and_writes_summary_json(tmp_path, capsys) -> None:
    from spectok.cli.main import main

    fsdd = shared_path("free-spoken-digit-dataset")
    assert main(["demo", "--out", str(tmp_path), "--fsdd", str(fsdd)]) == 0
    first = capsys.readouterr().out
    (summary,) = tmp_path.glob("models-*/summary.json")
    cond = json.loads(summary.read_text())["conditions"][0]
    assert cond["clips"] == 40 and set(cond) == {"name", "clips", "released", "finetuned", "gain"}
    for metric in ("pesq_wb", "stoi"):
        gain = cond["gain"][metric]
        assert math.isfinite(gain["mean"]) and gain["ci95"][0] <= gain["mean"] <= gain["ci95"][1]
    assert cond["gain"]["stoi"]["ci95"][0] > 0, first
    assert "gain (paired)" in first and "reused" not in first
    assert main(["demo", "--out", str(tmp_path), "--fsdd", str(fsdd)]) == 0
    assert capsys.readouterr().out.count("reused") >= 5  # a second run says what it reuses
