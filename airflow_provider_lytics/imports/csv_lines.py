"""Check many CSV lines at once, at C speed: which lines are plain one-line rows of the header's width.

The CSV reader (:class:`~airflow_provider_lytics.imports.readers.CsvRows`) hands a block of decoded lines to
:meth:`LineShape.flags`; lines judged good go into the upload as they are (a whole run of them as one block), and
only the others go through the row-by-row path, which parses quotes across lines and words the rejection reasons.
A line is good when the row-by-row path would certainly accept it alone, with the same body:

* every quoted field in it is well formed and closed on the line (``"a ""b"" c"`` between delimiters): such
  fields are removed with one regular-expression pass, and no quote may be left over;
* it then holds exactly ``width - 1`` delimiters;
* it is short enough to be under the record size limit and the ``csv`` module's field size limit;
* its only carriage return, if any, ends it (CRLF line ends);
* it is not blank (with a tab delimiter, a line of tabs is);
* it decoded cleanly.

Anything else (blank lines, wrong widths, quotes opened on one line and closed on another, stray quotes, long
lines) is left to the row-by-row path, so the two paths give identical rows, reasons and line numbers.
"""

from __future__ import annotations

import csv
import operator
import re
from collections.abc import Iterable
from itertools import repeat


class LineShape:
    """The line checks for one CSV file: ``width`` columns, ``delimiter``, ``quotechar``, lines of ``max_chars``.

    ``max_chars`` is the longest line (without its newline) the row-by-row path is sure to accept on size.
    """

    def __init__(self, width: int, delimiter: str, quotechar: str, max_chars: int) -> None:
        self.width = width
        self.delimiter, self.quotechar = delimiter, quotechar
        self.max_chars = max_chars
        #: Whether any line can be good (a one-column file's blank lines look like rows; odd quote characters).
        self.enabled = (
            width >= 2 and len(quotechar) == 1 and len(delimiter) == 1 and quotechar not in ("\r", "\n", delimiter)
        )
        d, q = re.escape(delimiter), re.escape(quotechar)
        # A quoted field: opened at a field start, quotes inside doubled, closed at a field end, all on one line.
        # (The quote comes first and the field-start test second, so that the engine can skip ahead to quotes.)
        self._quoted = re.compile(rf"{q}(?<![^{d}\n]{q})[^{q}\n]*+(?:{q}{q}[^{q}\n]*+)*+{q}(?={d}|\r?$)", re.MULTILINE)

    def flags(self, parts: list[str], text: str, bad: Iterable[int] = ()) -> list[bool] | None:
        """None when every line is good, else one flag per line (True: good).

        ``parts`` are the lines without their newline and ``text`` is ``"\\n".join(parts)``, optionally followed
        by one newline; ``bad`` are indexes of lines that did not decode.
        """
        n = len(parts)
        bad = list(bad)
        if not self.enabled:
            return [False] * n
        quote, w1 = self.quotechar, self.width - 1
        quoted = quote in text
        if quoted:
            plain_text = self._quoted.sub("", text)
            plain = plain_text.split("\n", n - 1) if n else []
            stray = quote in plain_text
            longest = min(self.max_chars, csv.field_size_limit())
        else:
            plain, stray, longest = parts, False, self.max_chars
        counts = list(map(str.count, plain, repeat(self.delimiter)))
        returns = "\r" in text
        #: With a tab delimiter a line of tabs is blank: the row-by-row path skips it.
        blanks = self.delimiter.isspace() and any(map(str.isspace, parts))
        if (
            not bad
            and not blanks
            and not stray
            and counts.count(w1) == n
            and (not n or max(map(len, parts)) <= longest)
            and (not returns or text.count("\r") == sum(map(str.endswith, parts, repeat("\r"))))
        ):
            return None
        good = list(map(w1.__eq__, counts))
        if stray:
            good = list(map(operator.and_, good, map(operator.not_, map(operator.contains, plain, repeat(quote)))))
        good = list(map(operator.and_, good, map(longest.__ge__, map(len, parts))))
        if returns:
            ends = map(str.endswith, parts, repeat("\r"))
            good = list(map(operator.and_, good, map(operator.eq, map(str.count, parts, repeat("\r")), ends)))
        if blanks:
            good = list(map(operator.and_, good, map(operator.not_, map(str.isspace, parts))))
        for i in bad:
            good[i] = False
        return good


def block_body(text: str, suffix: str) -> str:
    """Good lines (joined by newlines) rendered as upload rows: CRLF ends dropped, ``suffix`` appended to each."""
    body = text
    if "\r" in body:
        body = body.replace("\r\n", "\n")
        if body.endswith("\r"):
            body = body[:-1]
    if suffix:
        body = body.replace("\n", suffix + "\n") + suffix
    return body
