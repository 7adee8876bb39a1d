"""docs/python-api.md works as written: every ```python block runs, in order, in one
namespace per block, against the simulated card."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text("utf-8"), re.S)


def test_the_page_has_examples():
    assert len(BLOCKS) >= 7


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs_as_written(index, capsys):
    exec(compile(BLOCKS[index], f"{DOC.name} example {index + 1}", "exec"), {})
