"""The soak (tools/soak.py) for one minute: 8 client threads, 2 server processes, one store.

Zero errors (every answer 2xx, every read returns what that client wrote last) and
flat server memory; the 10-minute run's report is docs/soak-report.txt.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "soak.py"


def test_one_minute_soak_has_no_errors_and_flat_memory(tmp_path: Path) -> None:
    report = tmp_path / "soak.txt"
    r = subprocess.run(
        [sys.executable, str(TOOL), "--seconds", "60", "--report", str(report)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    text = report.read_text()
    assert ", 0 errors" in text, text
    assert "GREW" not in text, text
    requests = int(text.split(" requests")[0].rsplit(" ", 1)[1])
    assert requests > 1000, text  # it really ran mixed traffic for the minute
