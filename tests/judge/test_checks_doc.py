from __future__ import annotations

from pathlib import Path

from imageaudit.checks import default_registry
from imageaudit.checks.doc import render_doc

DOC = Path(__file__).resolve().parents[2] / "docs" / "check-types.md"


def test_reference_page_is_up_to_date() -> None:
    """Regenerate with: python -m imageaudit.checks --doc > docs/check-types.md"""
    assert DOC.read_text(encoding="utf-8") == render_doc(default_registry())


def test_every_check_type_documents_missing_facts() -> None:
    for ctype in default_registry():
        assert "Missing fact" in ctype.doc, ctype.name
