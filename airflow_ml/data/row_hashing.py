"""The content hash of a snapshot's rows and schema, as every snapshot's manifest records it."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def content_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of the rows and the schema, independent of how the file was encoded.

    The rows' part is ``pandas.util.hash_pandas_object(frame, index=False)``, computed column by column
    as pandas does (:func:`row_hashes`), so every snapshot written before still verifies.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps({c: str(t) for c, t in frame.dtypes.items()}, sort_keys=True).encode())
    digest.update(row_hashes(frame).tobytes())
    return digest.hexdigest()


def row_hashes(frame: pd.DataFrame) -> Any:
    """``pandas.util.hash_pandas_object(frame, index=False)`` as a numpy array, faster on identifier columns.

    pandas hashes each column (its values first made categories, which costs nothing in the result but
    much on a column of distinct strings such as trip ids) and combines the columns' hashes as CPython
    combines a tuple's. A text column without nulls whose sample is mostly distinct is hashed without
    the categories: the same hash per value (only nulls hash differently without them, hence none there).
    """
    import numpy as np
    import pandas as pd

    out = None
    mult = np.uint64(1000003)
    count = frame.shape[1]
    for i in range(count):
        column = frame.iloc[:, i]
        hashed = pd.util.hash_pandas_object(column, index=False, categorize=_worth_categories(column)).to_numpy()
        if out is None:
            out = np.zeros_like(hashed) + np.uint64(0x345678)
        out ^= hashed
        out *= mult
        mult += np.uint64(82520 + 2 * (count - i))
    if out is None:  # no column: every row hashes as an empty tuple
        return np.full(len(frame), 0x345678 + 97531, dtype=np.uint64)
    out += np.uint64(97531)
    return out


def _worth_categories(column: pd.Series) -> bool:
    """Whether pandas' categories pay off (repeated values), or must stay (nulls, non-text values)."""
    import pandas as pd

    if not isinstance(column.dtype, pd.StringDtype) or column.isna().any():
        return True  # an object column's categories may change its values' types (1 as int64): kept as pandas does
    sample = column.iloc[:10_000]
    return sample.nunique() < len(sample) // 2
