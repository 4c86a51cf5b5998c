"""tools/bench_table.py --quick end to end: a real server, the real peers, every row measured.

The figures at these sizes mean nothing; what is checked is that one command measures
every row of issue 15's table against its peer, with every read byte-for-byte equal to
the source, and writes the table with the machine and the command.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "bench_table.py"
ROWS = ("1", "2", "3", "4", "5", "6", "7", "8a", "8b")


def test_quick_table_has_every_row_with_a_finite_ratio(tmp_path: Path) -> None:
    out = tmp_path / "bench.md"
    r = subprocess.run(
        [sys.executable, str(TOOL), "--quick", "--out", str(out), "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # 0: every goal met, 1: some missed (expected today); 2 would be a wrong read or an error
    assert r.returncode in (0, 1), r.stdout + r.stderr[-3000:]
    text = out.read_text()
    assert text in r.stdout  # what is printed is what is written
    assert "tools/bench_table.py --quick" in text
    assert re.search(r"Machine: \d+ cores .*GiB RAM.* on \w+", text), text
    assert "all equal." in text, text
    rows = {
        m[0]: m
        for m in re.findall(
            r"^\| (\w+) \| (.+?) \|.*\*\*(\S+)x\*\* \| (\S+)-(\S+) \|"
            r" [<>]= [\d.]+x \| (OK|MISSED) \|$",
            text,
            re.M,
        )
    }
    assert sorted(rows) == sorted(ROWS), text
    for number, path, median, lo, hi, _ in rows.values():
        ratio, low, high = float(median), float(lo), float(hi)
        assert math.isfinite(ratio), (number, path, median)
        assert ratio > 0, (number, path, median)
        assert low <= ratio <= high, (number, path, lo, median, hi)
    assert "falcon+waitress" in rows["1"][1]
    assert "tensorstore" in rows["4"][1]
