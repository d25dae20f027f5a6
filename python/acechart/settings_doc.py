"""The settings reference, generated from `Settings` itself so README cannot drift.

Each field's docstring (the string literal under it) is its documentation;
`python -m acechart.settings_doc` prints the Markdown table README carries, and
a test checks that README names every setting.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect

from acechart import settings as settings_module
from acechart.settings import ENV_PREFIX, Settings


def field_docs() -> dict[str, str]:
    """Field name -> the docstring written under it in the class body."""
    tree = ast.parse(inspect.getsource(settings_module))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings")
    docs: dict[str, str] = {}
    body = cls.body
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
    return "(none)" if value is None else str(value)


def markdown() -> str:
    docs = field_docs()
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(Settings):
        doc = docs.get(f.name, "").replace("|", "\\|")
        lines.append(f"| `{ENV_PREFIX}{f.name.upper()}` | `{_default(f)}` | {doc} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown())
