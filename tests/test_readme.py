"""README stays true: it documents every setting and shows the quick start."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from acechart.settings import ENV_PREFIX, Settings
from acechart.settings_doc import field_docs

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    docs = field_docs()
    for f in dataclasses.fields(Settings):
        assert f"`{ENV_PREFIX}{f.name.upper()}`" in README, f"README lacks {f.name}"
        assert docs.get(f.name), f"setting {f.name} has no docstring"


def test_quick_start_commands() -> None:
    assert "make demo" in README and "make test" in README
