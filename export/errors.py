"""The one exception type the export step raises for problems a person must fix."""

from __future__ import annotations


class ExportError(Exception):
    """Export could not produce a trustworthy model; the message says what and what to do."""
