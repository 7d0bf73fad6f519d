"""mammo_edge.errors: the stable error codes, and their one documented list."""

from __future__ import annotations

import re

from conftest import REPO_ROOT

from mammo_edge.errors import ErrorCode


def test_docs_runtime_lists_every_error_code_once():
    """docs/runtime.md's "Error codes" table is the one list people read: one row per code
    of mammo_edge/errors.py, none missing, none invented."""
    text = (REPO_ROOT / "docs" / "runtime.md").read_text(encoding="utf-8")
    section = text.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([A-Z_]+)` \|", section, flags=re.MULTILINE)
    assert sorted(documented) == sorted(code.value for code in ErrorCode)
