"""One entry point for every export format, shared by the CLI and the console's downloads."""

from __future__ import annotations

from dataclasses import dataclass

from controller.services.history.csv_export import records_csv
from controller.services.history.fit_export import session_fit
from controller.services.history.store import SessionStore

FORMATS = {"fit": "application/vnd.ant.fit", "csv": "text/csv", "png": "image/png"}


class ExportFormatError(ValueError):
    """An export format that does not exist."""


@dataclass(frozen=True)
class Export:
    data: bytes
    filename: str
    content_type: str


def export_session(store: SessionStore, session_id: str, fmt: str) -> Export:
    """The session `session_id` as fit, csv or png (`SessionNotFound` if it does not exist)."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ExportFormatError(f"unknown export format {fmt!r}; available: {', '.join(FORMATS)}")
    stored = store.get(session_id)
    records = store.records(session_id)
    summary = stored.summary.model_copy(update={"state": stored.state})
    if fmt == "fit":
        data = session_fit(summary, records)
    elif fmt == "csv":
        data = records_csv(records).encode()
    else:
        # Imported here: matplotlib takes ~0.5 s of CPU to import, and the hub, the console and
        # every `millctl gym …` command import this module for the other formats.
        from controller.services.history.plot import session_png

        data = session_png(summary, records)
    return Export(data, f"{session_id}.{fmt}", FORMATS[fmt])
