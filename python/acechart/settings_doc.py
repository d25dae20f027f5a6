"""The settings reference, generated from the settings classes so README cannot drift.

Each field's docstring (the string literal under it) is its documentation;
`python -m acechart.settings_doc` prints the Markdown tables README carries
(the service's `Settings`, then the simulator's `SimulatorSettings`), and a
test checks that README names every setting.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import textwrap
from typing import Any

from acechart.settings import ENV_PREFIX, SIMULATOR_ENV_PREFIX, Settings
from acechart.simulator.settings import SimulatorSettings


def field_docs(cls: type[Any] = Settings) -> dict[str, str]:
    """Field name -> the docstring written under it in the body of the dataclass `cls`."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = next(n for n in tree.body if isinstance(n, ast.ClassDef)).body
    docs: dict[str, str] = {}
    for node, following in zip(body, [*body[1:], None], strict=True):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[node.target.id] = " ".join(following.value.value.split())
    return docs


_FIELD = re.compile(r"^    ([a-z_][a-z0-9_]*): ")


def field_groups(cls: type[Any]) -> dict[str, str]:
    """Field name -> the component that reads it: the `# --- name ---` comment above it in
    the class body (fields are grouped that way in `settings.py`)."""
    groups: dict[str, str] = {}
    current = ""
    for line in textwrap.dedent(inspect.getsource(cls)).splitlines():
        stripped = line.strip()
        if stripped.startswith("# ---"):
            current = stripped.strip("# -")
        elif (found := _FIELD.match(line)) is not None:
            groups.setdefault(found.group(1), current)
    return groups


def _default(field: dataclasses.Field[object]) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return ""
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return ";".join(f"{k}={','.join(sorted(v))}" for k, v in value.items()) or "(none)"
    if value == "":
        return "(empty)"
    return "(none)" if value is None else str(value)


#: Each settings class and the prefix of its variables.
DOCUMENTED: tuple[tuple[type[Any], str], ...] = (
    (Settings, ENV_PREFIX),
    (SimulatorSettings, SIMULATOR_ENV_PREFIX),
)


def env_names(cls: type[Any], prefix: str) -> list[str]:
    """The environment variables of the dataclass `cls`, in field order."""
    return [prefix + f.name.upper() for f in dataclasses.fields(cls)]


def table(cls: type[Any], prefix: str) -> str:
    """One row per field, with a heading row where the component that reads them changes."""
    docs = field_docs(cls)
    groups = field_groups(cls)
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    group = ""
    for f in dataclasses.fields(cls):
        if groups.get(f.name, "") and groups[f.name] != group:
            group = groups[f.name]
            lines.append(f"| **{group}** | | |")
        doc = docs.get(f.name, "").replace("|", "\\|")
        lines.append(f"| `{prefix}{f.name.upper()}` | `{_default(f)}` | {doc} |")
    return "\n".join(lines)


def markdown() -> str:
    """README's tables: the service's settings, then the simulator's."""
    return "\n".join(
        [
            table(Settings, ENV_PREFIX),
            "",
            "The simulator (`acechart simulate`, the demo's origin, tests) has its own "
            "`SimulatorSettings` (`acechart.simulator.settings`):",
            "",
            table(SimulatorSettings, SIMULATOR_ENV_PREFIX),
        ]
    )


if __name__ == "__main__":
    print(markdown())
