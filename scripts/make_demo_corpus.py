"""Make the bundled demo corpus: public-domain sentences spoken by espeak-ng voices.

    apt-get install espeak-ng
    .venv/bin/python scripts/make_demo_corpus.py [--out examples/demo-corpus]

Writes ``OUT/<voice>/<nn>.flac`` (22,050 Hz mono, 16-bit), ``OUT/metadata.csv``
(``id|text|text``, LJSpeech style, id = ``<voice>__<nn>``, the id the ``folder`` corpus
gives the file) and ``OUT/README.md``. The voices are synthetic (espeak-ng formant
synthesis); the sentences come from public-domain works, listed in SENTENCES.
Re-running gives the same files (espeak-ng and FLAC encoding are deterministic).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import soundfile as sf

REPO = Path(__file__).resolve().parents[1]

from spectok.audio.io import resample, save_audio  # noqa: E402
from spectok.fsutil import write_text_atomic  # noqa: E402

SAMPLE_RATE = 22050

# (folder name, espeak-ng voice, words per minute)
VOICES = [
    ("en-us", "en-us", 165),
    ("en-gb", "en-gb", 160),
    ("en-gb-scotland", "en-gb-scotland", 155),
    ("en-us_f3", "en-us+f3", 170),
    ("en-gb-x-rp_m3", "en-gb-x-rp+m3", 150),
    ("en-029_f2", "en-029+f2", 160),
]

# (sentence, source). Every source is a work in the public domain (published before 1900).
SENTENCES = [
    ("Four score and seven years ago our fathers brought forth on this continent a new nation.",
     "Abraham Lincoln, Gettysburg Address (1863)"),
    ("Now we are engaged in a great civil war, testing whether that nation can long endure.",
     "Abraham Lincoln, Gettysburg Address (1863)"),
    ("The world will little note, nor long remember what we say here.",
     "Abraham Lincoln, Gettysburg Address (1863)"),
    ("Government of the people, by the people, for the people, shall not perish from the earth.",
     "Abraham Lincoln, Gettysburg Address (1863)"),
    ("We hold these truths to be self-evident, that all men are created equal.",
     "United States Declaration of Independence (1776)"),
    ("It is a truth universally acknowledged, that a single man in possession of a good fortune, "
     "must be in want of a wife.", "Jane Austen, Pride and Prejudice (1813)"),
    ("She is tolerable; but not handsome enough to tempt me.", "Jane Austen, Pride and Prejudice (1813)"),
    ("I could easily forgive his pride, if he had not mortified mine.",
     "Jane Austen, Pride and Prejudice (1813)"),
    ("It was the best of times, it was the worst of times.", "Charles Dickens, A Tale of Two Cities (1859)"),
    ("It was the age of wisdom, it was the age of foolishness.", "Charles Dickens, A Tale of Two Cities (1859)"),
    ("It is a far, far better thing that I do, than I have ever done.",
     "Charles Dickens, A Tale of Two Cities (1859)"),
    ("Alice was beginning to get very tired of sitting by her sister on the bank.",
     "Lewis Carroll, Alice's Adventures in Wonderland (1865)"),
    ("And what is the use of a book, thought Alice, without pictures or conversations?",
     "Lewis Carroll, Alice's Adventures in Wonderland (1865)"),
    ("Curiouser and curiouser, cried Alice.", "Lewis Carroll, Alice's Adventures in Wonderland (1865)"),
    ("Who in the world am I? Ah, that's the great puzzle!",
     "Lewis Carroll, Alice's Adventures in Wonderland (1865)"),
    ("We're all mad here. I'm mad. You're mad.", "Lewis Carroll, Alice's Adventures in Wonderland (1865)"),
    ("Call me Ishmael. Some years ago, never mind how long precisely, I thought I would sail about a little.",
     "Herman Melville, Moby-Dick (1851)"),
    ("It is a way I have of driving off the spleen, and regulating the circulation.",
     "Herman Melville, Moby-Dick (1851)"),
    ("To Sherlock Holmes she is always the woman.", "Arthur Conan Doyle, A Scandal in Bohemia (1891)"),
    ("You see, but you do not observe.", "Arthur Conan Doyle, A Scandal in Bohemia (1891)"),
    ("It is a capital mistake to theorize before one has data.",
     "Arthur Conan Doyle, A Scandal in Bohemia (1891)"),
    ("Slow but steady wins the race.", "Aesop's Fables, tr. George Fyler Townsend (1867)"),
    ("Appearances are deceptive.", "Aesop's Fables, tr. George Fyler Townsend (1867)"),
    ("A hare one day ridiculed the short feet and slow pace of the tortoise.",
     "Aesop's Fables, tr. George Fyler Townsend (1867)"),
    ("Self-help is the best help.", "Aesop's Fables, tr. George Fyler Townsend (1867)"),
    ("Beware; for I am fearless, and therefore powerful.", "Mary Shelley, Frankenstein (1818)"),
    ("You will rejoice to hear that no disaster has accompanied the commencement of an enterprise.",
     "Mary Shelley, Frankenstein (1818)"),
    ("I went to the woods because I wished to live deliberately, to front only the essential facts of life.",
     "Henry David Thoreau, Walden (1854)"),
    ("The mass of men lead lives of quiet desperation.", "Henry David Thoreau, Walden (1854)"),
    ("Fifteen men on the dead man's chest, yo ho ho, and a bottle of rum!",
     "Robert Louis Stevenson, Treasure Island (1883)"),
    ("There was no possibility of taking a walk that day.", "Charlotte Bronte, Jane Eyre (1847)"),
    ("Reader, I married him.", "Charlotte Bronte, Jane Eyre (1847)"),
    ("My infant tongue could make of both names nothing longer or more explicit than Pip.",
     "Charles Dickens, Great Expectations (1861)"),
    ("I celebrate myself, and sing myself.", "Walt Whitman, Song of Myself (1855)"),
    ("To be great is to be misunderstood.", "Ralph Waldo Emerson, Self-Reliance (1841)"),
    ("Trust thyself: every heart vibrates to that iron string.", "Ralph Waldo Emerson, Self-Reliance (1841)"),
    ("Early to bed and early to rise, makes a man healthy, wealthy and wise.",
     "Benjamin Franklin, Poor Richard's Almanack (1735)"),
    ("Well done is better than well said.", "Benjamin Franklin, Poor Richard's Almanack (1737)"),
    ("All the world's a stage, and all the men and women merely players.",
     "William Shakespeare, As You Like It (1623 folio)"),
    ("Now is the winter of our discontent made glorious summer by this sun of York.",
     "William Shakespeare, Richard III (1597)"),
    ("The quality of mercy is not strained; it droppeth as the gentle rain from heaven.",
     "William Shakespeare, The Merchant of Venice (1600)"),
    ("To be, or not to be, that is the question.", "William Shakespeare, Hamlet (1603)"),
    ("Once upon a midnight dreary, while I pondered, weak and weary.", "Edgar Allan Poe, The Raven (1845)"),
    ("Quoth the Raven, nevermore.", "Edgar Allan Poe, The Raven (1845)"),
    ("Whatever is worth doing at all, is worth doing well.",
     "Philip Stanhope, Earl of Chesterfield, Letters to His Son (1774)"),
    ("The sun was shining on the sea, shining with all his might.",
     "Lewis Carroll, Through the Looking-Glass (1871)"),
    ("Hope is the thing with feathers that perches in the soul.", "Emily Dickinson, Poems (1891)"),
    ("I wandered lonely as a cloud that floats on high over vales and hills.",
     "William Wordsworth, Poems in Two Volumes (1807)"),
]

README = """# spectok demo corpus

