"""`python -m acechart ...` is the `acechart` command."""

from acechart.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
