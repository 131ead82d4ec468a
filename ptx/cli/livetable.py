"""The live table's columns and how a terminal's width is shared out among them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.table import Table

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from rich.text import Text

COLUMNS = ("id", "task", "state", "try", "elapsed", "eta", "cpu", "mem", "output")
ESSENTIAL = ("id", "state", "elapsed")  # always shown, never shortened: what a glance needs
RIGHT = frozenset({"id", "try", "elapsed", "eta", "cpu", "mem"})
GAP = 2  # between two columns
TITLE_MAX = 30
OUTPUT_FIRST = 30  # what the output gets before the extra columns may come in
SHORTEST = 10  # a title or output narrower than this says nothing
# Each step grants a column, or more of one, while the room lasts; the first step that does
# not fit ends the sharing. So no column ever gets narrower, nor goes away, on a wider
# terminal: what 60 columns show, 70 show too.
_STEPS: tuple[tuple[str, int | None], ...] = (
    ("task", SHORTEST),
    ("output", SHORTEST),
    ("task", TITLE_MAX),
    ("output", OUTPUT_FIRST),
    ("eta", None),  # None: the column's whole natural width
    ("cpu", None),
    ("mem", None),
    ("try", None),
    ("output", 10**6),
)


def widths(natural: Mapping[str, int], width: int) -> dict[str, int]:
    """How wide each shown column is, in table order, on a terminal `width` cells wide;
    `natural`: the widest cell of each column, its header included."""
    granted = {name: natural[name] for name in ESSENTIAL}
    room = width - sum(granted.values()) - GAP * (len(granted) - 1)
    for name, upto in _STEPS:
        wanted = natural[name] if upto is None else min(natural[name], upto)
        have = granted.get(name)
        more = wanted - (have if have is not None else -GAP)  # a new column brings its gap
        if more <= 0:
            continue
        if more > room:
            if have is not None and name in ("task", "output"):  # shrinks, never goes
                granted[name] = have + room
            break
        granted[name] = wanted
        room -= more
    return {name: granted[name] for name in COLUMNS if name in granted}


def table(rows: Sequence[Mapping[str, Text]], width: int) -> Table:
    """The rows (cells by column name) in a table no wider than `width`."""
    natural = {
        name: max([cell_len(name)] + [cell_len(row[name].plain) for row in rows])
        for name in COLUMNS
    }
    shown = widths(natural, width)
    grid = Table(box=None, pad_edge=False, header_style="bold", expand=False)
    for name, size in shown.items():
        grid.add_column(
            name,
            justify="right" if name in RIGHT else "left",
            no_wrap=True,
            overflow="ellipsis",
            width=size,
        )
    for row in rows:
        grid.add_row(*(row[name] for name in shown))
    return grid
