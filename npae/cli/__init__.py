"""The command line, ``python -m npae`` or ``npae``: parsing and dispatch (:mod:`.parser`), the
commands (:mod:`.commands`), and the gradient check of a student's class (:mod:`.check`)."""

from .parser import main

__all__ = ["main"]
