"""The Sphinx glue for trio_tcp's documentation (loaded by ``docs/conf.py``).

* ``.. public-names:: MODULE`` documents names of ``MODULE.__all__`` with autodoc: the names
  listed in its content (``Server()``: a class shown without its constructor's signature), or
  with ``:exceptions:`` every exception class, or with ``:rest:`` every name of ``__all__`` that
  this page has not documented yet and that is not an exception (exceptions live on the errors
  page). Because the lists come from ``__all__``, a new public
  name gets its entry without anyone editing the docs; ``tests/test_docs.py`` checks that every
  name has exactly one.
* ``.. error-tree::`` draws the error hierarchy from the classes themselves.
* Public names are re-homed (``__module__``) to the public module that exports them, as Trio
  does at import time, so signatures say ``trio_tcp.Connection``, not
  ``trio_tcp._connection.Connection``. Only the documentation build does this.
* References to other libraries (``trio.abc.Stream``, ``ssl.SSLContext``, ``int``) cannot use
  intersphinx offline. They are checked by importing them instead: a name that exists renders as
  code (the standard library's link to docs.python.org), a name that does not is reported as
  the usual nitpicky warning, which ``-W`` turns into an error.
* The teaching notebooks are copied into ``docs/tutorial/`` before Sphinx looks for sources.
"""

from __future__ import annotations

import builtins
import enum
import importlib
import inspect
import pkgutil
import re
import shutil
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

PACKAGE = "trio_tcp"
logger = logging.getLogger(__name__)
DOCS = Path(__file__).resolve().parent.parent
REPO = DOCS.parent


def public_modules() -> list[str]:
    """``trio_tcp`` and every public submodule that declares ``__all__``, top-down."""
    package = importlib.import_module(PACKAGE)
    names = [PACKAGE]
    for info in pkgutil.walk_packages(package.__path__, PACKAGE + "."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        module = importlib.import_module(info.name)
        if hasattr(module, "__all__"):
            names.append(info.name)
    return names


def canonical_home(obj: object, modules: list[str]) -> str | None:
    """The first public module (in ``public_modules`` order) whose ``__all__`` has ``obj``."""
    for name in modules:
        module = sys.modules[name]
        if any(getattr(module, attr) is obj for attr in module.__all__):
            return name
    return None


def is_exception(obj: object) -> bool:
    return inspect.isclass(obj) and issubclass(obj, BaseException)


def rehome_public_names() -> None:
    """Set ``__module__`` of each exported class and function to its public module."""
    modules = public_modules()
    for name in modules:
        module = sys.modules[name]
        for attr in module.__all__:
            obj = getattr(module, attr)
            if canonical_home(obj, modules) != name:
                continue
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__.startswith(
                PACKAGE
            ):
                obj.__module__ = name


def attribute_doc(module: ModuleType, name: str) -> list[str]:
    """The ``#:`` comment of a constant, from whichever private module defines it."""
    value = getattr(module, name)
    for candidate in sorted(sys.modules):
        if not candidate.startswith(module.__name__ + ".") and candidate != module.__name__:
            continue
        if getattr(sys.modules[candidate], name, _MISSING) is not value:
            continue
        try:
            docs = ModuleAnalyzer.for_module(candidate).find_attr_docs()
        except Exception:
            continue
        if ("", name) in docs:
            return list(docs[("", name)])
    return []


_MISSING = object()


def describe_value(value: object) -> str:
    text = repr(value) if not isinstance(value, (type, typing.TypeVar)) else str(value)
    return text.replace("\n", " ")


class PublicNames(SphinxDirective):
    """Document names of a public module's ``__all__`` (see the module docstring)."""

    required_arguments = 1
    has_content = True
    option_spec: ClassVar[dict[str, Any]] = {
        "rest": directives.flag,
        "exceptions": directives.flag,
    }

    def run(self) -> list[nodes.Node]:
        module_name = self.arguments[0]
        module = importlib.import_module(module_name)
        exported = list(module.__all__)
        modules = public_modules()
        # What this page has documented so far (temp_data lives for one document).
        done: set[tuple[str, str]] = self.env.temp_data.setdefault(  # type: ignore[assignment]
            "trio_tcp_documented", set()
        )
        no_signature: set[str] = set()
        if "exceptions" in self.options:
            names = [n for n in exported if is_exception(getattr(module, n))]
        elif "rest" in self.options:
            names = [
                n
                for n in exported
                if (module_name, n) not in done and not is_exception(getattr(module, n))
            ]
        else:
            # "Server()": a class users get from the library, not construct; its entry
            # shows no constructor signature (as Trio documents trio.Nursery).
            listed = " ".join(self.content).split()
            no_signature.update(n.removesuffix("()") for n in listed if n.endswith("()"))
            names = [n.removesuffix("()") for n in listed]
            unknown = [n for n in names if n not in exported]
            if unknown:
                logger.warning(
                    "public-names: %s not in %s.__all__ (renamed or removed? update this page)",
                    ", ".join(unknown),
                    module_name,
                    location=self.get_location(),
                )
                names = [n for n in names if n in exported]
        lines = [f".. currentmodule:: {module_name}", ""]
        aliases = []
        for name in names:
            obj = getattr(module, name)
            home = canonical_home(obj, modules)
            if home != module_name:
                aliases.append(f":py:obj:`{home}.{name}`")
                continue
            done.add((module_name, name))
            lines += self.entry(module, name, obj, signature="()" if name in no_signature else "")
        if aliases:
            lines += [
                f"Also exported here, documented where they come from: {', '.join(aliases)}.",
                "",
            ]
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, self.get_source_info()[0]), node)
        return list(node.children)

    def entry(self, module: ModuleType, name: str, obj: Any, signature: str = "") -> list[str]:
        if is_exception(obj):
            return [f".. autoexception:: {name}", "   :show-inheritance:", ""]
        if inspect.isclass(obj) and not issubclass(obj, enum.Enum) and not _is_alias(obj):
            return [
                f".. autoclass:: {name}{signature}",
                "   :members:",
                "   :show-inheritance:",
                "",
            ]
        if inspect.isclass(obj) and issubclass(obj, enum.Enum):
            return [f".. autoclass:: {name}", "   :members:", "   :undoc-members:", ""]
        if inspect.isfunction(obj):
            return [f".. autofunction:: {name}", ""]
        # A constant or a type alias: its documentation is the ``#:`` comment in the private
        # module that defines it (autodoc would look in the public module and find nothing).
        doc = attribute_doc(module, name)
        if not doc:
            logger.warning(
                "%s.%s has no documentation: put a '#: ...' comment on the line above its"
                " definition",
                module.__name__,
                name,
                location=self.get_location(),
            )
        return [
            f".. py:data:: {name}",
            f"   :value: {describe_value(obj)}",
            "",
            *(f"   {line}" for line in doc),
            "",
        ]


