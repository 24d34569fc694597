"""Drill results in JUnit properties, pytest-html extras, the terminal scorecard and a JSON summary."""
