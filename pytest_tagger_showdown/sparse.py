"""The sparse posts x tags matrix a run's truths, scores and kept tags are held in, and its slicer.

At the bottom of the package: the probability store builds these matrices and the metrics read them,
so neither needs the other's module for the type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
Float32Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class SparseRows:
    """A posts x tags matrix kept as its nonzero cells, row by row (CSR); missing cells are 0.

    ``values`` is None for a label matrix (every stored cell is 1: a true or a kept tag). Columns are
    sorted within each row, which makes the flat cell keys ``row * n_cols + column`` sorted too.
    """

    shape: tuple[int, int]
    indptr: IntArray
    indices: IntArray
    values: Float32Array | None = None

    def __post_init__(self) -> None:
        rows, _ = self.shape
        if self.indptr.shape != (rows + 1,) or int(self.indptr[-1]) != self.indices.size:
            raise ValueError(f"indptr of shape {self.indptr.shape} does not describe {rows} rows")
        if self.values is not None and self.values.shape != self.indices.shape:
            raise ValueError("values and indices differ in length")

    @classmethod
    def from_dense(cls, matrix: npt.ArrayLike, *, binary: bool = False) -> SparseRows:
        """Keep the nonzero cells of a dense matrix (``binary``: as labels, dropping the values)."""
        dense = np.asarray(matrix)
        if dense.ndim != 2:
            raise ValueError(f"expected a 2-d matrix, got shape {dense.shape}")
        rows, cols = np.nonzero(dense)
        indptr = np.zeros(dense.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=dense.shape[0]), out=indptr[1:])
        values = None if binary else dense[rows, cols].astype(np.float32)
        return cls((dense.shape[0], dense.shape[1]), indptr, cols.astype(np.int64), values)

    @classmethod
    def from_rows(
        cls,
        n_cols: int,
        rows: Sequence[tuple[npt.ArrayLike, npt.ArrayLike | None]],
        *,
        binary: bool = False,
    ) -> SparseRows:
        """Build from one ``(columns, values)`` pair per row; repeated columns of a row are merged."""
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        columns: list[IntArray] = []
        values: list[Float32Array] = []
        for i, (row_columns, row_values) in enumerate(rows):
            cols = np.asarray(row_columns, dtype=np.int64).ravel()
            order = np.argsort(cols, kind="stable")
            cols = cols[order]
            keep = np.ones(cols.size, dtype=bool)
            keep[1:] = cols[1:] != cols[:-1]
            if cols.size and (cols[0] < 0 or cols[-1] >= n_cols):
                raise ValueError(f"row {i}: a column is outside 0..{n_cols - 1}")
            columns.append(cols[keep])
            if not binary:
                if row_values is None:
                    raise ValueError(f"row {i} has no values (pass binary=True for labels)")
                vals = np.asarray(row_values, dtype=np.float32).ravel()[order]
                values.append(vals[keep])
            indptr[i + 1] = indptr[i] + int(keep.sum())
        flat = np.concatenate(columns) if columns else np.zeros(0, dtype=np.int64)
        flat_values = None
        if not binary:
            flat_values = np.concatenate(values) if values else np.zeros(0, dtype=np.float32)
        return cls((len(rows), n_cols), indptr, flat, flat_values)

    @property
    def nnz(self) -> int:
        return int(self.indices.size)

    def row_ids(self) -> IntArray:
        """The row of each stored cell."""
        return np.repeat(np.arange(self.shape[0], dtype=np.int64), np.diff(self.indptr))

    def data(self) -> Float32Array:
        """The stored values (ones for a label matrix)."""
        if self.values is None:
            return np.ones(self.nnz, dtype=np.float32)
        return self.values

    def to_dense(self) -> Float32Array:
        dense = np.zeros(self.shape, dtype=np.float32)
        dense[self.row_ids(), self.indices] = self.data()
        return dense

    def take_rows(self, rows: npt.ArrayLike) -> SparseRows:
        """The submatrix of some rows (in the order given)."""
        chosen = np.asarray(rows, dtype=np.int64)
        starts, ends = self.indptr[chosen], self.indptr[chosen + 1]
        lengths = ends - starts
        indptr = np.zeros(chosen.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        cells = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1], dtype=np.int64)
        values = None if self.values is None else self.values[cells]
        return SparseRows((chosen.size, self.shape[1]), indptr, self.indices[cells], values)

    def take_columns(self, columns: npt.ArrayLike) -> SparseRows:
        """The submatrix of some columns, renumbered 0.. in increasing order of the columns given."""
        chosen = np.unique(np.asarray(columns, dtype=np.int64))
        renumber = np.full(self.shape[1], -1, dtype=np.int64)
        renumber[chosen] = np.arange(chosen.size)
        new_columns = renumber[self.indices]
        keep = new_columns >= 0
        indptr = np.zeros(self.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.row_ids()[keep], minlength=self.shape[0]), out=indptr[1:])
        values = None if self.values is None else self.values[keep]
        return SparseRows((self.shape[0], chosen.size), indptr, new_columns[keep], values)


#: A matrix argument: sparse, or a dense numpy array (bool or numbers).
Matrix = SparseRows | npt.NDArray[Any]


def take(matrix: Matrix, rows: IntArray | None = None, columns: IntArray | None = None) -> Matrix:
    """The submatrix of some rows and/or columns of a sparse or dense matrix (the slicer of a run
    by rating or tag category); columns come out in increasing order either way."""
    if isinstance(matrix, SparseRows):
        taken = matrix if rows is None else matrix.take_rows(rows)
        return taken if columns is None else taken.take_columns(columns)
    taken_dense = matrix if rows is None else matrix[rows]
    return taken_dense if columns is None else taken_dense[:, np.unique(columns)]
