"""Bounded fuzzing of the parsers of untrusted input (atheris): targets, runner, corpus."""
