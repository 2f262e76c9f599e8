"""Where a sweep's cases run: ``local`` (worker processes on this machine) or ``ray`` (a Ray cluster).

Both keep the method's two rules: a case -- one pair, both models -- runs whole in one fresh process, and a
timed case owns its device while it times. Both hand every finished case back to the driver, which alone
writes records.

``local``: each case is ``python -m senet_profile.history.executors`` in a fresh process (its record comes
back on stdout). Untimed cases (static, memory) run first, up to ``jobs`` at once; then the timed cases,
one at a time, with nothing else of the sweep running.

``ray`` (``pip install 'senet-profile[ray]'``): connects to ``address`` (``auto``, ``HOST:PORT``) or starts a
local Ray instance. Every case is a Ray task in a fresh worker process (``max_calls=1``). An untimed case
holds one CPU. A timed case on the CPU is pinned to one node and holds all of that node's CPUs; on CUDA it
holds one whole GPU; each node times one case at a time. A task lost with its node comes back as a
failure: the case stays missing, and rerunning the sweep runs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from senet_profile.errors import UserInputError
from senet_profile.history.sweep import Case, Outcome, run_case
from senet_profile.io import WORKER_PREAMBLE, parse_json

RESULT_MARK = "senet-profile-case-record: "
EXECUTORS = ("local", "ray")


_RUNNING: set[subprocess.Popen] = set()  # the case workers running now, stopped when the driver stops
_RUNNING_LOCK = threading.Lock()


def _stop_workers() -> None:
    """Kill every case worker still running (the driver is stopping: Ctrl-C or an error)."""
    with _RUNNING_LOCK:
        workers = list(_RUNNING)
    for process in workers:
        with contextlib.suppress(OSError):
            process.kill()


def run_in_subprocess(case: Case) -> Outcome:
    """Run one case in a fresh Python process; its record, or a line saying why it failed."""
    command = [sys.executable, "-c", WORKER_PREAMBLE + "; from senet_profile.history.executors import _main; "
               "sys.exit(_main(sys.argv[1:]))", json.dumps(case.as_dict())]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with _RUNNING_LOCK:
        _RUNNING.add(process)
    try:
        stdout, stderr = process.communicate()
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(process)
    marked = [line for line in stdout.splitlines() if line.startswith(RESULT_MARK)]
    if process.returncode == 0 and marked:
        try:
            return case, parse_json(marked[-1][len(RESULT_MARK) :])  # type: ignore[return-value]
        except ValueError as error:
            return case, f"the worker's record is not readable ({error})"
    lines = [line for line in stderr.splitlines() if line.strip()]
    why = next((line for line in reversed(lines) if line.startswith("error: ")), lines[-1] if lines else "")
    return case, f"worker exited with status {process.returncode}: {why or 'no message'}"


@dataclass(frozen=True)
class LocalExecutor:
    """Each case in a fresh process here: untimed cases up to ``jobs`` at once, then timed ones alone."""

    jobs: int = os.cpu_count() or 1
    name: str = "local"

    def run(self, cases: Sequence[Case]) -> Iterator[Outcome]:
        """Each case's record (or failure) as it finishes."""
        untimed = [c for c in cases if not c.timed]
        try:
            with ThreadPoolExecutor(max_workers=max(1, self.jobs)) as pool:
                futures = [pool.submit(run_in_subprocess, case) for case in untimed]
                try:
                    for future in as_completed(futures):
                        yield future.result()
                except BaseException:
                    for future in futures:
                        future.cancel()
                    raise
            for case in (c for c in cases if c.timed):
                yield run_in_subprocess(case)
        finally:
            _stop_workers()  # after a Ctrl-C (or the driver's error) no worker goes on

    def close(self) -> None:
        """Nothing to release: every worker has ended."""


