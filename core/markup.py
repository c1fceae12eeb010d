"""Making user text inert where it is rendered: Streamlit markdown (every `st.markdown`, `st.error`,
`st.info`, caption, label and help text parses markdown), HTML, and Plotly's labels (which draw
a subset of HTML).

A dataset name, a model name, a label, a query parameter or an error message that quotes one of them
is data, never markup: `[Session expired](https:evil.example)` must show as those characters, not as
a link. Torch-free and Streamlit-free, so the CLI's HTML and the dashboard share it.
"""

from __future__ import annotations

import html
import re

# CommonMark lets any ASCII punctuation be backslash-escaped; escaping all of it also defuses what
# Streamlit adds on top (:emoji: and :color[text] directives, $LaTeX$, autolinks such as www.x.y or
# https:x, which need their '.' or ':' as typed).
_MD_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")


def escape_markdown(value: object) -> str:
    """`value` as text that Streamlit's markdown shows literally, on one line."""
    text = "" if value is None else str(value)
    text = re.sub(r"[\r\n\t]+", " ", text)  # a newline could start a heading, a list or a table
    return _MD_SPECIAL.sub(r"\\\1", text)


def escape_html(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def escape_plot_text(value: object) -> str:
    """`value` for a Plotly label, tick, legend or hover text: Plotly draws a subset of HTML there
    (`<a href>` links, `<b>`, `<br>` …) but shows entities as the characters they stand for."""
    return html.escape("" if value is None else str(value), quote=False)
