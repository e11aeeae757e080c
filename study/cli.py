"""Command line: ``python -m study run SPACE ...``, ``python -m study worker NAME`` and ``python -m study report NAME``.

Exit status 0 on success, 2 on bad input (one line, no traceback, nothing
written), 1 on an internal failure.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from study.errors import BadInput

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        command = self.prog.removeprefix("python -m study").strip()
        print(f"study: error: {_one_line(message)} (see python -m study {command + ' ' if command else ''}--help)",
              file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _one_line(message: object) -> str:
    """A message as one line: line breaks (in a file name, say) written as \\n."""
    return str(message).replace("\r", "\\r").replace("\n", "\\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m study", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="run or resume a study from a search-space YAML file")
    run.add_argument("space", help="search-space YAML file, e.g. search_spaces/depth.yaml")
    run.add_argument("--name", help="study name (letters, digits, - and _); default: the space's name")
    run.add_argument("--dataset", help="dataset name, e.g. synthetic_ecg, mitdb, cinc2017, ucr:<directory>")
    run.add_argument("--tuner", help="random, bayesian, hyperband or grid")
    run.add_argument("--trials", type=int, help="nuisance-tuning trials per scientific cell")
    run.add_argument("--epochs", type=int, help="epochs per trial")
    run.add_argument("--seed", type=int, help="study seed")
    run.add_argument("--seeds", type=int, help="seeds per cell in the repeat phase")
    run.add_argument("--overwrite", action="store_true", help="discard an existing run of this study")
    run.add_argument("--runs-dir", default="runs", type=Path, help="where runs live (default: runs)")
    run.add_argument("--data-dir", type=Path, help="real datasets' directory (default: $DATA_DIR, ../shared/data or data)")
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    run.add_argument("--workers", type=int, metavar="N",
                     help="serve the study from a chief and run N worker processes on this machine (0: workers only "
                          "join from elsewhere with python -m study worker); default: every trial in this process")
    run.add_argument("--host", default="127.0.0.1",
                     help="with --workers: the address the chief listens on (default 127.0.0.1: this machine only; "
                          "its port is unauthenticated, so open it only on a trusted network)")
    run.add_argument("--port", type=int, default=0, help="with --workers: the chief's port (default: any free one)")
    run.add_argument("--threads", type=int, default=None, metavar="T",
                     help="with --workers: threads per local worker (default: the cores divided among the workers)")
    run.add_argument("--trial-timeout", type=float, default=None, metavar="SECONDS",
                     help="with --workers: hand a trial out again when its worker sent no heartbeat for this long "
                          "(default 120)")
    worker = commands.add_parser("worker", help="join a running study's chief and train the trials it hands out")
    worker.add_argument("name", help="study name (its run directory must be visible here, e.g. a shared file system)")
    worker.add_argument("--runs-dir", default="runs", type=Path, help="where runs live (default: runs)")
    worker.add_argument("--chief", metavar="HOST:PORT",
                        help="the chief's address (default: read from runs/<name>/chief.json)")
    worker.add_argument("--id", dest="tuner_id", help="this worker's name (default: worker-<host>-<pid>)")
    worker.add_argument("--data-dir", type=Path, help="real datasets' directory (default: $DATA_DIR, ../shared/data "
                                                      "or data)")
    worker.add_argument("--threads", type=int, default=None, metavar="T",
                        help="threads this worker may use (default: what the backend takes, usually every core)")
    worker.add_argument("--quiet", action="store_true", help="no progress lines")
    report = commands.add_parser("report", help="build reports/<study>/ from runs/<study>/ alone")
    report.add_argument("name", help="study name")
    report.add_argument("--runs-dir", default="runs", type=Path)
    report.add_argument("--reports-dir", default="reports", type=Path)
    report.add_argument("--compare", nargs="+", default=None, metavar="LEVEL",
                        help="FIRST SECOND (two architectures) or FACTOR FIRST SECOND (two levels of any scientific "
                             "factor): the comparison every claim makes (default: the claims as the space states "
                             "them; without claims, lstm against cnn along depth)")
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        if arguments.command == "run":
            return _run(arguments)
        if arguments.command == "worker":
            return _worker(arguments)
        return _report(arguments)
    except BadInput as error:
        print(f"study: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:  # the machine, not the input: a full disk, a file system gone read-only
        print(f"study: failed: {_one_line(error)}", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        print("study: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


def _run(arguments: argparse.Namespace) -> int:
    from study.config import load_space, with_overrides

    space = load_space(arguments.space)
    space = with_overrides(space, name=arguments.name, dataset=arguments.dataset, tuner=arguments.tuner,
                           trials=arguments.trials, epochs=arguments.epochs, seed=arguments.seed,
                           repeat_seeds=arguments.seeds)
    if arguments.data_dir is not None and not arguments.data_dir.is_dir():
        raise BadInput("no such directory", source=str(arguments.data_dir), key="--data-dir")
    chief = _chief_options(arguments)
    from study.runner import StudyFailed, run_study

    try:
        run_dir = run_study(space, runs_dir=arguments.runs_dir, data_dir=arguments.data_dir,
                            overwrite=arguments.overwrite, verbose=not arguments.quiet, chief=chief)
    except StudyFailed as error:
        print(f"study: {error}", file=sys.stderr)
        return EXIT_INTERNAL
    print(f"study {space.name!r} done: {run_dir}; build its report with: python -m study report {space.name}")
    return EXIT_OK


def _chief_options(arguments: argparse.Namespace):
    """The chief's options from ``run``'s arguments (None without --workers)."""
    distributed = {"--host": arguments.host != "127.0.0.1", "--port": arguments.port != 0,
                   "--trial-timeout": arguments.trial_timeout is not None, "--threads": arguments.threads is not None}
    if arguments.workers is None:
        given = [flag for flag, used in distributed.items() if used]
        if given:
            raise BadInput(f"{given[0]} needs --workers N (it sets up the chief of a distributed study)",
                           source="command line", key=given[0])
        return None
    if not 0 <= arguments.workers <= 256:
        raise BadInput(f"{arguments.workers} is not allowed; allowed: 0 to 256 local workers", source="command line",
                       key="--workers")
    if not 0 <= arguments.port < 65536:
        raise BadInput(f"{arguments.port} is not allowed; allowed: 0 (any free port) to 65535", source="command line",
                       key="--port")
    _check_threads(arguments.threads)
    if arguments.trial_timeout is not None and not 1 <= arguments.trial_timeout <= 7 * 24 * 3600:
        raise BadInput(f"{arguments.trial_timeout} is not allowed; allowed: 1 to 604800 seconds",
                       source="command line", key="--trial-timeout")
    from study.distributed import TRIAL_TIMEOUT, ChiefOptions

    return ChiefOptions(workers=arguments.workers, host=arguments.host, port=arguments.port,
                        trial_timeout=arguments.trial_timeout or TRIAL_TIMEOUT, data_dir=arguments.data_dir,
                        threads=arguments.threads)


def _check_threads(threads: int | None) -> None:
    if threads is not None and not 1 <= threads <= 1024:
        raise BadInput(f"{threads} is not allowed; allowed: 1 to 1024 threads", source="command line", key="--threads")


def _worker(arguments: argparse.Namespace) -> int:
    from study.config import check_study_name

    check_study_name(arguments.name, source="command line", key="name")
    if arguments.tuner_id is not None and ("chief" in arguments.tuner_id or not arguments.tuner_id.strip()):
        raise BadInput(f"{arguments.tuner_id!r} is not allowed; allowed: a name without 'chief' (keras-tuner "
                       "takes any tuner id containing 'chief' for the chief)", source="command line", key="--id")
    if arguments.data_dir is not None and not arguments.data_dir.is_dir():
        raise BadInput("no such directory", source=str(arguments.data_dir), key="--data-dir")
    _check_threads(arguments.threads)
    import os

    from study.distributed import run_worker, thread_environment

    if arguments.threads is not None:  # before the backend is imported: it reads these once
        os.environ.update(thread_environment(arguments.threads))
    return run_worker(arguments.name, runs_dir=arguments.runs_dir, chief=arguments.chief,
                      tuner_id=arguments.tuner_id, data_dir=arguments.data_dir, quiet=arguments.quiet)


def _report(arguments: argparse.Namespace) -> int:
    from study.config import check_study_name
    from study.report import build_report

    check_study_name(arguments.name, source="command line", key="name")
    path = build_report(arguments.runs_dir / arguments.name, arguments.reports_dir / arguments.name,
                        compare=arguments.compare, runs_dir=arguments.runs_dir)
    print(f"report written: {path}")
    return EXIT_OK
