"""Evaluation: metrics (:mod:`.metrics`), what to evaluate (:mod:`.sources`), the loop
(:mod:`.runner`) and the report files (:mod:`.report`, :mod:`.html`) behind ``spectok eval``."""
