"""aios-tui: a terminal ops console for GPU fleets."""

__version__ = "0.1.0"
"""The package's version, read by the packaging (pyproject.toml: ``dynamic``) and by ``--version``: asking
``importlib.metadata`` instead cost every start 20 ms of imports."""
