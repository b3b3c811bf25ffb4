"""harnessc: the harness language, its compiler front end and its batched runtime."""

__version__ = "0.1.0"
