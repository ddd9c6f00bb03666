"""The tests are laid out as the code is, and share code only through helper modules.

`tests/<package>/` holds the tests of `src/cardcore/<package>/`; a top-level `tests/test_<name>.py`
tests the top-level module `src/cardcore/<name>.py`, or something no one package owns (the
README, the OpenAPI document, the layering). Set-up and helpers that several test modules use
live in modules of their own (`tests/factories.py`, a package's `helpers.py`, …): a test module
is never imported, so reading one never means reading another's tests; nor is a conftest.py,
which pytest loads as a plugin and which holds fixtures only.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent
SOURCE = TESTS.parent / "src" / "cardcore"

# Suites of their own that cut across every package.
CROSS_CUTTING_DIRECTORIES = {
    "fuzz": "schemathesis over the whole OpenAPI document and the cross-program id matrix",
}
CROSS_CUTTING_MODULES = {
    "test_architecture": "the layering of all the packages",
    "test_docs": "/docs in a real browser",
    "test_health": "ping, readiness and metrics of the whole app",
    "test_layout": "this file",
    "test_openapi": "the OpenAPI document, over every operation",
    "test_readme": "what the README promises",
}


def _imported_modules(source: str) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of every module `source` imports, at any depth of its code."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.lineno, node.module
            # `from tests.kit import test_jws` imports a module too.
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def _shared_from_a_test_module(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "tests" and any(p.startswith("test_") or p == "conftest" for p in parts)


def test_no_module_imports_a_test_module_or_a_conftest() -> None:
    offenders = [
        f"{path.relative_to(TESTS.parent)}:{line} imports {name}"
        for path in sorted(TESTS.rglob("*.py"))
        for line, name in _imported_modules(path.read_text())
        if _shared_from_a_test_module(name)
    ]
    assert offenders == [], "move what is shared into a helper module:\n" + "\n".join(offenders)


def test_every_test_directory_names_a_package() -> None:
    packages = {p.name for p in SOURCE.iterdir() if (p / "__init__.py").is_file()}
    directories = {p.name for p in TESTS.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert directories - packages - set(CROSS_CUTTING_DIRECTORIES) == set()


def test_every_top_level_test_names_a_module_or_cuts_across() -> None:
    modules = {p.stem for p in SOURCE.glob("*.py") if p.stem != "__init__"}
    tests = {p.stem for p in TESTS.glob("test_*.py")}
    unplaced = {t for t in tests if t.removeprefix("test_") not in modules}
    assert unplaced - set(CROSS_CUTTING_MODULES) == set(), (
        "a test of one package belongs in tests/<package>/"
    )


def test_the_layout_checks_see_the_tests() -> None:
    """The checks above would pass on an empty directory or an import they cannot see: make sure
    they look at this one, and find an import wherever it is written."""
    assert (TESTS / "cards" / "test_cards.py").is_file()
    assert (SOURCE / "cards" / "__init__.py").is_file()
    source = (
        "def f():\n    from tests.kit import test_jws\n    import tests.cards.test_cards\n"
        "from tests.conftest import Partner\nfrom tests.factories import World\n"
    )
    found = [name for _, name in _imported_modules(source) if _shared_from_a_test_module(name)]
    assert found == [
        "tests.conftest",
        "tests.conftest.Partner",
        "tests.kit.test_jws",
        "tests.cards.test_cards",
    ]
