"""Functions the crash-isolation tests send to spectok's metric process (importable there by name)."""

from __future__ import annotations

import os
import signal

from spectok.evaluation import metrics


def crash() -> None:
    """Die as the PESQ C library did: SIGSEGV."""
    os.kill(os.getpid(), signal.SIGSEGV)


def fail() -> None:
    raise ValueError("no speech")


def pid() -> int:
    return os.getpid()


def metrics_crashing_on_long_clips(ref, est, sample_rate, *args):
    """:func:`spectok.evaluation.metrics.waveform_metrics`, but a segfault for clips over 1.5 s."""
    if len(est) > 1.5 * sample_rate:
        crash()
    return metrics.waveform_metrics(ref, est, sample_rate, *args)
