# The two-command quick start: `make demo`, `make test`.
VENV    ?= .venv
PY      := $(VENV)/bin/python
MATURIN := $(VENV)/bin/maturin
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: all venv build build-runtime dev test test-rust test-py lint bench demo fuzz clean

all: build

$(MATURIN):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 'maturin>=1.7,<2'

venv: $(MATURIN)

## build: the extension with the release profile, plus runtime and test dependencies
build: $(MATURIN)
	$(MATURIN) develop --release --extras test

## build-runtime: the extension and only what the service needs (what `make demo` installs)
build-runtime: $(MATURIN)
	$(MATURIN) develop --release

## dev: an unoptimised build for quick iteration (never for benchmarks)
dev: $(MATURIN)
	$(MATURIN) develop --extras test

test-rust:
	cargo test -p acechart-core --release

test-py:
	$(PY) -m pytest

## test: everything CI runs
test: build test-rust test-py

lint: build
	$(VENV)/bin/ruff check python tests benches
	$(VENV)/bin/ruff format --check python tests benches
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) -m mypy.stubtest acechart._core
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

bench: build
	$(PY) -m pytest benches --benchmark-enable --benchmark-only \
		--benchmark-columns=min,median,mean,ops --benchmark-group-by=group -p no:randomly

## fuzz: each parser's fuzz target (tests/fuzz) for FUZZ_SECONDS, from the committed corpus;
## new inputs and any crash go to .fuzz/<target>/ (copy a crash into the corpus once fixed)
FUZZ_SECONDS ?= 120
fuzz: build
	@for target in $$($(PY) -c "from tests.fuzz.targets import ORDER; print(*ORDER)"); do \
		mkdir -p .fuzz/$$target; \
		echo "fuzzing $$target for $(FUZZ_SECONDS) s"; \
		$(PY) -m tests.fuzz.run $$target -max_total_time=$(FUZZ_SECONDS) \
			-artifact_prefix=.fuzz/$$target/ .fuzz/$$target tests/fuzz/corpus/$$target || exit 1; \
	done

demo: build-runtime
	$(PY) -m acechart demo

clean:
	rm -rf target $(VENV) .pytest_cache .benchmarks .hypothesis .fuzz
