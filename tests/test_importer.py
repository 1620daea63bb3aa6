from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from monoceros.errors import ConfigError
from monoceros.importer import ImportFromStringError, import_from_string

MakeModule = Callable[[str], str]


@pytest.fixture
def make_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeModule]:
    """Write a module with a unique name to tmp_path; return its name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    created: list[str] = []

    def make(source: str) -> str:
        name = f"mod_{uuid.uuid4().hex}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        created.append(name)
        return name

    yield make
    for name in created:
        sys.modules.pop(name, None)


def test_non_string_is_returned_as_is() -> None:
    app = object()
    assert import_from_string(app) is app


def test_imports_attribute(make_module: MakeModule) -> None:
    name = make_module("app = 'the app'\n")
    assert import_from_string(f"{name}:app") == "the app"


def test_imports_dotted_attribute(make_module: MakeModule) -> None:
    name = make_module(
        """
        class Holder:
            class Inner:
                app = 42
        """
    )
    assert import_from_string(f"{name}:Holder.Inner.app") == 42


def test_imports_from_package_module() -> None:
    assert import_from_string("os.path:join") is __import__("os.path").path.join


@pytest.mark.parametrize("import_str", ["example", ":app", "example:", ":", ""])
def test_bad_format(import_str: str) -> None:
    with pytest.raises(ImportFromStringError) as info:
        import_from_string(import_str)
    assert str(info.value) == f'Import string "{import_str}" must be in format "<module>:<attribute>".'
    assert isinstance(info.value, ConfigError)


def test_relative_module_is_refused() -> None:
    with pytest.raises(ImportFromStringError, match=r'^Could not import module "\.mod": relative'):
        import_from_string(".mod:app")


def test_missing_module() -> None:
    with pytest.raises(ImportFromStringError) as info:
        import_from_string("no_such_module_monoceros:app")
    assert str(info.value) == 'Could not import module "no_such_module_monoceros".'


def test_missing_parent_package() -> None:
    with pytest.raises(ImportFromStringError) as info:
        import_from_string("no_such_pkg_monoceros.sub:app")
    assert str(info.value) == 'Could not import module "no_such_pkg_monoceros.sub".'


def test_missing_submodule_of_existing_package() -> None:
    with pytest.raises(ImportFromStringError) as info:
        import_from_string("json.no_such_submodule:app")
    assert str(info.value) == 'Could not import module "json.no_such_submodule".'


def test_import_error_inside_user_module_propagates(make_module: MakeModule) -> None:
    name = make_module("import no_such_dependency_monoceros\napp = 1\n")
    with pytest.raises(ModuleNotFoundError) as info:
        import_from_string(f"{name}:app")
    assert not isinstance(info.value, ImportFromStringError)
    assert info.value.name == "no_such_dependency_monoceros"


def test_nameless_module_not_found_inside_user_module_propagates(make_module: MakeModule) -> None:
    name = make_module("raise ModuleNotFoundError('custom')\n")
    with pytest.raises(ModuleNotFoundError, match="custom"):
        import_from_string(f"{name}:app")


def test_other_errors_inside_user_module_propagate(make_module: MakeModule) -> None:
    name = make_module("raise RuntimeError('boom')\n")
    with pytest.raises(RuntimeError, match="boom"):
        import_from_string(f"{name}:app")


def test_missing_attribute_lists_public_names(make_module: MakeModule) -> None:
    name = make_module(
        """
        import os
        from os import path as _path
        _private = 1

        def main():
            pass

        app = object()
        """
    )
    with pytest.raises(ImportFromStringError) as info:
        import_from_string(f"{name}:ap")
    assert str(info.value) == (
        f'Attribute "ap" not found in module "{name}". Module "{name}" has: app, main.'
    )


def test_missing_attribute_list_is_truncated(make_module: MakeModule) -> None:
    name = make_module("".join(f"a{i:02d} = {i}\n" for i in range(25)))
    with pytest.raises(ImportFromStringError) as info:
        import_from_string(f"{name}:nope")
    listed = ", ".join(f"a{i:02d}" for i in range(20))
    assert str(info.value) == (
        f'Attribute "nope" not found in module "{name}". Module "{name}" has: {listed}, ....'
    )


def test_missing_attribute_in_empty_module(make_module: MakeModule) -> None:
    name = make_module("_hidden = 1\n")
    with pytest.raises(ImportFromStringError) as info:
        import_from_string(f"{name}:app")
    assert str(info.value) == (
        f'Attribute "app" not found in module "{name}". Module "{name}" has no public attributes.'
    )


def test_missing_nested_attribute_lists_the_inner_object(make_module: MakeModule) -> None:
    name = make_module(
        """
        class Holder:
            first = 1
            second = 2
        """
    )
    with pytest.raises(ImportFromStringError) as info:
        import_from_string(f"{name}:Holder.third")
    assert str(info.value) == (
        f'Attribute "Holder.third" not found in module "{name}". "{name}:Holder" has: first, second.'
    )


def test_listing_names_runs_no_code(make_module: MakeModule) -> None:
    name = make_module(
        """
        calls = []

        class Holder:
            @property
            def lazy(self):
                calls.append(1)
                raise RuntimeError("must not run")

        holder = Holder()
        """
    )
    with pytest.raises(ImportFromStringError, match=r'"[^"]+:holder" has: lazy\.$'):
        import_from_string(f"{name}:holder.missing")
    assert sys.modules[name].calls == []


def test_broken_dir_does_not_hide_the_error(make_module: MakeModule) -> None:
    name = make_module(
        """
        class Broken:
            def __dir__(self):
                raise RuntimeError("broken")

        broken = Broken()
        """
    )
    with pytest.raises(ImportFromStringError, match=r'"[^"]+:broken" has no public attributes\.$'):
        import_from_string(f"{name}:broken.missing")
