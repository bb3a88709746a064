"""Inference helpers for long recordings (chunking); the user-facing API is :class:`spectok.Pipeline`."""
