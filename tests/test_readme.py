"""README stays true: it documents every setting and shows the quick start."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from acechart.settings_doc import DOCUMENTED, field_docs

README = (Path(__file__).parent.parent / "README.md").read_text()


@pytest.mark.parametrize(("cls", "prefix"), DOCUMENTED, ids=lambda v: getattr(v, "__name__", v))
def test_every_setting_is_documented(cls: type, prefix: str) -> None:
    """The service's `Settings` and the simulator's `SimulatorSettings` alike."""
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        assert f"`{prefix}{f.name.upper()}`" in README, (
            f"README lacks {f.name}: regenerate its tables with `python -m acechart.settings_doc`"
        )
        assert docs.get(f.name), f"setting {f.name} has no docstring"


def test_quick_start_commands() -> None:
    assert "make demo" in README and "make test" in README
