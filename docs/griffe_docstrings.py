"""Griffe extension (named in ``mkdocs.yml``) adapting the package's docstrings to mkdocstrings.

* ``Example:`` (singular, which Napoleon and the Google style guide accept) is read as the
  ``Examples:`` section, so that doctests render as code rather than as Markdown text.
* The family classes' generated ``__init__`` is read from the imported module
  (:class:`GeneratedInit`).
* Sphinx-style roles (``:class:`~classic_cnns.task.ImageClassifier```) become inline code,
  the leading ``~`` keeping only the last dotted part, as Sphinx shows it.
"""

from __future__ import annotations

import importlib
import inspect
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


class GeneratedInit(griffe.Extension):
    """Show the ``__init__`` that ``classic_cnns.models`` writes at import for each family class.

    Static analysis sees no ``__init__`` in those classes' source (it is written from the task's
    arguments and the networks' options), so it would show ``ImageClassifier``'s. The signature
    and the options' descriptions are read from the imported class instead.
    """

    def on_class_members(self, *, cls: griffe.Class, **kwargs: Any) -> None:
        if cls.parent is None or cls.parent.path != "classic_cnns.models":
            return
        init = getattr(importlib.import_module(cls.parent.path), cls.name).__init__
        if not init.__code__.co_filename.startswith("<generated"):
            return
        parameters = [
            griffe.Parameter(
                p.name,
                annotation=(
                    None if p.annotation is p.empty else inspect.formatannotation(p.annotation)
                ),
                kind=griffe.ParameterKind(p.kind.description),
                default=None if p.default is p.empty else repr(p.default),
            )
            for p in inspect.signature(init).parameters.values()
        ]
        function = griffe.Function(
            "__init__",
            parameters=griffe.Parameters(*parameters),
            returns="None",
            docstring=griffe.Docstring(init.__doc__ or "", parser="google"),
        )
        cls.set_member("__init__", function)
