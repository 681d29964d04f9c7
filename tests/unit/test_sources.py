"""The facts behind the public /science page and docs/science.md stay one set."""

from pathlib import Path

from plugin.analysis import sources
from plugin.analysis.summary import example_note

SCIENCE_DOC = Path(__file__).resolve().parents[2] / "docs" / "science.md"


def test_docs_science_names_every_source_the_page_shows():
    text = SCIENCE_DOC.read_text(encoding="utf-8")
    assert [c for c in sources.citations() if c not in text] == []


def test_docs_science_shows_the_example_note_the_code_writes():
    text = SCIENCE_DOC.read_text(encoding="utf-8")
    assert f"```\n{example_note('https://backstride.example/science')}\n```" in text


def test_every_section_has_facts_with_a_source_and_a_confidence():
    assert sources.SECTIONS
    for section in sources.SECTIONS:
        assert section.facts
        for fact in section.facts:
            assert fact.claim.endswith(".") and fact.source and fact.confidence
