"""Griffe extension (named in ``mkdocs.yml``) adapting the package's docstrings to mkdocstrings.

* ``Example:`` (singular, which Napoleon and the Google style guide accept) is read as the
  ``Examples:`` section, so that doctests render as code rather than as Markdown text.
* Sphinx-style roles (``:class:`~classic_cnns.task.ImageClassifier```) become inline code,
  the leading ``~`` keeping only the last dotted part, as Sphinx shows it.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:(\s*)$", re.MULTILINE)
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj):`(~?)([^`]+)`")


def _code(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


class DocstringAdapter(griffe.Extension):
    """Rewrite each docstring once, when its object is created."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            text = _EXAMPLE.sub(r"\1Examples:\2", obj.docstring.value)
            obj.docstring.value = _ROLE.sub(_code, text)