def _is_alias(obj: object) -> bool:
    return typing.get_origin(obj) is not None


class ErrorTree(SphinxDirective):
    """A nested list of the error classes, drawn from ``__subclasses__()``."""

    def run(self) -> list[nodes.Node]:
        root = importlib.import_module(PACKAGE).TrioTCPError
        modules = public_modules()
        lines: list[str] = []

        def walk(cls: type[BaseException], depth: int) -> None:
            home = canonical_home(cls, modules)
            if home is None:
                return
            summary = (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")
            also = [
                f":exc:`{base.__name__}`" if base.__module__ == "builtins" else f"``{base!r}``"
                for base in cls.__bases__
                if canonical_home(base, modules) is None and base is not Exception
            ]
            extra = f" (also {', '.join(also)})" if also else ""
            lines.append(f"{'  ' * depth}* :exc:`~{home}.{cls.__name__}`{extra} — {summary}")
            lines.append("")
            for sub in sorted(cls.__subclasses__(), key=lambda c: c.__name__):
                walk(sub, depth + 1)

        walk(root, 0)
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, "error-tree"), node)
        return list(node.children)


STDLIB_PAGES = {"builtins": None}


def _resolve_external(target: str) -> object:
    """The object a dotted name outside trio_tcp names, or ``_MISSING``."""
    parts = target.split(".")
    if len(parts) == 1 and hasattr(builtins, target):
        return getattr(builtins, target)
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, _MISSING)
            if obj is _MISSING:
                return _MISSING
        return obj
    return _MISSING


# Built-in types documented in "Built-in Types" (the rest, int and float included, have their
# entry in "Built-in Functions").
_STDTYPES = frozenset(
    {
        "str",
        "bytes",
        "bytearray",
        "memoryview",
        "list",
        "tuple",
        "dict",
        "set",
        "frozenset",
        "range",
    }
)


