"""mlv/cli/output.py is the only module of the CLI that writes to stdout or stderr, asks
whether they are terminals, or imports rich: every other module goes through it."""

from __future__ import annotations

import re
from pathlib import Path

CLI = Path(__file__).resolve().parents[2] / "mlv" / "cli"

# A write or a terminal check that would bypass output.py.
BYPASS = re.compile(
    r"click\.(echo|secho|style)\b|\bsys\.(stdout|stderr)\b|\bprint\(|\bisatty\(|"
    r"^\s*(import|from) rich\b|csv\.writer\(sys",
    re.MULTILINE,
)


def test_only_output_py_writes_to_stdout_and_stderr() -> None:
    found = [
        f"{path.name}:{text[: m.start()].count(chr(10)) + 1}: {m.group(0)}"
        for path in sorted(CLI.glob("*.py"))
        if path.name != "output.py"
        for text in [path.read_text()]
        for m in BYPASS.finditer(text)
    ]
    assert found == []
