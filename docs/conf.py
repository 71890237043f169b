"""Sphinx configuration: the gclass reference, rendered by fsmio's own directive.

Build with ``pip install -e '.[docs]'`` then ``sphinx-build -b html docs docs/_build/html``.
The guide and the other pages are Markdown, read on GitHub; Sphinx reads only the .rst.
"""

project = "fsmio"
author = "fsmio developers"
extensions = ["fsmio.sphinxext"]
root_doc = "gclasses"
exclude_patterns = ["_build", "diagrams"]
html_theme = "alabaster"
html_title = "fsmio gclasses"
