"""Hypothesis strategies and small lattice builders shared by the tests.

Modelled on xarray's ``testing/strategies.py``: every builder is keyword-only
with small defaults, so a property test stays fast and its failures shrink to
pictures a person can read.

A *lattice* is the triple ``(adj, weights, xy)`` that
:func:`gridkit.partition.partition_graph` takes: a symmetric rook adjacency
matrix, households per unit and unit coordinates in metres (``spacing`` apart).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from scipy import sparse
from scipy.sparse import csgraph

from gridkit.units.adjacency import adjacency_matrix

__all__ = [
    "Lattice",
    "from_picture",
    "household_bounds",
    "household_counts",
    "lattice_from_weights",
    "lattices",
    "point_sets",
]

#: ``(adj, weights, xy)``
Lattice = tuple[sparse.csr_matrix, np.ndarray, np.ndarray]


def lattice_from_weights(rows: list[list[int | None]], *, spacing: float = 30.0) -> Lattice:
    """Rook lattice of the non-``None`` cells of a table, read north (first row) to south.

    Units are numbered row by row, west to east; ``xy`` has y growing north.
    """
    cells = [(r, c, w) for r, row in enumerate(rows) for c, w in enumerate(row) if w is not None]
    index = {(r, c): k for k, (r, c, _) in enumerate(cells)}
    left, right = [], []
    for (r, c), k in index.items():
        for nr, nc in ((r, c + 1), (r + 1, c)):
            if (nr, nc) in index:
                left.append(k)
                right.append(index[nr, nc])
    n = len(cells)
    adj = adjacency_matrix(n, np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64))
    weights = np.array([w for _, _, w in cells], dtype=np.int64)
    n_rows = len(rows)
    xy = np.array([(c * spacing, (n_rows - 1 - r) * spacing) for r, c, _ in cells], dtype=float)
    return adj, weights, xy.reshape(n, 2)


def from_picture(picture: str, *, spacing: float = 30.0) -> Lattice:
    """Lattice from an ASCII picture: one row of household counts per line, ``.`` for no unit.

    Lines without a number or a dot (a summary line, blank lines) are skipped, so
    a fixture's docstring can be the picture itself::

        A 3x2 block and a lone building, 1,300 households.

            200 200 200  .
            200 200 200 100
    """
    rows = []
    for line in picture.splitlines():
        tokens = line.split()
        if tokens and all(t == "." or t.isdigit() for t in tokens):
            rows.append([None if t == "." else int(t) for t in tokens])
    if not rows or len({len(r) for r in rows}) != 1:
        raise ValueError(f"not a rectangular lattice picture: {picture!r}")
    return lattice_from_weights(rows, spacing=spacing)


def household_counts(
    *, n: int, min_value: int = 12, max_value: int = 200
) -> st.SearchStrategy[np.ndarray]:
    """Households of ``n`` buildings, each in ``[min_value, max_value]`` (int64 array)."""
    return st.lists(
        st.integers(min_value=min_value, max_value=max_value), min_size=n, max_size=n
    ).map(lambda values: np.asarray(values, dtype=np.int64))


def household_bounds(
    *, min_value: int = 1, max_value: int = 1000
) -> st.SearchStrategy[tuple[int, int]]:
    """``(min_households, max_households)`` with ``min_value <= min <= max <= max_value``."""
    return (
        st.tuples(
            st.integers(min_value=min_value, max_value=max_value),
            st.integers(min_value=min_value, max_value=max_value),
        )
        .map(sorted)
        .map(tuple)
    )


@st.composite
def lattices(
    draw,
    *,
    min_side: int = 2,
    max_side: int = 6,
    min_households: int = 12,
    max_households: int = 200,
    holes: bool = False,
    spacing: float = 30.0,
) -> Lattice:
    """A connected rook lattice with random household counts.

    ``rows x cols`` sides in ``[min_side, max_side]``.  With ``holes``, random
    cells are removed and the largest connected piece kept, which gives
    irregular, non-convex communities (still at least one unit).
    """
    n_rows = draw(st.integers(min_value=min_side, max_value=max_side))
    n_cols = draw(st.integers(min_value=min_side, max_value=max_side))
    n = n_rows * n_cols
    weights = draw(household_counts(n=n, min_value=min_households, max_value=max_households))
    present = np.ones(n, dtype=bool)
    if holes:
        present = np.asarray(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
        present[draw(st.integers(min_value=0, max_value=n - 1))] = True
    grid = [
        [int(weights[r * n_cols + c]) if present[r * n_cols + c] else None for c in range(n_cols)]
        for r in range(n_rows)
    ]
    adj, w, xy = lattice_from_weights(grid, spacing=spacing)
    _, comp = csgraph.connected_components(adj, directed=False)
    largest = np.flatnonzero(comp == np.argmax(np.bincount(comp)))
    return adj[largest][:, largest].tocsr(), w[largest], xy[largest]


def point_sets(
    *, min_size: int = 2, max_size: int = 25, side: int = 20, spacing: float = 10.0
) -> st.SearchStrategy[np.ndarray]:
    """Distinct points ``(k, 2)`` on a ``side x side`` raster ``spacing`` metres apart.

    The points lie strictly inside the square ``[0, side * spacing]^2``.
    """
    return st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=side - 1),
            st.integers(min_value=0, max_value=side - 1),
        ),
        min_size=min_size,
        max_size=max_size,
        unique=True,
    ).map(lambda cells: (np.asarray(cells, dtype=float) + 0.5) * spacing)
