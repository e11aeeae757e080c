"""Command line: ``python -m study run SPACE ...`` and ``python -m study report NAME``.

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
    from study.runner import StudyFailed, run_study

    try:
        run_dir = run_study(space, runs_dir=arguments.runs_dir, data_dir=arguments.data_dir,
                            overwrite=arguments.overwrite, verbose=not arguments.quiet)
    except StudyFailed as error:
        print(f"study: {error}", file=sys.stderr)
        return EXIT_INTERNAL
    print(f"study {space.name!r} done: {run_dir}; build its report with: python -m study report {space.name}")
    return EXIT_OK


def _report(arguments: argparse.Namespace) -> int:
    from study.config import check_study_name
    from study.report import build_report

    check_study_name(arguments.name, source="command line", key="name")
    path = build_report(arguments.runs_dir / arguments.name, arguments.reports_dir / arguments.name,
                        compare=arguments.compare, runs_dir=arguments.runs_dir)
    print(f"report written: {path}")
    return EXIT_OK
