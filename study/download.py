"""Download the real ECG databases from PhysioNet: ``python -m study.download mitdb|cinc2017 [--data-dir DIR]``.

``mitdb`` fetches the 44 non-paced MIT-BIH Arrhythmia records (header, signal and
``atr`` annotations) into ``DIR/mitdb``. ``cinc2017`` fetches the PhysioNet/CinC
Challenge 2017 training records (``.hea`` + ``.mat``, flattened out of PhysioNet's
``A00/``..``A08/`` folders) into ``DIR/cinc2017`` and the challenge's latest labels,
``REFERENCE-v3.csv``, saved as ``REFERENCE.csv`` there. ``wfdb`` resumes partial
files and skips complete ones, so running it again finishes an interrupted download.
Without network access, without the ``wfdb`` package, or with a data directory that
cannot be written, it prints one error line and exits with status 2.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

DATABASES = ("mitdb", "cinc2017")


def download_mitdb(target: Path) -> None:
    """The 44 inter-patient records of MIT-BIH (PhysioNet ``mitdb``) with their reference beat labels."""
    import wfdb

    from study.datasets.physionet import DS1, DS2

    wfdb.dl_database("mitdb", str(target), records=sorted(DS1 + DS2), annotators=["atr"])


def download_cinc2017(target: Path) -> None:
    """The CinC 2017 training set (PhysioNet ``challenge-2017/<version>/training``) and its v3 labels."""
    import wfdb

    # dl_database inserts the latest version after the first path part itself:
    # "challenge-2017/training" -> challenge-2017/1.0.0/training.
    wfdb.dl_database("challenge-2017/training", str(target), annotators=None, keep_subdirs=False)
    wfdb.dl_files("challenge-2017", str(target), ["REFERENCE-v3.csv"])
    shutil.copyfile(target / "REFERENCE-v3.csv", target / "REFERENCE.csv")


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m study.download", description=__doc__.splitlines()[0])
    parser.add_argument("database", choices=DATABASES, help="which PhysioNet database to fetch")
    parser.add_argument("--data-dir", type=Path, default=Path("data"),
                        help="directory that receives <database>/ (default: data/)")
    options = parser.parse_args(arguments)
    target = options.data_dir / options.database
    try:
        import wfdb  # noqa: F401  (optional: only the PhysioNet datasets need it)
    except ImportError:
        from study.datasets import pinned_requirement

        print(f"error: downloading {options.database} needs the optional package wfdb: pip install "
              f"{pinned_requirement('wfdb')}", file=sys.stderr)
        return 2
    existed = target.exists()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"error: cannot create {target}: {error.strerror or error}", file=sys.stderr)
        return 2
    try:
        if options.database == "mitdb":
            download_mitdb(target)
        else:
            download_cinc2017(target)
    except (OSError, ValueError) as error:  # requests' connection and HTTP errors are OSErrors too
        message = " ".join(str(error).split())
        print(f"error: could not download {options.database} from PhysioNet into {target}: {message}",
              file=sys.stderr)
        _remove_if_empty(target, existed)
        return 2
    except KeyboardInterrupt:
        print(f"error: interrupted; run the same command again to finish the download into {target}",
              file=sys.stderr)
        _remove_if_empty(target, existed)
        return 130
    print(f"{options.database} downloaded into {target}")
    return 0


def _remove_if_empty(target: Path, existed: bool) -> None:
    """Leave no empty database directory behind for the loaders to trip on."""
    if not existed and target.is_dir() and not any(target.iterdir()):
        target.rmdir()


if __name__ == "__main__":
    sys.exit(main())
