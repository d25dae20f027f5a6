"""Bounded fuzzing of every parser of untrusted input, from the committed corpus.

The targets of `tests/fuzz/targets.py` run under atheris (libFuzzer) in one
process (`every_target`: an input's first byte picks the target) for a fixed
number of inputs with a fixed seed, starting from every input of
`tests/fuzz/corpus/<target>/` (the seeds, and each input that once found a bug,
kept as a regression). New inputs go to a scratch directory, never into the
corpus. `make fuzz` runs each target on its own, longer.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.fuzz.targets import ORDER, TARGETS

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fuzz" / "corpus"
RUNS = 60_000
MAX_SECONDS = 60


def test_every_target_has_a_corpus() -> None:
    assert sorted(p.name for p in CORPUS.iterdir()) == sorted(TARGETS)
    for target in TARGETS:
        assert any((CORPUS / target).iterdir()), target


def test_fuzzing_every_target_finds_nothing(tmp_path: Path) -> None:
    seeds, scratch = tmp_path / "seeds", tmp_path / "new"
    seeds.mkdir()
    scratch.mkdir()
    for index, target in enumerate(ORDER):
        for path in sorted((CORPUS / target).iterdir()):
            (seeds / f"{target}-{path.name}").write_bytes(bytes([index]) + path.read_bytes())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "python"), str(ROOT)])}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fuzz.run",
            "all",
            f"-runs={RUNS}",
            "-seed=1",
            f"-max_total_time={MAX_SECONDS}",
            f"-artifact_prefix={tmp_path}/",
            str(scratch),
            str(seeds),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=MAX_SECONDS * 3,
    )
    log = run.stderr.decode(errors="replace")
    found = [
        f"{ORDER[p.read_bytes()[0] % len(ORDER)]}: {p.read_bytes()[1:]!r}"
        for p in sorted(tmp_path.glob("crash-*"))
        if p.read_bytes()
    ]
    assert run.returncode == 0 and not found, f"{found}\n{log[-4000:]}"
    assert f"Done {RUNS} runs" in log, log[-2000:]
