"""The public surface is what __all__ says, and nothing private leaks into it."""

from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGES = ["trio_tcp", "trio_tcp.framing", "trio_tcp.testing", "trio_tcp.lessons"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_exist_and_are_public(name: str) -> None:
    """Every name in __all__ exists, none is private, and there are no duplicates."""
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported))
    for attribute in exported:
        assert not attribute.startswith("_"), attribute
        assert hasattr(module, attribute), attribute


@pytest.mark.parametrize("name", PACKAGES)
def test_public_names_not_in_all_are_only_modules(name: str) -> None:
    """What a package exposes beyond __all__ is submodules, never stray objects."""
    module = importlib.import_module(name)
    extra = {
        attribute
        for attribute, value in vars(module).items()
        if not attribute.startswith("_")
        and attribute not in module.__all__
        and not inspect.ismodule(value)
        and attribute not in {"annotations"}
    }
    assert extra == set()


@pytest.mark.parametrize("name", PACKAGES)
def test_public_callables_have_docstrings(name: str) -> None:
    """Every public function and class says what it does."""
    module = importlib.import_module(name)
    missing = [
        attribute
        for attribute in module.__all__
        if (
            inspect.isfunction(getattr(module, attribute))
            or inspect.isclass(getattr(module, attribute))
        )
        and not inspect.getdoc(getattr(module, attribute))
    ]
    assert missing == []


def test_every_error_is_a_trio_tcp_error() -> None:
    """All exception classes exported by trio_tcp form one tree under TrioTCPError."""
    import trio_tcp

    errors = [
        getattr(trio_tcp, name)
        for name in trio_tcp.__all__
        if inspect.isclass(getattr(trio_tcp, name))
        and issubclass(getattr(trio_tcp, name), BaseException)
    ]
    assert len(errors) >= 10
    assert all(issubclass(error, trio_tcp.TrioTCPError) for error in errors)


def test_version_matches_metadata() -> None:
    """trio_tcp.__version__ is the installed distribution's version."""
    from importlib.metadata import version

    import trio_tcp

    assert trio_tcp.__version__ == version("trio-tcp")
