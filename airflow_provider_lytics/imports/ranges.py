"""Sorted, merged ranges of source line numbers: what Lytics has acknowledged for one source part."""

from __future__ import annotations

import bisect
from collections.abc import Iterable


class LineRanges:
    """A set of inclusive ``[first, last]`` line ranges, kept merged (adjacent ranges join)."""

    def __init__(self, ranges: Iterable[Iterable[int]] = ()) -> None:
        self._ranges: list[list[int]] = []
        for first, last in ranges:
            self.add(int(first), int(last))

    def add(self, first: int, last: int) -> None:
        if last < first:
            raise ValueError(f"range end {last} is before its start {first}")
        ranges = self._ranges
        i = bisect.bisect_left(ranges, [first, first])
        if i > 0 and ranges[i - 1][1] >= first - 1:
            i -= 1
        j = i
        while j < len(ranges) and ranges[j][0] <= last + 1:
            first, last = min(first, ranges[j][0]), max(last, ranges[j][1])
            j += 1
        ranges[i:j] = [[first, last]]

    def __contains__(self, line: int) -> bool:
        ranges = self._ranges
        i = bisect.bisect_right(ranges, [line, float("inf")]) - 1
        return i >= 0 and ranges[i][0] <= line <= ranges[i][1]

    def overlaps(self, first: int, last: int) -> bool:
        return any(a <= last and first <= b for a, b in self._ranges)

    def __bool__(self) -> bool:
        return bool(self._ranges)

    def as_list(self) -> list[list[int]]:
        return [list(r) for r in self._ranges]

    def cursor(self) -> RangeCursor:
        return RangeCursor(self._ranges)


class RangeCursor:
    """Membership tests for increasing line numbers in O(1) amortised (one pass over a file)."""

    def __init__(self, ranges: list[list[int]]) -> None:
        self._ranges = [tuple(r) for r in ranges]
        self._i = 0

    def __contains__(self, line: int) -> bool:
        ranges, i = self._ranges, self._i
        while i < len(ranges) and ranges[i][1] < line:
            i += 1
        self._i = i
        return i < len(ranges) and ranges[i][0] <= line
