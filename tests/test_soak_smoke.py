"""The soak (benchmarks/soak.py) as a correctness test: a short seeded run, 0 wrong answers.

Not a performance test: nothing here is timed or compared with a figure; the soak counts
answers that differ from what the soak app must send (every body byte is checked).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: every operation of the mix, so a zero cannot come from a mix that did nothing
LANE_KINDS = ("get", "echo", "range", "abort", "reset", "slow", "slow_reader", "stubborn")


def run_soak(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    log = tmp_path / "server.log"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--sample", "5",
         "--server-log", str(log), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=170, env={**os.environ, **(env or {})},
    )
    results = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert results, f"no RESULT line:\n{proc.stdout}\n{proc.stderr}"
    result: dict[str, Any] = json.loads(results[-1].removeprefix("RESULT "))
    result["log_text"] = log.read_text(errors="replace")
    return result


@pytest.mark.timeout(200)
@pytest.mark.parametrize("mode", ["cleartext", "tls"])
def test_soak_without_bursts_gives_no_wrong_answer(tmp_path: Path, mode: str) -> None:
    result = run_soak(tmp_path, "--mode", mode, "--duration", "12", "--seed", "11",
                      "--no-bursts")
    assert result["wrong_total"] == 0, result["examples"]
    assert result["server_errors"] == 0, result["log_text"]
    ops = result["ops"]
    for kind in (*LANE_KINDS, "churn", "stalled_session"):
        assert ops.get(kind, 0) > 0, f"no {kind} operation completed: {ops}"
    assert result["session_counts"]["churned"] > 0


@pytest.mark.timeout(200)
def test_soak_counts_a_flipped_byte_as_a_wrong_answer(tmp_path: Path) -> None:
    """The checks are real: the app flips one byte of every 40th /data body."""
    result = run_soak(tmp_path, "--duration", "5", "--seed", "13", "--no-bursts",
                      "--no-stalls", "--no-churn", env={"SPDYASGI_SOAK_CORRUPT": "40"})
    assert result["wrong"]["bytes"] > 0, result
    assert result["targets_met"] is False
    assert all(example.startswith("bytes: ") for example in result["examples"]), result


# Regression (issue 11, items 1 and 4): the old reset budget closed media-player sessions
# with GOAWAY, and their playback streams were lost.
@pytest.mark.timeout(200)
def test_soak_with_media_player_bursts_gives_no_wrong_answer(tmp_path: Path) -> None:
    result = run_soak(tmp_path, "--mode", "cleartext", "--duration", "25", "--seed", "12",
                      "--players", "3")
    assert result["burst_count"] > 0 and result["ops"].get("burst_stream", 0) > 0
    assert result["ops"].get("play", 0) > 0
    assert result["wrong_total"] == 0, result["examples"]
    assert result["server_errors"] == 0, result["log_text"]