A tiny **synthetic** speech corpus bundled with spectok so that the demo and the tests
run offline on any machine. **Every voice is synthetic**: the audio was produced by the
espeak-ng {espeak} formant synthesiser, not recorded from people. Do not
use it to judge speech quality; it is here to exercise the code.

- {n_clips} clips, {n_voices} espeak-ng voices ({voices}), {n_sentences} sentences, each
  sentence spoken once by one voice (sentence i by voice i mod {n_voices}); {minutes:.1f} min.
- `<voice>/<nn>.flac`: 22,050 Hz mono 16-bit FLAC (espeak-ng output resampled with soxr
  where its rate differs).
- `metadata.csv`: `id|text|text` (LJSpeech style), id = `<voice>__<nn>`, the id
  `spectok prepare folder examples/demo-corpus OUT` gives the file; the speaker is the
  voice folder.
- Regenerate with `python scripts/make_demo_corpus.py` (needs `apt-get install espeak-ng`).

## Texts and licence

The sentences are short quotations from works in the public domain (all first
published before 1900): Lincoln's Gettysburg Address, the US Declaration of
Independence, Austen, Dickens, Carroll, Melville, Conan Doyle, Aesop (Townsend's 1867
translation), Shelley, Thoreau, Stevenson, Charlotte Bronte, Whitman, Emerson, Franklin,
Shakespeare, Poe, Chesterfield, Dickinson and Wordsworth; `sources.csv` gives the
source of each clip. The synthesised audio, the metadata and this README are dedicated
to the public domain (CC0 1.0). espeak-ng itself is GPL-3.0 software; its output is not
covered by its licence.
"""


def speak(text: str, voice: str, wpm: int, workdir: Path):
    """Run espeak-ng; returns (waveform float32 [T], sample rate)."""
    wav = workdir / "clip.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(wav), text], check=True,
                   capture_output=True)
    data, sr = sf.read(str(wav), dtype="float32")
    return data, sr


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "examples" / "demo-corpus"))
    args = ap.parse_args()
    if shutil.which("espeak-ng") is None:
        print("make_demo_corpus: espeak-ng not found; apt-get install espeak-ng", file=sys.stderr)
        return 1
    banner = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    version = (re.search(r"\d+\.\d+[\w.+-]*", banner) or [banner.strip()])[0]
    out = Path(args.out)
    meta, sources, total = [], ["id|source"], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for n, (text, source) in enumerate(SENTENCES):
            folder, voice, wpm = VOICES[n % len(VOICES)]
            wav, sr = speak(text, voice, wpm, Path(tmp))
            wav = resample(wav, sr, SAMPLE_RATE)
            uid = f"{folder}__{n:02d}"
            save_audio(out / folder / f"{n:02d}.flac", wav, SAMPLE_RATE)
            meta.append(f"{uid}|{text}|{text}")
            sources.append(f"{uid}|{source}")
            total += len(wav) / SAMPLE_RATE
    write_text_atomic(out / "metadata.csv", "\n".join(meta) + "\n")
    write_text_atomic(out / "sources.csv", "\n".join(sources) + "\n")
    write_text_atomic(out / "README.md", README.format(
        espeak=version, n_clips=len(SENTENCES), n_voices=len(VOICES), n_sentences=len(SENTENCES),
        voices=", ".join(v for _, v, _ in VOICES), minutes=total / 60))
    print(f"{out}: {len(SENTENCES)} clips, {total / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
