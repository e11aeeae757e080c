"""One study over many processes: keras-tuner's distributed mode, made safe to kill.

The chief (``python -m study run SPACE --workers N``) holds the study's one oracle
(:class:`study.tuning.StratifiedOracle`) behind keras-tuner's own gRPC servicer
(``keras_tuner``'s ``OracleServicer``) and starts N worker processes on this machine;
``python -m study worker NAME`` joins from any machine that sees the same runs
directory. Workers train trials and append rows to the shared tables (under a file
lock); the chief hands out trials, tuning and repeats alike, and prints progress.

What keras-tuner's chief does not do, and this module adds:

- **Dead workers.** keras-tuner's chief waits forever for a worker that died holding a
  trial. Here every worker sends a heartbeat (the standard ``update_trial`` call with a
  ``study/heartbeat/<tuner id>`` metric) every few seconds and before every row it
  writes. A trial whose worker stayed silent for ``trial_timeout`` seconds is handed out
  again; a local worker that exits is replaced at once and its trial handed out again
  without waiting. The next attempt removes the rows the last one wrote.
- **Late workers.** A worker that was silent too long but lives on is told, at its next
  heartbeat, that it no longer holds its trial: it stops without writing more rows.
- **Idle polling.** keras-tuner's workers ask again at once when told IDLE; ours wait a
  moment, so that a worker waiting for the last trials does not flood the chief.
- **Restarts.** The oracle's state is on disk; running the chief's command again
  resumes the study (trials that were running are redone).

The chief listens on 127.0.0.1 unless told otherwise. Its gRPC port is
unauthenticated: whoever reaches it can take trials and report results. Open it only
on a trusted network.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from study.errors import BadInput
from study.runner import StudyFailed, _now, _previous_manifest, data_record, study_context, write_json_atomic

#: The file in a run directory where the chief writes its address (and its workers' process ids).
CHIEF_FILE = "chief.json"
#: How often a worker tells the chief that it is alive (seconds).
HEARTBEAT_SECONDS = 5.0
#: Default seconds without a heartbeat after which the chief hands a worker's trial out again.
TRIAL_TIMEOUT = 120.0
#: How long a worker told IDLE waits before it asks again (seconds).
IDLE_SECONDS = 0.5
#: Restarts of local workers the chief allows per worker before it gives up (a worker that keeps dying, say
#: for want of memory, must not loop forever).
MAX_RESTARTS_PER_WORKER = 3


@dataclass(frozen=True)
class ChiefOptions:
    """How the chief serves a study: address, local workers, timeout."""

    workers: int
    host: str = "127.0.0.1"
    port: int = 0
    trial_timeout: float = TRIAL_TIMEOUT
    data_dir: Path | None = None
    #: Threads per local worker (None: the cores divided among the workers).
    threads: int | None = None

    @property
    def worker_threads(self) -> int:
        return self.threads or threads_per_worker(self.workers)

    def record(self) -> dict[str, Any]:
        """What the manifest records of a distributed run."""
        return {"workers": self.workers, "host": self.host, "port": self.port, "trial_timeout": self.trial_timeout,
                "threads_per_worker": self.worker_threads, "started": _now()}

    def serve(self, oracle, *, run_dir: Path, progress=None, verbose: bool = True) -> None:
        """Serve the study (see :func:`serve_study`); called by study.runner once the run directory is ready."""
        serve_study(oracle, self, run_dir=run_dir, progress=progress, verbose=verbose)


def threads_per_worker(workers: int) -> int:
    """Threads each of ``workers`` local workers may use so that together they do not oversubscribe the cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(workers, 1))


