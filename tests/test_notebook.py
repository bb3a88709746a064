"""examples/inference.ipynb runs top to bottom (nbclient), with a tiny tokenizer it builds itself."""

from __future__ import annotations

import pytest
from conftest import DEMO_CORPUS, REPO, SHARED_DATA

NOTEBOOK = REPO / "examples" / "inference.ipynb"


def test_inference_notebook_executes(tmp_path, monkeypatch) -> None:
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install 'spectok[dev]')")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (pip install 'spectok[dev]')")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install 'spectok[dev]')")
    if not any(DEMO_CORPUS.rglob("*.flac")) and not (SHARED_DATA / "LJSpeech-1.1").exists():
        pytest.skip("no audio for the notebook: neither examples/demo-corpus nor ../shared/data/LJSpeech-1.1")
    monkeypatch.delenv("SPECTOK_TOKENIZER", raising=False)  # the notebook builds its own tiny tokenizer
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    mimes = {m for o in outputs for m in o.get("data", {})}
    assert "image/png" in mimes and "text/html" in mimes  # the figures, and the Audio players
    text = "".join(o.get("text", "") for o in outputs)
    assert "read back equal: True" in text
