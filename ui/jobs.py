"""Long computations in a background thread, so the page stays responsive: progress is polled,
a Cancel button sets the job's cancel token, and the job's run resumes when started again."""

from __future__ import annotations

import threading
import time
from typing import Callable

import streamlit as st
import torch

from bias_lab.errors import BiasLabError, Cancelled
from bias_lab.progress import CancelToken


class Job:
    def __init__(self, work: Callable[[Callable, CancelToken], object]):
        self.token = CancelToken()
        self.done, self.total, self.result, self.error, self.cancelled = 0, 0, None, None, False
        self.thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self.thread.start()

    def _progress(self, done: int, total: int, message: str = "") -> None:
        self.done, self.total = done, total

    def _run(self, work) -> None:
        try:
            self.result = work(self._progress, self.token)
        except Cancelled:
            self.cancelled = True
        except BiasLabError as error:
            self.error = str(error)
        except (torch.OutOfMemoryError, MemoryError):
            self.error = "out of memory: lower the batch size or the number of prompts"
        except Exception as error:  # shown as one line on the page, never as a traceback
            self.error = f"{type(error).__name__}: {error}"

    @property
    def running(self) -> bool:
        return self.thread.is_alive()


def run_job(key: str, label: str, work: Callable[[Callable, CancelToken], object], *, start: bool):
    """Start the job when ``start``; while it runs, draw progress and a Cancel button and rerun the
    page every half second; return its result once finished (None otherwise)."""
    job: Job | None = st.session_state.get(key)
    if start and (job is None or not job.running):
        job = st.session_state[key] = Job(work)
    if job is None:
        return None
    if job.running:
        st.progress(job.done / job.total if job.total else 0.0, text=f"{label}: {job.done} / {job.total or '?'}")
        if st.button("Cancel", key=f"{key}_cancel"):
            job.token.cancel()
        time.sleep(0.5)
        st.rerun()
    if job.cancelled:
        st.warning(f"{label} cancelled; start it again to resume where it stopped.")
        return None
    if job.error:
        st.error(job.error)
        return None
    return job.result
