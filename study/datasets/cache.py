"""On-disk cache of built dataset arrays, so a real dataset is decoded once.

``cached(name, parameters, build, sources)`` returns the arrays and JSON info that
``build()`` makes, storing them as ``<name>-<key>.npz`` plus ``<name>-<key>.json``
under :func:`cache_dir`. The key hashes the name, the parameters and each source
file's resolved path, size and modification time, so editing, replacing or moving
a data file (or changing a parameter) builds afresh. Files are written to a
temporary name and renamed into place (atomic on POSIX), and the JSON file is
written last, so a reader never sees half an entry; an unreadable entry is
rebuilt. Delete the cache directory to reclaim the space.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

#: Bump when the stored layout changes, so old entries are never read.
CACHE_FORMAT = 1

Arrays = dict[str, np.ndarray]
BuildResult = tuple[Arrays, dict[str, Any]]


def cache_dir() -> Path:
    """``$STUDY_CACHE_DIR`` when set, else ``<project root>/.cache/datasets``."""
    configured = os.environ.get("STUDY_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path(__file__).resolve().parents[2] / ".cache" / "datasets"


def cache_key(name: str, parameters: dict[str, Any], sources: Iterable[Path]) -> str:
    """SHA-256 over the name, parameters and every source file's path, size and mtime."""
    fingerprints = []
    for source in sorted(Path(path).resolve() for path in sources):
        status = source.stat()
        fingerprints.append([str(source), status.st_size, status.st_mtime_ns])
    payload = json.dumps(
        {"format": CACHE_FORMAT, "name": name, "parameters": parameters, "sources": fingerprints},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def cached(name: str, parameters: dict[str, Any], build: Callable[[], BuildResult],
           sources: Iterable[Path] = ()) -> BuildResult:
    """Return ``build()``'s (arrays, info), from the cache when an entry for this key exists.

    ``sources`` are the files the build reads; they must exist (loaders check them
    first, so a missing file is reported by the loader, not here). When the cache
    directory cannot be written the result is returned uncached with a warning.
    """
    key = cache_key(name, parameters, sources)
    directory = cache_dir()
    stem = f"{_safe(name)}-{key[:24]}"
    arrays_path, info_path = directory / f"{stem}.npz", directory / f"{stem}.json"

    stored = _read(arrays_path, info_path, key)
    if stored is not None:
        return stored

    arrays, info = build()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _write_atomically(arrays_path, lambda handle: np.savez(handle, **arrays))
        record = {"key": key, "name": name, "parameters": parameters, "arrays": sorted(arrays), "info": info}
        text = json.dumps(record, indent=1, sort_keys=True, default=str)
        _write_atomically(info_path, lambda handle: handle.write(text.encode()))
    except OSError as error:
        warnings.warn(f"dataset cache not written to {directory}: {error}", RuntimeWarning, stacklevel=2)
    return arrays, info


def _read(arrays_path: Path, info_path: Path, key: str) -> BuildResult | None:
    """The stored entry, or None when it is absent, for another key or unreadable."""
    if not (arrays_path.is_file() and info_path.is_file()):
        return None
    try:
        record = json.loads(info_path.read_text())
        if record.get("key") != key:
            return None
        with np.load(arrays_path, allow_pickle=False) as stored:
            arrays = {array_name: stored[array_name] for array_name in stored.files}
    except (OSError, ValueError, KeyError, EOFError):
        return None
    if sorted(arrays) != record.get("arrays"):
        return None
    return arrays, record["info"]


def _write_atomically(path: Path, write: Callable[[Any], Any]) -> None:
    """Write through ``write(handle)`` to a temporary file beside ``path``, then rename it."""
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, 0o644)  # temporary files start private; cache entries are readable like others
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def _safe(name: str) -> str:
    """A file-name-safe form of a dataset name."""
    return "".join(character if character.isalnum() or character in "-_." else "_" for character in name)
