"""A stop asked for by a signal, remembered.

Python drops the exception a signal handler raises while it runs a weakref callback, and importing
Great Expectations runs thousands: the command's SIGTERM would then be lost and the audit would
carry on to the end. The handler records the stop here too, and the audit checks it at its steps
(flows/audits.py::stop_if_told).
"""

from __future__ import annotations

_asked: list[int] = []


def ask_to_stop(signum: int) -> None:
    _asked.append(signum)


def stop_asked() -> bool:
    return bool(_asked)


def forget_stop() -> None:
    """For a process that goes on after handling the stop (the tests)."""
    _asked.clear()
