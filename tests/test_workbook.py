"""The headless workbook runner executes notebooks for real and reports failures."""

from pathlib import Path

import nbformat

from perf.workbook import execute_notebook, list_notebooks


def _notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    nbformat.write(nb, path)
    return path


def test_executes_and_writes_copy_and_html(tmp_path: Path) -> None:
    src = _notebook(tmp_path / "ok.ipynb", "x = 6 * 7", "print(x)")
    run = execute_notebook(src, tmp_path / "out")
    assert run.ok and run.error is None
    executed = nbformat.read(run.executed, as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "42\n"
    assert run.html is not None and "42" in run.html.read_text()
    assert (tmp_path / "out" / "ok.kernel.log").exists()  # kernel stderr kept apart from progress


def test_failure_is_reported_not_raised(tmp_path: Path) -> None:
    src = _notebook(tmp_path / "bad.ipynb", "raise ValueError('broken cell')", "print('never')")
    run = execute_notebook(src, tmp_path / "out")
    assert not run.ok and "ValueError" in (run.error or "")
    assert run.executed.exists()


def test_lists_the_workbook_in_order() -> None:
    names = [p.name for p in list_notebooks()]
    assert names[0] == "00_setup.ipynb" and names == sorted(names)
