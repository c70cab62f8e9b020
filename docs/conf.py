"""Sphinx configuration of clumsygrad's documentation site.

Build it (warnings are errors, cross-references checked) from the repository root:

    pip install ".[docs]" && python -m sphinx -W --keep-going -n -b html docs docs/_build/html

The API reference is read from the INSTALLED package's docstrings (autodoc); the table of
operations is rendered at build time by ``gen_ops_table.py`` beside this file.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # gen_ops_table

import clumsygrad  # noqa: E402  (the installed package, never the source tree)

project = "clumsygrad"
author = "the clumsygrad authors"
copyright = "clumsygrad authors, MIT licence"
version = release = clumsygrad.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "gen_ops_table",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "screenshots"]

# Markdown: heading anchors for [text](page.md#heading) links, which MyST checks at build time.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "undoc-members": True}
napoleon_numpy_docstring = True
napoleon_google_docstring = False

# Types that autodoc meets in signatures and that are not part of this site.
intersphinx_mapping = {}  # no network at build time: nothing is fetched
nitpick_ignore_regex = [
    (r"py:class", r"(numpy\.|np\.).*"),
    (r"py:class", r"(typing\.|collections\.abc\.)?(Any|Callable|Iterable|Iterator|Mapping|Sequence|Optional|Union|Tuple|List|Dict)"),
    (r"py:class", r"(builtins\.)?(object|int|float|str|bool|tuple|list|dict|bytes|type|Exception|ValueError|TypeError|RuntimeError)"),
    (r"py:class", r"os\.PathLike.*|pathlib\..*|ndarray|array_like|optional|callable|enum\.IntEnum|NoneType"),
    (r"py:.*", r".*\._[A-Za-z].*"),  # private bases and helpers
    (r"py:class", r"abc\.ABC"),
]

html_theme = "alabaster"
html_title = f"clumsygrad {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "description": "Reverse-mode autograd on NumPy, with a compiled graph core",
    "fixed_sidebar": True,
    "page_width": "1200px",
    "sidebar_width": "230px",
}
html_sidebars = {"**": ["about.html", "navigation.html", "searchbox.html"]}
html_show_sourcelink = False
html_favicon = "favicon.svg"  # also keeps browsers from asking for a missing /favicon.ico