def thread_environment(threads: int) -> dict[str, str]:
    """Environment variables that cap a worker's threads under every Keras backend."""
    environment = {"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": str(threads),
                   "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if threads == 1:  # JAX's CPU client: one thread for Eigen's matrix products
        environment["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                    " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
    return environment


def parse_address(text: str, *, source: str, key: str) -> tuple[str, int]:
    """``HOST:PORT`` as (host, port); anything else is bad input naming ``key``."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadInput(f"{text!r} is not an address; allowed: HOST:PORT with a port from 1 to 65535, "
                       "e.g. 10.0.0.5:8470", source=source, key=key)
    return host, int(port)  # an IPv6 host keeps its brackets: gRPC's target is [::1]:8470


# --------------------------------------------------------------------------- chief


class _LocalWorker:
    """One worker process this chief started, and how often it was restarted."""

    def __init__(self, index: int, command: list[str], environment: dict[str, str]):
        self.index = index
        self.command = command
        self.environment = environment
        self.restarts = 0
        self.tuner_id = ""
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.tuner_id = f"worker{self.index}" + (f"-{self.restarts}" if self.restarts else "")
        self.process = subprocess.Popen([*self.command, "--id", self.tuner_id], env=self.environment,
                                        preexec_fn=_die_with_parent, stdin=subprocess.DEVNULL)


def _die_with_parent() -> None:
    """In a local worker before it runs: be killed when the chief dies (Linux), so a chief killed and started
    again does not find its old workers still running beside the new ones."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def serve_study(oracle, options: ChiefOptions, *, run_dir: Path, progress=None, verbose: bool = True) -> None:
    """Serve the study's oracle with keras-tuner's gRPC servicer and run ``options.workers`` local workers until
    every trial (tuning and repeats) has ended. Returns when the study is done; raises StudyFailed when local
    workers keep dying."""
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    oracle.trial_timeout = options.trial_timeout
    oracle.verbose = 0  # the chief prints one progress line per trial instead of keras-tuner's tables
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max(4, options.workers + 2)))
    protos.get_service_grpc().add_OracleServicer_to_server(OracleServicer(oracle), server)
    try:
        port = server.add_insecure_port(f"{options.host}:{options.port}")
    except RuntimeError:
        port = 0
    if not port:
        raise BadInput(f"cannot listen on {options.host}:{options.port} (in use, or not this machine's address)",
                       source="command line", key="--port")
    import socket

    everywhere = options.host in ("0.0.0.0", "::")  # every interface: announce the machine's name
    address = f"{socket.getfqdn() if everywhere else options.host}:{port}"
    threads = options.worker_threads
    command = [sys.executable, "-m", "study", "worker", run_dir.name, "--runs-dir", str(run_dir.parent),
               "--chief", f"{'127.0.0.1' if everywhere else options.host}:{port}", "--quiet"]
    if options.data_dir is not None:
        command += ["--data-dir", str(options.data_dir)]
    environment = {"TF_CPP_MIN_LOG_LEVEL": "3", **os.environ, **thread_environment(threads)}
    workers = [_LocalWorker(index, command, environment) for index in range(options.workers)]
    chief_file = run_dir / CHIEF_FILE

    def announce() -> None:
        write_json_atomic(chief_file, {"address": address, "pid": os.getpid(), "trial_timeout": options.trial_timeout,
                                       "workers": {worker.tuner_id: worker.process.pid for worker in workers
                                                   if worker.process is not None}})

    try:
        for worker in workers:  # started before the server's threads: they wait for it to answer
            worker.start()
        server.start()
        announce()
        if verbose:
            print(f"[{run_dir.name}] chief serving on {address} with {options.workers} local worker(s) of {threads} "
                  f"thread(s); more join with: python -m study worker {run_dir.name} --runs-dir {run_dir.parent}",
                  flush=True)
        reported = len(oracle.end_order)
        while not (oracle.search_finished and not oracle.ongoing_trials):
            time.sleep(0.2)
            for worker in workers:
                code = worker.process.poll() if worker.process is not None else 0
                if code is None or code == 0:
                    continue
                released = oracle.release(worker.tuner_id)
                if worker.restarts >= MAX_RESTARTS_PER_WORKER:
                    raise StudyFailed(f"local worker {worker.index} exited with status {code} "
                                      f"{worker.restarts + 1} times; see its messages above")
                worker.restarts += 1
                if verbose:
                    print(f"[{run_dir.name}] {worker.tuner_id} exited with status {code}"
                          + (f"; trial {released} is handed out again" if released else "") + "; restarting it",
                          flush=True)
                worker.start()
                announce()
            oracle.release_silent_trials()
            ended = list(oracle.end_order[reported:])
            reported += len(ended)
            if progress is not None:
                for trial_id in ended:
                    progress.trial_done(failed=str(oracle.trials[trial_id].status) != "COMPLETED")
            if oracle.failure is not None:
                return
        # Every trial ended: workers asking now are told STOPPED and exit. Serve a little longer, so that every
        # waiting worker, local or joined from elsewhere, asks once more and hears it (a worker that finds no
        # chief waits for one for an hour).
        done = time.monotonic()
        while time.monotonic() < done + 10 and (time.monotonic() < done + 4 * IDLE_SECONDS + 1 or any(
                worker.process is not None and worker.process.poll() is None for worker in workers)):
            time.sleep(0.1)
    finally:
        for worker in workers:
            if worker.process is not None and worker.process.poll() is None:
                worker.process.terminate()
        for worker in workers:
            if worker.process is not None:
                try:
                    worker.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    worker.process.kill()
        server.stop(grace=1)
        try:
            chief_file.unlink()
        except FileNotFoundError:
            pass


# --------------------------------------------------------------------------- worker


