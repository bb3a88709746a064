"""Telephone-band digit strings from the Free Spoken Digit Dataset, a condition ``default`` handles badly.

FSDD holds 3,000 single spoken digits of 6 speakers, recorded at 8 kHz (0.3-0.9 s each). One
digit is too short to score: STOI needs about 0.4 s of speech left after it drops the silent
frames, and fails on most of them. A held-out utterance here is therefore a *string* of
``digits`` clips of one speaker, joined end to end as a phone number is read (1.5-3 s).

The split is by whole speakers, so a fine-tuned model is scored on voices it never heard:
:data:`FINETUNE_SPEAKERS` to train on, :data:`HELD_OUT_SPEAKERS` to score on.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from spectok.audio.io import load_audio, save_audio
from spectok.data.corpora import FSDD
from spectok.errors import DataError

#: FSDD speakers a demo or benchmark fine-tunes on, and the ones it scores on
FINETUNE_SPEAKERS = ("george", "jackson", "lucas", "nicolas")
HELD_OUT_SPEAKERS = ("theo", "yweweler")


def write_digit_strings(fsdd_root: str | Path, out: str | Path, speakers: tuple[str, ...] = HELD_OUT_SPEAKERS,
                        per_speaker: int = 20, digits: int = 5, seed: int = 0) -> list[Path]:
    """Write ``per_speaker`` strings of ``digits`` clips of each speaker as 8 kHz WAV files in ``out``.

    The clips of a speaker are shuffled with ``seed`` and taken ``digits`` at a time, so no clip
    is used twice. A file is named ``SPEAKER_NN_D-D-D-D-D.wav`` (the digits spoken) and written
    atomically; files already there are kept (a second call writes nothing).

    Returns:
        the paths of the strings, sorted.

    Raises:
        DataError: ``fsdd_root`` is not an FSDD folder, or a speaker has too few clips.
    """
    by_speaker: dict[str, list] = {}
    for item in FSDD(fsdd_root):
        by_speaker.setdefault(item.speaker, []).append(item)
    out = Path(out)
    paths = []
    for speaker in speakers:
        clips = sorted(by_speaker.get(speaker, []), key=lambda i: i.id)
        if len(clips) < per_speaker * digits:
            raise DataError(f"{fsdd_root}: speaker {speaker!r} has {len(clips)} clips; "
                            f"{per_speaker} strings of {digits} need {per_speaker * digits}")
        random.Random(f"{seed}-{speaker}").shuffle(clips)
        for s in range(per_speaker):
            chosen = clips[s * digits:(s + 1) * digits]
            path = out / f"{speaker}_{s:02d}_{'-'.join(c.text for c in chosen)}.wav"
            if not path.is_file():
                parts, rates = zip(*(load_audio(c.path) for c in chosen))
                if len(set(rates)) > 1:
                    raise DataError(f"{fsdd_root}: the clips of {path.stem} have different sample rates {rates}")
                save_audio(path, np.concatenate(parts), rates[0])
            paths.append(path)
    return sorted(paths)
