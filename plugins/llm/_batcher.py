"""Gathers concurrent requests into batched `LLM.generate` calls (as vLLM's scheduler does)."""

from __future__ import annotations

import json
import queue
import threading
from concurrent.futures import Future
from typing import Any

import attrs

from plugins.llm._types import LLM, Completion


@attrs.frozen
class _Job:
    prompts: list[str]
    parameters: dict[str, Any]
    future: Future[list[list[Completion]]]


class Batcher:
    """Runs ``llm`` on one worker thread. Each round gathers the queued jobs, and those arriving
    less than ``wait_s`` apart, up to ``max_prompts`` prompts; jobs with the same generation
    parameters share one ``generate`` call."""

    def __init__(self, llm: LLM, *, max_prompts: int = 64, wait_s: float = 0.005) -> None:
        self.llm = llm
        self.max_prompts = max_prompts
        self.wait_s = wait_s
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="llm-batcher", daemon=True)
        self._worker.start()

    def generate(self, prompts: list[str], **parameters: Any) -> list[list[Completion]]:
        """Blocks until the batch holding these prompts is done; re-raises its error."""
        future: Future[list[list[Completion]]] = Future()
        self._jobs.put(_Job(prompts, parameters, future))
        return future.result()

    def close(self) -> None:
        """Stops the worker after the jobs already queued."""
        self._jobs.put(None)
        self._worker.join()

    def _run(self) -> None:
        while not self._run_round(self._jobs.get()):
            pass

    def _run_round(self, first: _Job | None) -> bool:
        """Run one round; True when the batcher is closing. (A call of its own, so that the
        worker holds nothing of a round's prompts while it waits for the next job.)"""
        if first is None:
            return True
        jobs, closing = self._gather(first)
        groups: dict[str, list[_Job]] = {}
        for job in jobs:
            groups.setdefault(json.dumps(job.parameters, sort_keys=True), []).append(job)
        for group in groups.values():
            self._run_group(group)
        return closing

    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        jobs, count = [first], len(first.prompts)
        while count < self.max_prompts:
            try:
                job = self._jobs.get(timeout=self.wait_s)
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
            count += len(job.prompts)
        return jobs, False

    def _run_group(self, jobs: list[_Job]) -> None:
        prompts = [p for job in jobs for p in job.prompts]
        try:
            results = self.llm.generate(prompts, **jobs[0].parameters)
        except Exception as error:
            if len(jobs) == 1:
                jobs[0].future.set_exception(error)
            else:  # find the culprit: one bad request must not fail the others
                for job in jobs:
                    self._run_group([job])
            return
        start = 0
        for job in jobs:
            job.future.set_result(results[start : start + len(job.prompts)])
            start += len(job.prompts)
