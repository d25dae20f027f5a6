"""Run one fuzz target under atheris: `python -m tests.fuzz.run TARGET [libFuzzer flags]
[corpus dirs]` (TARGET `all`: every target, the first input byte choosing).

acechart's modules are imported under atheris's instrumentation, so the fuzzer is
guided by their coverage (the Rust core is not instrumented; its inputs are
mutated all the same). libFuzzer writes new interesting inputs to the first
corpus directory and a crashing input to `-artifact_prefix`.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(
    include=[
        "acechart.origin.client",
        "acechart.query",
        "acechart.server.headers",
        "acechart.server.params",
        "acechart.times",
        "acechart.wire",
        "tests.fuzz.targets",
    ]
):
    from tests.fuzz.targets import TARGETS, every_target


def main() -> None:
    names = [*TARGETS, "all"]
    if len(sys.argv) < 2 or sys.argv[1] not in names:
        raise SystemExit(f"usage: python -m tests.fuzz.run {{{','.join(names)}}} [flags]")
    target = every_target if sys.argv[1] == "all" else TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