def _python_docs_url(target: str) -> str | None:
    top = target.split(".")[0]
    if "." not in target and target in sys.stdlib_module_names:
        return f"https://docs.python.org/3/library/{target}.html"
    if "." not in target:
        if not hasattr(builtins, target):
            return None
        page = "exceptions" if is_exception(getattr(builtins, target)) else "functions"
        if target in _STDTYPES:
            page = "stdtypes"
        if target == "None":
            return "https://docs.python.org/3/library/constants.html#None"
        return f"https://docs.python.org/3/library/{page}.html#{target}"
    if top in sys.stdlib_module_names:
        module = target.rsplit(".", 1)[0]
        page = "collections.abc" if target.startswith("collections.abc.") else top
        del module
        return f"https://docs.python.org/3/library/{page}.html#{target}"
    return None


def _resolve_ours(target: str, context: str | None) -> object:
    """The object a reference to a trio_tcp name means, or ``_MISSING``."""
    if "." in target and target.split(".")[0] == PACKAGE:
        return _resolve_external(target)
    if context and context.split(".")[0] == PACKAGE and "." not in target:
        module = sys.modules.get(context)
        found = getattr(module, target, _MISSING)
        if found is not _MISSING:
            return found
        # A docstring naming a constant of the private module it was written in: its function
        # now says it lives in the public module, so look in every module of the package.
        candidates = {
            id(value): value
            for name, candidate in sorted(sys.modules.items())
            if name.startswith(PACKAGE + ".")
            and (value := getattr(candidate, target, _MISSING)) is not _MISSING
        }
        if len(candidates) == 1:
            return next(iter(candidates.values()))
    return _MISSING


def missing_reference(
    app: Sphinx, env: Any, node: Any, contnode: nodes.Element
) -> nodes.Element | None:
    """Resolve what Sphinx could not (see the module docstring); ``None`` leaves the warning."""
    if node.get("refdomain") != "py":
        return None
    target: str = node["reftarget"].rstrip(".")  # "Raises: trio.BusyResourceError." in prose
    ours = _resolve_ours(target, node.get("py:module"))
    if ours is not _MISSING:
        # A private path (trio_tcp._connection.FrameT) or a name seen from a private module:
        # link to where the object is documented, or show it as code when it has no entry.
        home = canonical_home(ours, public_modules())
        name = getattr(ours, "__name__", target.rsplit(".", 1)[-1])
        if home is None:
            return contnode
        for role in ("obj", "class", "exc", "func", "data"):
            resolved: nodes.Element | None = env.domains["py"].resolve_xref(
                env, node["refdoc"], app.builder, role, f"{home}.{name}", node, contnode
            )
            if resolved is not None:
                return resolved
        return None
    if target.split(".")[0] == PACKAGE:
        return None  # ours must resolve for real: a typo stays a warning
    if _resolve_external(target) is _MISSING and target not in {"None", "True", "False"}:
        return None
    url = _python_docs_url(target)
    if url is None:
        return contnode
    reference = nodes.reference("", "", internal=False, refuri=url, reftitle=target)
    reference += contnode
    return reference


_UNPARSED: dict[str, list[str]] = {}


def keep_property_docstring(
    app: Sphinx, what: str, name: str, obj: object, options: Any, lines: list[str]
) -> None:
    """Before napoleon: remember a property's docstring as written."""
    if what in {"property", "attribute"}:
        _UNPARSED[name] = list(lines)


def restore_property_docstring(
    app: Sphinx, what: str, name: str, obj: object, options: Any, lines: list[str]
) -> None:
    """After napoleon: put it back. Napoleon reads "The local address: ..." as a type named
    "The local address"; the types come from the annotations here, the docstring is prose."""
    if name in _UNPARSED:
        lines[:] = _UNPARSED.pop(name)


def copy_notebooks(app: Sphinx, config: Any) -> None:
    """Copy ``notebooks/NN-*.ipynb`` into ``docs/tutorial/`` (unchanged files are left be)."""
    source = REPO / "notebooks"
    target = DOCS / "tutorial"
    target.mkdir(exist_ok=True)
    wanted = {path.name: path for path in sorted(source.glob("[0-9]*.ipynb"))}
    for stale in target.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()
    for name, path in wanted.items():
        copy = target / name
        if not copy.exists() or copy.read_bytes() != path.read_bytes():
            shutil.copyfile(path, copy)


