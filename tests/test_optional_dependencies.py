"""Without the optional wfdb package, mitdb/cinc2017 explain how to install it and every other dataset works.

The check runs in a fresh interpreter whose ``sys.modules['wfdb'] = None`` makes ``import wfdb`` fail, as it
does where wfdb is not installed; nothing else is replaced.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import PROJECT_ROOT

SCRIPT = textwrap.dedent("""
    import json, sys
    sys.modules["wfdb"] = None  # import wfdb now raises ImportError, as without the package
    from study.config import load_space
    from study.datasets import dataset_names, load_dataset, resolve
    from study.errors import BadInput

    def refusal(name):
        try:
            resolve(name)
        except BadInput as error:
            return str(error)
        return None

    def strips():
        dataset = load_dataset("synthetic_ecg", {"n_strips": 48, "length": 32, "seed": 1})
        return [len(dataset.y_train), len(dataset.y_val), len(dataset.y_test)]

    ucr_dir = sys.argv[1]
    results = {
        "synthetic_first": strips(),
        "mitdb": refusal("mitdb"),
        "cinc2017": refusal("cinc2017"),
        "synthetic_later": strips(),
        "ucr": list(load_dataset("ucr:" + ucr_dir).class_names),
        "mitdb_again": refusal("mitdb"),
        "unknown": refusal("ptbxl"),
        "names": dataset_names(),
        "demo_space": load_space("search_spaces/demo.yaml").dataset.name,
        "wfdb_loaded": sys.modules.get("wfdb") is not None,
    }
    try:
        load_space("search_spaces/mitdb_depth.yaml")
    except BadInput as error:
        results["mitdb_space"] = str(error)
    print(json.dumps(results))
""")


def _write_ucr_problem(directory: Path) -> None:
    """A tiny two-class UCR problem in tab-separated form."""
    directory.mkdir()
    rows = {"TRAIN": 20, "TEST": 6}
    for split, count in rows.items():
        lines = []
        for index in range(count):
            label = index % 2 + 1
            values = [str((label * 0.5) + 0.01 * step + 0.001 * index) for step in range(12)]
            lines.append("\t".join([str(label), *values]))
        (directory / f"Toy_{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_without_wfdb_mitdb_and_cinc2017_explain_and_the_rest_still_work(tmp_path):
    _write_ucr_problem(tmp_path / "Toy")
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "Toy")], cwd=PROJECT_ROOT,
                            env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout.strip().splitlines()[-1])

    pin = re.search(r"^wfdb==\S+$", (PROJECT_ROOT / "requirements.txt").read_text(), flags=re.MULTILINE).group(0)
    for name in ("mitdb", "cinc2017"):
        assert results[name] == f"key 'dataset.name': dataset '{name}' needs the optional package wfdb: " \
                                f"pip install {pin}", results[name]
    assert results["mitdb_again"] == results["mitdb"]
    assert results["mitdb_space"] == f"search_spaces/mitdb_depth.yaml: {results['mitdb']}"
    assert "\n" not in results["mitdb"]

    assert results["synthetic_first"] == results["synthetic_later"] and sum(results["synthetic_first"]) == 48
    assert results["ucr"] == ["1", "2"]
    assert results["demo_space"] == "synthetic_ecg"
    assert "unknown dataset 'ptbxl'" in results["unknown"]
    assert {"mitdb", "cinc2017", "synthetic_ecg"} <= set(results["names"])
    assert results["wfdb_loaded"] is False


def test_with_wfdb_the_real_datasets_are_registered():
    from study.datasets import DATASETS, resolve

    spec, implied = resolve("mitdb")
    assert spec is DATASETS["mitdb"] and implied == {}


def test_bench_skips_mitdb_with_one_line_when_its_data_is_incomplete(tmp_path, monkeypatch):
    from study.bench import bench_mitdb

    (tmp_path / "mitdb").mkdir()
    (tmp_path / "mitdb" / "100.dat").write_bytes(b"\0" * 16)  # a signal file without its header
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("STUDY_CACHE_DIR", raising=False)
    reason = bench_mitdb()
    assert isinstance(reason, str) and "\n" not in reason
    assert reason.endswith(".hea: record header missing") and str(tmp_path / "mitdb") in reason
    assert "STUDY_CACHE_DIR" not in os.environ  # the benchmark's temporary cache is not left behind
