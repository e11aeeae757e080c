"""Benchmarks (``make bench``): the cost of recording, the demo, report rebuilds, dataset builds, workers.

1. A recorded trial (the study's tuner, inference-mode train/validation scores every
   epoch, test at the best epoch) against a bare ``model.fit`` of the same model, data,
   epochs, batch size and seed without validation data (goal: ratio <= 1.15; the per-epoch
   inference pass over the training subset and validation split is about 15% of an epoch's
   arithmetic, so this is near the limit), and against one with ``validation_data`` (goal: <= 1.15).
   Wall and CPU time, medians of the repeats' paired ratios; one untimed study first, so the timed trials are
   like a cell's later trials, which reuse the cell's compiled effective-field gradient (a cell's first trial
   also pays its tracing: 0.15 s for a CNN of depth 8, 0.8 s for an LSTM of depth 4 on TensorFlow).
   And the share of a cell's trial time spent recording per-layer gradient norms (``record_gradients``;
   the recorder's own clock, ``gradient_seconds`` in trials.csv; goal: at most 10%), with the wall times of
   the same trials with and without them.
2. ``make demo``'s run and report time (goal: under 5 minutes on 2 CPU cores).
3. Rebuilding the report of a study with 100,000 epoch rows (goal: under 30 s).
4. Building all MIT-BIH beats cold (goal: under 30 s) and loading them cached (goal: under 2 s).
5. Trials per minute of a distributed study (``python -m study run SPACE --workers N``) of small LSTMs
   with 1 and 2 local workers, over the whole command and in the steady state between the first and last
   progress lines (start-up excluded); goal: 2 workers at least 1.4x the rate of 1 on 2 cores.

``--only PART`` (repeatable) runs only the named parts: recording, gradients, report, mitdb, demo, workers.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _space(architecture: str, depth: int, epochs: int, *, trials: int = 1, record_gradients: bool = False):
    from study.config import space_from_dict

    return space_from_dict({
        "name": "bench",
        "dataset": {"name": "synthetic_ecg", "parameters": {"n_strips": 1000, "length": 140}},
        "tuner": {"name": "quasi_random", "trials_per_cell": trials, "seed": 1},
        "training": {"record_gradients": record_gradients},
        "repeats": {"seeds": 0},
        "hyperparameters": {
            "architecture": {"role": "scientific", "values": [architecture]},
            "depth": {"role": "scientific", "values": [depth]},
            "dropout": {"role": "fixed", "value": 0.2},
            "weight_decay": {"role": "fixed", "value": 1e-4},
            "learning_rate": {"role": "fixed", "value": 3e-3},
            "width": {"role": "fixed", "value": 32},
            "epochs": {"role": "fixed", "value": epochs},
            "batch_size": {"role": "fixed", "value": 64},
        },
    }, source="bench")


def _timed(function) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, every thread) of one call. CPU time leaves out the time other
    tenants of a shared host take from us: on this project's virtual machines identical fits varied by 30% in wall
    time between runs, so the CPU-time ratio is the steadier reading of what recording costs."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_recording(architecture: str, depth: int, epochs: int, repeats: int) -> dict[str, float]:
    """Wall and CPU time of a recorded study trial and of a bare fit with and without validation data.

    The three run in turn in every repeat, from the same seed; the ratios are medians over the repeats of each
    repeat's own ratio, so that slow drifts of the machine's speed cancel.
    """
    import keras

    from study.datasets import load_dataset
    from study.models import build_model, compile_model
    from study.runner import run_study

    space = _space(architecture, depth, epochs)
    dataset = load_dataset("synthetic_ecg", dict(space.dataset.parameters))
    values = {**space.fixed_values(), "architecture": architecture, "depth": depth}
    timings: dict[str, list[tuple[float, float]]] = {"recorded": [], "bare": [], "bare_without_validation": []}

    def bare_fit(validation: bool, epochs: int = epochs) -> None:
        model = build_model(values, dataset.input_shape, dataset.num_classes)
        compile_model(model, learning_rate=values["learning_rate"], weight_decay=values["weight_decay"],
                      weight_decay_type=values["weight_decay_type"])
        model.fit(dataset.x_train, dataset.y_train, epochs=epochs, batch_size=values["batch_size"], verbose=0,
                  validation_data=(dataset.x_val, dataset.y_val) if validation else None)
        keras.backend.clear_session()

    bare_fit(validation=True, epochs=1)  # untimed: the process's first fit pays one-off start-up costs
    with tempfile.TemporaryDirectory() as directory:
        run_study(space, runs_dir=Path(directory), overwrite=True, dataset=dataset, verbose=False)  # untimed, too
        for repeat in range(repeats):
            keras.utils.set_random_seed(repeat)  # both bare fits start from the same seed: same weights, batches
            timings["bare"].append(_timed(lambda: bare_fit(validation=True)))
            keras.utils.set_random_seed(repeat)
            timings["bare_without_validation"].append(_timed(lambda: bare_fit(validation=False)))
            timings["recorded"].append(_timed(lambda: run_study(space, runs_dir=Path(directory), overwrite=True,
                                                                dataset=dataset, verbose=False)))

    def ratio(numerator: str, denominator: str, clock: int) -> float:
        return statistics.median(top[clock] / bottom[clock]
                                 for top, bottom in zip(timings[numerator], timings[denominator]))

    result = {f"{name}_s": statistics.median(wall for wall, _ in pairs) for name, pairs in timings.items()}
    result.update({f"{name}_cpu_s": statistics.median(cpu for _, cpu in pairs) for name, pairs in timings.items()})
    result.update(ratio=ratio("recorded", "bare", 0), ratio_no_validation=ratio("recorded", "bare_without_validation", 0),
                  cpu_ratio=ratio("recorded", "bare", 1),
                  cpu_ratio_no_validation=ratio("recorded", "bare_without_validation", 1))
    return result


def bench_gradients(architecture: str, depth: int, epochs: int, trials: int = 2) -> dict[str, float]:
    """Wall time of one cell's ``trials`` trials with and without per-layer gradient norms.

    A cell's trials share one compiled gradient function (the same variables), so the first trial pays the
    tracing and later ones do not; the ratio over a cell's trials is what a study pays.
    """
    from study.datasets import load_dataset
    from study.runner import run_study

    from study.tables import read_trials

    timings, share = {}, float("nan")
    for record in (False, True):
        space = _space(architecture, depth, epochs, trials=trials, record_gradients=record)
        dataset = load_dataset("synthetic_ecg", dict(space.dataset.parameters))
        with tempfile.TemporaryDirectory() as directory:
            start = time.perf_counter()
            run_dir = run_study(space, runs_dir=Path(directory), overwrite=True, dataset=dataset, verbose=False)
            timings[record] = time.perf_counter() - start
            if record:  # the recorder's own clock: what the norms cost, free of run-to-run noise
                rows = read_trials(run_dir)
                share = float(rows["gradient_seconds"].sum() / rows["seconds"].sum())
    return {"without_s": timings[False], "with_s": timings[True], "ratio": timings[True] / timings[False],
            "share": share}


#: The study of the workers benchmark: small LSTMs at depths 1 and 2 on synthetic ECG strips, sized so that one
#: worker takes a minute or two on 2 cores.
WORKERS_STUDY = "bench_workers"
_PROGRESS = re.compile(r"^\[" + WORKERS_STUDY + r"\] (\d+)/(\d+) trials")


def _workers_space(trials: int = 16, epochs: int = 4) -> dict:
    return {
        "name": WORKERS_STUDY,
        "dataset": {"name": "synthetic_ecg", "parameters": {"n_strips": 600, "length": 140}},
        "tuner": {"name": "quasi_random", "trials_per_cell": trials, "seed": 1},
        "repeats": {"seeds": 0},
        "hyperparameters": {
            "architecture": {"role": "scientific", "values": ["lstm"]},
            "depth": {"role": "scientific", "values": [1, 2]},
            "dropout": {"role": "nuisance", "min": 0.0, "max": 0.4, "step": 0.1},
            "learning_rate": {"role": "nuisance", "min": 1e-3, "max": 1e-2, "log": True},
            "width": {"role": "fixed", "value": 32},
            "epochs": {"role": "fixed", "value": epochs},
            "batch_size": {"role": "fixed", "value": 64},
        },
    }


def bench_workers(workers: int, space_file: Path, runs_dir: Path) -> dict[str, float]:
    """Run the workers benchmark's study afresh with ``workers`` local workers (a subprocess, as a user would) and
    time-stamp its progress lines as they come: trials per minute over the whole command, and in the steady state
    from the first progress line to the last (imports, data and the first compilation excluded)."""
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "study", "run", str(space_file), "--runs-dir", str(runs_dir), "--overwrite",
               "--workers", str(workers)]
    stamps: list[tuple[float, int]] = []  # (time, trials done) of every progress line
    tail: collections.deque[str] = collections.deque(maxlen=20)
    start = time.monotonic()
    with subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL, text=True, bufsize=1, cwd=PROJECT_ROOT) as process:
        for line in process.stdout:
            now = time.monotonic()
            tail.append(line.rstrip())
            match = _PROGRESS.match(line)
            if match:
                stamps.append((now, int(match.group(1))))
        code = process.wait()
    wall = time.monotonic() - start
    if code != 0 or not stamps:
        raise RuntimeError(f"{' '.join(command)} exited with status {code}"
                           + ("" if stamps else " without a progress line") + ":\n" + "\n".join(tail))
    (first_time, first_done), (last_time, last_done) = stamps[0], stamps[-1]
    steady = (last_done - first_done) / (last_time - first_time) * 60 if last_time > first_time else float("nan")
    return {"wall_s": wall, "trials": last_done, "per_minute": last_done / wall * 60, "steady_per_minute": steady,
            "first_line_s": first_time - start}


def bench_demo() -> float:
    """Wall time of `make demo`'s two commands (run and report), installing excluded."""
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        for arguments in (["run", str(PROJECT_ROOT / "search_spaces" / "demo.yaml"), "--overwrite", "--quiet",
                           "--runs-dir", f"{directory}/runs"],
                          ["report", "demo", "--runs-dir", f"{directory}/runs", "--reports-dir",
                           f"{directory}/reports"]):
            subprocess.run([sys.executable, "-m", "study", *arguments], check=True, env=environment,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - start


def synthetic_run(run_dir: Path, rows: int = 100_000, epochs: int = 50, seed: int = 0) -> None:
    """Write a generated study with about ``rows`` epoch rows: 2 architectures x 4 depths, paired quasi-random
    settings, 5 repeat seeds per cell (study.statistics.planted; nothing is trained)."""
    from study.statistics.planted import PlantedStudy, planted_tables

    cells, repeat_seeds = 8, 5
    settings = max(rows // (epochs * cells) - repeat_seeds, 2)
    epoch_table, trials, manifest = planted_tables(PlantedStudy(settings_per_cell=settings, epochs=epochs,
                                                                repeat_seeds=repeat_seeds, seed=seed))
    run_dir.mkdir(parents=True)
    epoch_table.to_csv(run_dir / "epochs.csv", index=False)
    trials.to_csv(run_dir / "trials.csv", index=False)
    (run_dir / "manifest.json").write_text(json.dumps(manifest))


def bench_report(rows: int) -> float:
    from study.report import build_report

    with tempfile.TemporaryDirectory() as directory:
        run_dir = Path(directory) / "runs" / "bench"
        synthetic_run(run_dir, rows=rows)
        start = time.perf_counter()
        build_report(run_dir, Path(directory) / "reports" / "bench")
        return time.perf_counter() - start


def bench_mitdb() -> dict[str, float] | str:
    """Cold build and cached load of every MIT-BIH beat, or why the benchmark was skipped."""
    from study.datasets import default_data_dir, load_dataset
    from study.errors import BadInput

    if not (default_data_dir() / "mitdb").is_dir():
        return "no MIT-BIH data in the data directory"
    previous_cache = os.environ.get("STUDY_CACHE_DIR")
    try:
        with tempfile.TemporaryDirectory() as cache:
            os.environ["STUDY_CACHE_DIR"] = cache
            start = time.perf_counter()
            every_beat = {"max_beats_per_class": None} if "max_beats_per_class" in _mitdb_defaults() else {}
            dataset = load_dataset("mitdb", every_beat)
            cold = time.perf_counter() - start
            start = time.perf_counter()
            load_dataset("mitdb", every_beat)
            cached = time.perf_counter() - start
    except BadInput as error:  # incomplete data (a header missing, ...) or wfdb not installed
        return " ".join(str(error).split())
    finally:
        if previous_cache is None:
            os.environ.pop("STUDY_CACHE_DIR", None)
        else:
            os.environ["STUDY_CACHE_DIR"] = previous_cache
    beats = len(dataset.y_train) + len(dataset.y_val) + len(dataset.y_test)
    return {"beats": beats, "cold_s": cold, "cached_s": cached}


def _mitdb_defaults() -> dict:
    from study.datasets import DATASETS, resolve

    resolve("mitdb")
    return DATASETS["mitdb"].defaults


PARTS = ("recording", "gradients", "report", "mitdb", "demo", "workers")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m study.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--skip-demo", action="store_true", help="skip timing make demo")
    parser.add_argument("--only", action="append", choices=PARTS, metavar="PART",
                        help=f"run only this part (repeatable; one of {', '.join(PARTS)}); default: all")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the recording benchmark")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each timing (median reported)")
    arguments = parser.parse_args(argv)
    parts = set(arguments.only or PARTS) - ({"demo"} if arguments.skip_demo else set())
    print(f"cores: {os.cpu_count()}")
    for architecture, depth in (("lstm", 2), ("cnn", 4)) if "recording" in parts else ():
        result = bench_recording(architecture, depth, arguments.epochs, arguments.repeats)
        print(f"recording {architecture} depth {depth}, {arguments.epochs} epochs, 1,000 strips, median of "
              f"{arguments.repeats}: recorded trial {result['recorded_s']:.2f} s wall / {result['recorded_cpu_s']:.2f} s "
              f"CPU; bare fit without validation {result['bare_without_validation_s']:.2f} / "
              f"{result['bare_without_validation_cpu_s']:.2f} s -> ratio {result['ratio_no_validation']:.3f} wall, "
              f"{result['cpu_ratio_no_validation']:.3f} CPU (goal <= 1.15); bare fit with validation_data "
              f"{result['bare_s']:.2f} / {result['bare_cpu_s']:.2f} s -> ratio {result['ratio']:.3f} wall, "
              f"{result['cpu_ratio']:.3f} CPU (goal <= 1.15)", flush=True)
    for architecture, depth in (("lstm", 2), ("lstm", 8), ("cnn", 4)) if "gradients" in parts else ():
        result = bench_gradients(architecture, depth, arguments.epochs)
        print(f"gradient norms {architecture} depth {depth}, 2 trials of {arguments.epochs} epochs, 1,000 strips: "
              f"{result['share']:.1%} of the trials' time (goal <= 10%); study wall time {result['with_s']:.2f} s "
              f"with, {result['without_s']:.2f} s without -> ratio {result['ratio']:.3f}", flush=True)
    if "report" in parts:
        rebuild = bench_report(100_000)
        print(f"report rebuild, 100,000 epoch rows: {rebuild:.2f} s (goal < 30 s)", flush=True)
    mitdb = bench_mitdb() if "mitdb" in parts else None
    if isinstance(mitdb, str):
        print(f"mitdb: skipped ({mitdb})", flush=True)
    elif mitdb is not None:
        print(f"mitdb: {mitdb['beats']:,} beats built cold in {mitdb['cold_s']:.2f} s (goal < 30 s), "
              f"cached load {mitdb['cached_s']:.2f} s (goal < 2 s)", flush=True)
    if "workers" in parts:
        import yaml

        from study.config import space_from_dict
        from study.distributed import threads_per_worker

        document = _workers_space()
        space = space_from_dict(document, source="bench")  # bad input here, not in a subprocess
        cells = len(space.cells())
        rates = {}
        with tempfile.TemporaryDirectory() as directory:
            space_file = Path(directory) / f"{WORKERS_STUDY}.yaml"
            space_file.write_text(yaml.safe_dump(document), encoding="utf-8")
            for workers in (1, 2):
                rates[workers] = result = bench_workers(workers, space_file, Path(directory) / f"runs{workers}")
                print(f"workers: {workers} worker(s) of {threads_per_worker(workers)} thread(s), "
                      f"{result['trials']} trials (lstm depth 1 and 2, {cells} cells, "
                      f"{document['hyperparameters']['epochs']['value']} epochs, "
                      f"{document['dataset']['parameters']['n_strips']} strips): {result['wall_s']:.1f} s "
                      f"-> {result['per_minute']:.2f} trials/min; steady state (first progress line at "
                      f"{result['first_line_s']:.1f} s to the last) {result['steady_per_minute']:.2f} trials/min",
                      flush=True)
        print(f"workers: 2 workers / 1 worker: {rates[2]['per_minute'] / rates[1]['per_minute']:.2f}x trials/min "
              f"over the whole command, {rates[2]['steady_per_minute'] / rates[1]['steady_per_minute']:.2f}x in the "
              f"steady state (goal >= 1.4x)", flush=True)
    if "demo" in parts:
        print(f"make demo (run + report, installing excluded): {bench_demo():.1f} s (goal < 300 s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