def write_missing_api_pages(app: Sphinx, config: Any) -> None:
    """A public module with no page of its own in ``docs/api/`` gets a generated one."""
    api = DOCS / "api"
    wanted = {}
    for module in public_modules():
        stem = module.removeprefix(PACKAGE + ".") if module != PACKAGE else PACKAGE
        if not (api / f"{stem}.rst").exists():
            wanted[api / f"generated-{stem}.rst"] = module
    for stale in api.glob("generated-*.rst"):
        if stale not in wanted:
            stale.unlink()
    for page, module in wanted.items():
        title = f"``{module}``"
        text = (
            f"{title}\n{'=' * len(title)}\n\n"
            f".. automodule:: {module}\n   :no-members:\n\n"
            f".. public-names:: {module}\n   :rest:\n"
        )
        if not page.exists() or page.read_text() != text:
            page.write_text(text)


def list_generated_api_pages(app: Sphinx, docname: str, source: list[str]) -> None:
    """Replace the ``generated-*`` line of ``api/index``'s toctree with the generated pages."""
    if docname != "api/index":
        return
    pages = sorted(path.stem for path in (DOCS / "api").glob("generated-*.rst"))
    source[0] = source[0].replace("generated-*\n", "".join(f"{page}\n" for page in pages))


def iter_public_async_callables() -> Iterator[tuple[str, Any]]:
    """``(dotted name, function)`` for every async function and method of the public API."""
    modules = public_modules()
    for name in modules:
        module = sys.modules[name]
        for attr in module.__all__:
            obj = getattr(module, attr)
            if canonical_home(obj, modules) != name:
                continue
            members = [(attr, obj)]
            if inspect.isclass(obj):
                members += [
                    (f"{attr}.{key}", value)
                    for key, value in vars(obj).items()
                    if not key.startswith("_") or key in {"__aenter__", "__aexit__"}
                ]
            for dotted, member in members:
                # unwrap: Connection.receive_some/send_all are plain methods that
                # return a coroutine, marked with __wrapped__ (awaited all the same).
                plain = inspect.unwrap(member) if callable(member) else member
                if inspect.iscoroutinefunction(plain) or inspect.isasyncgenfunction(plain):
                    yield f"{name}.{dotted}", member


def public_bases(app: Sphinx, name: str, obj: object, options: Any, bases: list[type]) -> None:
    """Show a private base as its nearest public ancestor, and ``Bases: object`` not at all."""
    shown: list[type] = []
    for base in bases:
        if not inspect.isclass(base):  # Generic[FrameT] and other aliases: as they are
            shown.append(base)
            continue
        public = next(cls for cls in base.__mro__ if not cls.__name__.startswith("_"))
        if public is not object and public not in shown:
            shown.append(public)
    bases[:] = shown


def _sniff_by_annotation(original: Any) -> Any:
    """Wrap sphinxcontrib-trio's sniffer: a plain function annotated to return an async
    iterator (``conn.lines()``) is marked ``async for``, one returning an async context manager
    ``async with``, as if it were an async generator or an ``@asynccontextmanager``."""

    def sniff_options(obj: Any) -> set[str]:
        options: set[str] = original(obj)
        annotation = getattr(obj, "__annotations__", {}).get("return")
        text = annotation if isinstance(annotation, str) else repr(annotation)
        if not options & {"async", "for", "async-for", "with", "async-with"}:
            if re.search(r"\bAsync(Iterator|Iterable|Generator)\b", text or ""):
                options.add("async-for")
            elif re.search(r"\bAbstractAsyncContextManager\b", text or ""):
                options.add("async-with")
        return options

    return sniff_options


def setup(app: Sphinx) -> dict[str, Any]:
    rehome_public_names()
    import sphinxcontrib_trio  # type: ignore[import-untyped]

    sphinxcontrib_trio.sniff_options = _sniff_by_annotation(sphinxcontrib_trio.sniff_options)
    app.add_directive("public-names", PublicNames)
    app.add_directive("error-tree", ErrorTree)
    app.connect("config-inited", copy_notebooks)
    app.connect("config-inited", write_missing_api_pages)
    app.connect("source-read", list_generated_api_pages)
    app.connect("missing-reference", missing_reference)
    app.connect("autodoc-process-bases", public_bases)
    app.connect("autodoc-process-docstring", keep_property_docstring, priority=400)
    app.connect("autodoc-process-docstring", restore_property_docstring, priority=600)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
