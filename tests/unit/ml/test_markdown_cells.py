"""Data as inert markdown (airflow_ml.ml.markdown_cells), rendered by a real CommonMark parser with GFM tables."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from airflow_ml.ml.markdown_cells import md_cell

HOSTILE = [
    "a|b",
    "x` ![p](https://evil.example/p.png) [Approve is safe](https://evil.example) `",
    "\n\n# Approved by security team",
    "$5-$10",
    "<img src=x onerror=alert(1)>",
    "**bold** _it_ ~~gone~~ \\| www.evil.example mail@evil.example https://evil.example",
]


def render_cell(value: str) -> str:
    """The HTML of a one-row table whose first cell holds ``md_cell(value)``; the second cell must survive."""
    table = f"| a | b |\n| --- | --- |\n| {md_cell(value, limit=None)} | END |\n"
    return str(MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(table))


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_value_renders_as_its_own_text_in_one_cell(value: str) -> None:
    html = render_cell(value)

    assert html.count("<td>") == 2
    assert "<td>END</td>" in html
    for tag in ("<img", "<a ", "<h1", "<code", "<strong", "<em", "<s>", "<br"):
        assert tag not in html, tag


def test_the_text_comes_out_as_written() -> None:
    html = render_cell("zone=$5-$10 (a|b) [x]")

    assert "<td>zone=$5-$10 (a|b) [x]</td>" in html


def test_line_breaks_become_spaces_and_long_values_are_cut() -> None:
    assert md_cell("a\r\nb\nc") == "a b c"
    assert md_cell("x" * 100) == "x" * 79 + "…"
    assert md_cell("x" * 100, limit=None) == "x" * 100


def test_bare_urls_and_addresses_get_a_zero_width_space_where_gfm_would_start_a_link() -> None:
    # Airflow's remark-gfm links bare URLs found in the parsed text, whatever was escaped: split them.
    cell = md_cell("see HTTPS://evil.example, www.evil.example or ana@evil.example")

    assert cell == "see HTTPS:\u200b//evil.example, www\u200b.evil.example or ana@\u200bevil.example"
