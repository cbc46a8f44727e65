"""Columns of numbers packed into bytes, decoded at C speed (``array``, ``accumulate``, ``map``).

The rollup blocks (``blocks.py``) are columns of one series over an hour: minute counts, sums,
minima, maxima, sketch buckets. Decoding them in a Python loop per value would cost more than the
SQL rows they replace (a day of 300 series is 432,000 minutes), so every column is a fixed-width
integer array (``b``/``h``/``i``/``q``, the narrowest that holds it) of differences from the
previous value: ``array.frombytes`` and ``itertools.accumulate`` give the values back without a
Python loop.

Floats are stored exactly. Most metrics are integers or have a few decimals (collectors round
percents; queue depths and counts are whole): such a column is kept as integers scaled by
``10**k`` (``k`` the fewest decimals that give every value back bit for bit), which turns a steady
series into one- or two-byte differences. Any other column is stored as float64 as is.
"""
from __future__ import annotations

import zlib
from array import array
from itertools import accumulate, repeat
from math import isfinite
from operator import mul, sub, truediv
from typing import Iterator, Sequence

_WIDTHS = (("b", 1 << 7), ("h", 1 << 15), ("i", 1 << 31), ("q", 1 << 63))
_CODES = "bhiq"
_SIZES = tuple(array(c).itemsize for c in _CODES)
RAW = 15                          # the kind of a column kept as float64
MAX_DECIMALS = 9
_POW = [10 ** k for k in range(MAX_DECIMALS + 1)]
_EXACT_INT = 1 << 53              # beyond this, a float is not every integer


def pack_ints(values: Sequence[int]) -> bytes:
    """One byte (the width's code) and the differences of ``values`` at that width."""
    diffs = [values[0], *map(sub, values[1:], values[:-1])] if values else []
    top = max(max(diffs, default=0), -min(diffs, default=0) - 1)
    code = next(i for i, (_, bound) in enumerate(_WIDTHS) if top < bound)
    return bytes((code,)) + array(_CODES[code], diffs).tobytes()


def unpack_ints(buf: bytes, at: int, count: int) -> tuple[list[int], int]:
    """``count`` integers packed by ``pack_ints`` at ``buf[at:]``, and the offset after them."""
    ints, end = _running(buf, at, count)
    return list(ints), end


def _running(buf: bytes, at: int, count: int) -> tuple[Iterator[int], int]:
    code = buf[at]
    end = at + 1 + count * _SIZES[code]
    return accumulate(array(_CODES[code], buf[at + 1:end])), end


def decimals(values: Sequence[float]) -> tuple[int, list[int]] | None:
    """The fewest decimals ``k`` with which every value is ``m / 10**k`` exactly (an integer
    ``m`` a float holds exactly), and those ``m``; None when there are none.

    A value that refused one ``k`` is tried alone at the next before the whole column is: a
    column of full-precision floats (the rollup job encodes each series' hour every minute)
    costs ten checks of one value, not ten passes over the column."""
    misfit: float | None = None
    for k, p in enumerate(_POW):
        if misfit is not None:
            try:
                if round(misfit * p) / p != misfit:
                    continue
            except (OverflowError, ValueError):
                return None
        try:
            scaled = list(map(round, map(mul, values, repeat(p))))
        except (OverflowError, ValueError):
            return None
        back = list(map(truediv, scaled, repeat(p)))
        if back != list(values):
            misfit = next(v for b, v in zip(back, values) if b != v)
        else:
            if max(map(abs, scaled), default=0) >= _EXACT_INT:
                return None
            return k, scaled
    return None


def pack_floats(values: Sequence[float], scaled: tuple[int, list[int]] | None = None) -> bytes:
    """A column of finite floats, exactly: scaled integers (``decimals``, or ``scaled`` when the
    caller found them another way) or float64. One byte of kind, then the column."""
    if not all(map(isfinite, values)):
        raise ValueError("only finite numbers are stored")
    found = decimals(values) if scaled is None else scaled
    if found is None:
        return bytes((RAW,)) + array("d", values).tobytes()
    k, ints = found
    return bytes((k,)) + pack_ints(ints)


def unpack_floats(buf: bytes, at: int, count: int) -> tuple[list[float], int]:
    """``count`` floats packed by ``pack_floats`` at ``buf[at:]``, and the offset after them."""
    kind = buf[at]
    if kind == RAW:
        a = array("d")
        end = at + 1 + 8 * count
        a.frombytes(buf[at + 1:end])
        return a.tolist(), end
    ints, end = _running(buf, at + 1, count)
    if kind == 0:
        return list(map(float, ints)), end
    return list(map(truediv, ints, repeat(_POW[kind]))), end


def extend_floats(out: list[float], buf: bytes, at: int, count: int) -> int:
    """``unpack_floats`` appended to ``out`` straight from the packed column (no list of its
    own); returns the offset after it."""
    kind = buf[at]
    if kind == RAW:
        a = array("d")
        end = at + 1 + 8 * count
        a.frombytes(buf[at + 1:end])
        out.extend(a)
        return end
    ints, end = _running(buf, at + 1, count)
    out.extend(map(float, ints) if kind == 0 else map(truediv, ints, repeat(_POW[kind])))
    return end


def float_column_end(buf: bytes, at: int, count: int) -> int:
    """Where the column packed by ``pack_floats`` at ``buf[at:]`` ends."""
    kind = buf[at]
    if kind == RAW:
        return at + 1 + 8 * count
    return at + 2 + count * _SIZES[buf[at + 1]]


def extend_ints(out: list[int], buf: bytes, at: int, count: int) -> int:
    """``unpack_ints`` appended to ``out``; a constant column (every difference 0, as the
    minutes' sample counts of a steady collector) without a pass over it."""
    size = _SIZES[buf[at]]
    end = at + 1 + count * size
    if count > 1 and buf.count(0, at + 1 + size, end) == end - at - 1 - size:
        first, _ = _running(buf, at, 1)
        out.extend(repeat(next(first), count))
        return end
    ints, end = _running(buf, at, count)
    out.extend(ints)
    return end


def near_decimals(values: Sequence[float], k: int, slack: Sequence[float]) -> list[int] | None:
    """``values`` as integers scaled by ``10**k`` if each is within ``slack`` of one (a sum of
    ``k``-decimal values differs from its decimal value by float rounding only); else None.
    Stored so, a sum comes back as that decimal value: the rounding of its additions is left
    out, by at most ``slack``."""
    p = _POW[k]
    try:
        scaled = list(map(round, map(mul, values, repeat(p))))
    except (OverflowError, ValueError):
        return None
    back = map(truediv, scaled, repeat(p))
    if all(abs(b - v) <= s for b, v, s in zip(back, values, slack)) and \
            max(map(abs, scaled), default=0) < _EXACT_INT:
        return scaled
    return None


_DEFLATED = 1                     # first byte of a blob: the rest is raw deflate (else as is)


def deflate(body: bytes) -> bytes:
    """``body`` deflated when that makes it smaller, behind one byte that says which."""
    packed = zlib.compress(body, 6, wbits=-15)
    return bytes((_DEFLATED,)) + packed if len(packed) < len(body) else b"\0" + body


def inflate(blob: bytes) -> bytes:
    return zlib.decompress(blob[1:], wbits=-15) if blob[0] == _DEFLATED else blob[1:]
