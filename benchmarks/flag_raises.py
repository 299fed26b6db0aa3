"""Count the raise statements in the library whose own text names a CLI flag (issue 17: library errors speak in the
library's terms; the command layer adds the flag). A script, not a test.

    python benchmarks/flag_raises.py pipeline finetune
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

FLAG = re.compile(r"--[a-z]")


def flag_raises(roots: list[str]) -> tuple[list[str], int]:
    """(file:line of each raise naming a flag, number of raise statements) under `roots`."""
    flagged, total = [], 0
    for root in roots:
        for path in sorted(Path(root).rglob("*.py")):
            source = path.read_text()
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Raise) and node.exc is not None:
                    total += 1
                    if FLAG.search(ast.get_source_segment(source, node) or ""):
                        flagged.append(f"{path}:{node.lineno}")
    return flagged, total


if __name__ == "__main__":
    found, count = flag_raises(sys.argv[1:] or ["pipeline", "finetune"])
    print("\n".join(found))
    print(f"{len(found)} of {count} raise sites name a flag")
