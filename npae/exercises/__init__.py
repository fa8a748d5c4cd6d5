"""The graded exercises: the derivatives a VAE is made of, one at a time, in course order.

:mod:`.statements` holds what the student reads and the class to complete, :mod:`.solutions`
the references in plain NumPy, :mod:`.series` the table tying them together.  The command
line (``python -m npae exercise list | start | check``) is :mod:`npae.cli.exercise`.
"""

from .series import SERIES, get

__all__ = ["SERIES", "get"]