class Heartbeat:
    """A worker's side of the heartbeat: a thread that tells the chief every few seconds that this worker still
    works on its trial, and the check the trainer calls before every write (:meth:`check`)."""

    def __init__(self, client, tuner_id: str, interval: float = HEARTBEAT_SECONDS):
        self.client = client
        self.tuner_id = tuner_id
        self.interval = interval
        self.trial_id: str | None = None
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _ask(self, trial_id: str) -> bool:
        from keras_tuner.src.engine import trial as trial_module

        answer = self.client.update_trial(trial_id, {f"study/heartbeat/{self.tuner_id}": 0.0})
        return answer.status != trial_module.TrialStatus.STOPPED

    def begin(self, trial_id: str) -> None:
        self.end()
        self.trial_id, self.lost = trial_id, False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(trial_id, self._stop), daemon=True)
        self._thread.start()

    def _beat(self, trial_id: str, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            try:
                if not self._ask(trial_id):
                    self.lost = True
                    return
            except Exception:  # the chief is away (restarting): the next beat or check asks again
                continue

    def check(self) -> None:
        """Raise TrialAbandoned when the chief handed this worker's trial to another worker."""
        from study.tuning import TrialAbandoned

        if self.lost or (self.trial_id is not None and not self._ask(self.trial_id)):
            self.lost = True
            raise TrialAbandoned(f"trial {self.trial_id} was handed to another worker")

    def holds(self, trial_id: str) -> bool:
        """Whether this worker still holds ``trial_id`` (asks the chief)."""
        return not self.lost and self._ask(trial_id)

    def end(self) -> None:
        self._stop.set()
        self._thread = None


def run_worker(name: str, *, runs_dir: Path, chief: str | None, tuner_id: str | None, data_dir: Path | None,
               quiet: bool = False) -> int:
    """Join the chief of study ``name`` (whose run directory this machine sees under ``runs_dir``) and train the
    trials it hands out until it says the study is done."""
    from study.config import space_from_record
    from study.tables import MANIFEST_FILE

    run_dir = Path(runs_dir) / name
    manifest_path = run_dir / MANIFEST_FILE
    if not manifest_path.is_file():
        raise BadInput(f"no study {name!r} here (no {MANIFEST_FILE}); start its chief first with "
                       "python -m study run SPACE --workers N", source=str(run_dir))
    manifest = _previous_manifest(manifest_path)
    try:
        announced = json.loads((run_dir / CHIEF_FILE).read_text(encoding="utf-8"))
        announced = announced if isinstance(announced, dict) else {}
    except (OSError, ValueError):
        announced = {}
    if chief is None:
        chief = announced.get("address")
        if not isinstance(chief, str):
            raise BadInput(f"no chief is serving this study ({CHIEF_FILE} is missing or unreadable); give its "
                           "address with --chief HOST:PORT", source=str(run_dir))
    # Beat at least four times per timeout, so that a live worker is never taken for a dead one.
    timeout = announced.get("trial_timeout")
    interval = min(HEARTBEAT_SECONDS, float(timeout) / 4) if isinstance(timeout, (int, float)) and timeout > 0 \
        else HEARTBEAT_SECONDS
    host, port = parse_address(chief, source=str(run_dir / CHIEF_FILE), key="--chief")
    space = space_from_record(manifest["space"], source=str(manifest_path))
    context = study_context(space, runs_dir, data_dir=data_dir, shared=True)
    if data_record(context)["content_hash"] != manifest["dataset"]["content_hash"]:
        raise BadInput(f"this machine's data for study {name!r} differ from the chief's (content hash); point "
                       "--data-dir at the same files", source=str(run_dir))

    tuner_id = tuner_id or f"worker-{os.uname().nodename}-{os.getpid()}"
    os.environ.update(KERASTUNER_ORACLE_IP=host, KERASTUNER_ORACLE_PORT=str(port), KERASTUNER_TUNER_ID=tuner_id)
    from keras_tuner.src.distribute import oracle_client
    from keras_tuner.src.engine import trial as trial_module

    from study.tuning import StratifiedOracle, StudyTuner, oracle_seed

    class PatientClient(oracle_client.OracleClient):
        """keras-tuner's worker client, waiting a moment when told IDLE instead of asking again at once."""

        def create_trial(self, tuner_id):
            trial = super().create_trial(tuner_id)
            if trial.status == trial_module.TrialStatus.IDLE:
                time.sleep(IDLE_SECONDS)
            return trial

    oracle = StratifiedOracle(space, seed=oracle_seed(space), run_dir=run_dir)
    tuner = StudyTuner(oracle, context, directory=str(run_dir), project_name="tuner")
    tuner.oracle = PatientClient(oracle)
    tuner.owner = Heartbeat(tuner.oracle, tuner_id, interval=interval)
    if not quiet:
        print(f"[{name}] worker {tuner_id} joined the chief at {host}:{port}", flush=True)
    tuner.search(verbose=0)
    tuner.owner.end()
    return 0
