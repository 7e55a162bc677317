"""experiments/tour.ipynb: committed without outputs, and run top to bottom by a real kernel."""

import json
import time
from pathlib import Path

import pytest

TOUR = Path(__file__).resolve().parents[1] / "experiments" / "tour.ipynb"


def test_the_tour_is_committed_without_outputs():
    notebook = json.loads(TOUR.read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert len(code) >= 10
    assert all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)


@pytest.mark.slow
def test_the_tour_runs_top_to_bottom_in_a_real_kernel(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    notebook = nbformat.read(TOUR, as_version=4)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    started = time.perf_counter()
    client.execute()  # raises CellExecutionError at the first cell that fails
    print(f"tour.ipynb ran in {time.perf_counter() - started:.1f} s")
    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
    assert errors == []
    # The cells that draw show a figure, and the run directory the notebook trains is there.
    images = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs
              if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(images) >= 2
    assert (tmp_path / "moons-run" / "model.json").is_file() and (tmp_path / "residual.json").is_file()
