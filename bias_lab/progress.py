"""Progress reporting and cancellation shared by the CLI (tqdm) and the app (st.progress).

A long function takes ``progress`` — a callable ``progress(done, total, message)`` — and
``cancel`` — a :class:`CancelToken`; it calls ``cancel.check()`` between work units.
"""

from __future__ import annotations

import threading
from typing import Callable

from .errors import Cancelled


class CancelToken:
    """Set from any thread (a Stop button, a signal handler); checked by the worker."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled")


class TqdmProgress:
    """Adapts the progress callback to a tqdm bar (used by the CLI)."""

    def __init__(self, description: str = "", disable: bool | None = None, unit: str = "it"):
        self.description = description
        self.disable = disable
        self.unit = unit  # what the rate counts: "unit" shows units/s
        self._bar = None

    def __call__(self, done: int, total: int, message: str = "") -> None:
        from tqdm.auto import tqdm

        if self._bar is None:
            self._bar = tqdm(total=total, desc=self.description, disable=self.disable, initial=done, unit=self.unit,
                             dynamic_ncols=True)
        if self._bar.total != total:
            self._bar.total = total
        if done > self._bar.n:  # through update, so that the rate and time left follow recent progress
            self._bar.update(done - self._bar.n)
        else:
            self._bar.n = done
        if message:
            self._bar.set_postfix_str(message, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "TqdmProgress":
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False


def report(progress: Callable | None, done: int, total: int, message: str = "") -> None:
    if progress is not None:
        progress(done, total, message)
