"""CSV export: one row per stored second, columns named with their units."""

from __future__ import annotations

import csv
import io

from controller.core.summary import SessionRecord

COLUMNS = tuple(SessionRecord.model_fields)


def records_csv(records: list[SessionRecord]) -> str:
    """The records as CSV text with a header row (empty cells for missing heart rate)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in records:
        writer.writerow(["" if getattr(r, c) is None else getattr(r, c) for c in COLUMNS])
    return out.getvalue()
