"""The one table writer: rows of cells as a markdown table (padded, it also reads as text).

    markdown_table(["metric", "steered"], [["sae_act", "0.31 [0.2, 0.4]"]], align="lr")
"""

from __future__ import annotations

from collections.abc import Sequence


def markdown_table(header: Sequence[object], rows: Sequence[Sequence[object]],
                   align: str | None = None, pad: bool = False) -> str:
    """A markdown table; `align` has one letter per column, "l" or "r" (default all "l");
    `pad` aligns the columns with spaces (for a terminal). Cells are str()-ed; a "|" inside
    a cell is escaped."""
    cells = [[_cell(c) for c in row] for row in [header, *rows]]
    n = len(cells[0])
    if any(len(r) != n for r in cells):
        raise ValueError(f"every row needs {n} cells like the header; got "
                         f"{sorted({len(r) for r in cells})}")
    align = align or "l" * n
    if len(align) != n or set(align) - {"l", "r"}:
        raise ValueError(f"align={align!r} needs one 'l' or 'r' per column ({n})")
    widths = ([max(3, *(len(r[i]) for r in cells)) for i in range(n)] if pad
              else [3] * n)
    just = [str.ljust if a == "l" else str.rjust for a in align]
    rule = ["-" * (w - 1) + (":" if a == "r" else "-") for w, a in zip(widths, align)]
    lines = [cells[0], rule, *cells[1:]]
    return "\n".join("| " + " | ".join(j(c, w) for c, w, j in zip(r, widths, just)) + " |"
                     for r in lines)


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
