"""Bounded atheris (libFuzzer) runs of the note and proof harnesses.

Each harness runs in a subprocess for ``FUZZ_RUNS`` inputs (default 50,000),
capped at ``FUZZ_MAX_SECONDS`` (default 120), from a small seed corpus; the test
fails if libFuzzer reports a crash (an exception other than the documented
error types), showing the saved input. The number of inputs tried is printed:
``atheris: fuzz_note.py tried N inputs``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
RUNS = int(os.environ.get("FUZZ_RUNS", "50000"))
MAX_SECONDS = int(os.environ.get("FUZZ_MAX_SECONDS", "120"))

pytest.importorskip(
    "atheris", reason="atheris (libFuzzer for Python) is not installed: pip install -e '.[test]'"
)
pytestmark = pytest.mark.slow


def _fuzz(harness: Path, tmp_path: Path, runs: int) -> tuple[subprocess.CompletedProcess[str], int]:
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    subprocess.run(
        [sys.executable, str(harness), "--write-seeds", str(corpus)], check=True, timeout=120
    )
    proc = subprocess.run(
        [
            sys.executable,
            str(harness),
            f"-runs={runs}",
            f"-max_total_time={MAX_SECONDS}",
            f"-artifact_prefix={tmp_path}/",
            "-print_final_stats=1",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=MAX_SECONDS + 300,
        cwd=tmp_path,
    )
    done = re.search(r"Done (\d+) runs", proc.stderr) or re.search(
        r"stat::number_of_executed_units:\s*(\d+)", proc.stderr
    )
    return proc, int(done.group(1)) if done else 0


def _crash_report(proc: subprocess.CompletedProcess[str], tmp_path: Path) -> str:
    saved = sorted(tmp_path.glob("crash-*"))
    inputs = "; ".join(f"{p.name}: {p.read_bytes()[:300]!r}" for p in saved)
    tail = (proc.stdout + proc.stderr)[-4000:]
    return f"libFuzzer exit {proc.returncode}; saved inputs: {inputs or 'none'}\n{tail}"


@pytest.mark.parametrize("name", ["fuzz_note.py", "fuzz_proof.py"])
def test_harness_finds_no_crash(name: str, tmp_path: Path) -> None:
    proc, tried = _fuzz(HERE / name, tmp_path, RUNS)
    print(f"atheris: {name} tried {tried} inputs")
    assert proc.returncode == 0, _crash_report(proc, tmp_path)
    assert tried > 0, proc.stderr[-2000:]


def test_a_crash_fails_the_run(tmp_path: Path) -> None:
    """The runner notices an undocumented exception (so the two runs above can fail)."""
    harness = tmp_path / "fuzz_broken.py"
    harness.write_text(
        "import sys\nfrom pathlib import Path\nimport atheris\n\n"
        "def one(data):\n    if data.startswith(b'boom'):\n        raise KeyError('not a "
        "documented error')\n\n"
        "if sys.argv[1] == '--write-seeds':\n    (Path(sys.argv[2]) / 'seed').write_bytes(b'boom')\n"
        "else:\n    atheris.Setup(sys.argv, one)\n    atheris.Fuzz()\n"
    )
    proc, _ = _fuzz(harness, tmp_path, 1000)
    assert proc.returncode != 0, proc.stderr[:1500]
    assert "KeyError" in proc.stdout + proc.stderr and list(tmp_path.glob("crash-*"))