def _reachable(address: str) -> None:
    """Refuse, quickly, a ``HOST:PORT`` nothing listens on (``ray.init`` would retry for a long while)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UserInputError(f"Ray address must be auto or HOST:PORT, got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except OSError as error:
        raise UserInputError(f"no Ray cluster reachable at {address}: {error.strerror or error}") from None


def _remote_case(case_dict: dict) -> dict:
    """What a Ray task runs: one case, in the worker's process, on the worker's machine; the record says
    which node and process measured it (one of each: a case is never split)."""
    import ray

    record = run_case(Case.from_dict(case_dict))
    node = ray.get_runtime_context().get_node_id()
    record["settings"] = {**record["settings"], "worker": {"node": node, "pid": os.getpid()}}
    return record


class RayExecutor:
    """Cases as Ray tasks; a timed case holds a whole node's CPUs (or one GPU); the driver writes."""

    name = "ray"

    def __init__(self, *, address: str | None = None, num_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise UserInputError(
                "--executor ray needs Ray: pip install 'senet-profile[ray]' (or use --executor local)"
            ) from None
        if address and address != "auto":
            _reachable(address)
        self._ray = ray
        self._started = not ray.is_initialized()
        try:
            if address:
                ray.init(address=address, log_to_driver=False, ignore_reinit_error=True)
            elif self._started:
                ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise UserInputError(
                f"cannot connect to Ray at {address or 'a local instance'}: {error}"
            ) from None
        self._task = ray.remote(max_calls=1)(_remote_case)

    def _nodes(self) -> dict[str, float]:
        """Alive nodes with CPUs, by id: their CPU count."""
        return {
            node["NodeID"]: node["Resources"].get("CPU", 0.0)
            for node in self._ray.nodes()
            if node.get("Alive") and node["Resources"].get("CPU", 0.0) >= 1
        }

    def _submit(self, case: Case, node: str | None, cpus: float):
        options: dict = {"num_cpus": 1}
        if case.timed and case.device == "cuda":
            options = {"num_cpus": 1, "num_gpus": 1}
        elif case.timed and node is not None:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            strategy = NodeAffinitySchedulingStrategy(node_id=node, soft=False)
            options = {"num_cpus": cpus, "scheduling_strategy": strategy}
        return self._task.options(**options).remote(case.as_dict())

    def run(self, cases: Sequence[Case]) -> Iterator[Outcome]:
        """Submit untimed cases at once, timed CPU cases one per node at a time; yield each as it ends."""
        ray = self._ray
        waiting = [c for c in cases if c.timed and c.device != "cuda"]
        running: dict = {}  # object ref -> (case, node it holds or None)
        for case in (c for c in cases if not (c.timed and c.device != "cuda")):
            running[self._submit(case, None, 1)] = (case, None)
        while running or waiting:
            busy = {node for _, node in running.values() if node}
            for node, cpus in self._nodes().items():
                if waiting and node not in busy:
                    case = waiting.pop(0)
                    running[self._submit(case, node, cpus)] = (case, node)
            if not running:
                yield from ((case, "no alive Ray node with a CPU to time it on") for case in waiting)
                return
            ready, _ = ray.wait(list(running), num_returns=1)
            case, _node = running.pop(ready[0])
            try:
                outcome = ray.get(ready[0])
            except Exception as error:  # a task's failure: node lost, worker died, an error in the case
                lines = str(error).strip().splitlines() or [type(error).__name__]
                outcome = f"Ray task failed: {lines[-1]}"
            yield case, outcome

    def close(self) -> None:
        """Shut down a Ray instance this executor started."""
        if self._started:
            self._ray.shutdown()


def make_executor(name: str, *, address: str | None = None, jobs: int | None = None):
    """The executor called ``name``, connected and ready, or a one-line error (before anything runs)."""
    if name == "local":
        if address:
            raise UserInputError("--address is for --executor ray")
        return LocalExecutor(jobs=jobs or (os.cpu_count() or 1))
    if name == "ray":
        return RayExecutor(address=address, num_cpus=jobs)
    raise UserInputError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")


def _main(argv: list[str]) -> int:
    """Worker entry: run the case given as JSON, print its record on one marked line."""
    from senet_profile.catalog.sources import guarded_stdout, model_failure
    from senet_profile.errors import UserInputError as InputError

    try:
        with guarded_stdout():
            record = run_case(Case.from_dict(json.loads(argv[0])))
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (SystemExit, Exception) as error:
        line = model_failure(error)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 2
    print(RESULT_MARK + json.dumps(record, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
