"""The layering of cardcore's packages holds.

A node is a first-level name under `src/cardcore`: a package (`kit`, `cards`, …) or a top-level
module (`app`, `db`, `config`, …). Every import counts, wherever it is written: at module level,
inside a function, or under `if TYPE_CHECKING:`. A type-only import still says one package needs
to know the other, and the day it becomes a real import the cycle is there, so the type checker
gets no exemption.

- No cycles: if package A imports package B, directly or through others, B never reaches A.
- No endpoints module imports another endpoints module: what two sets of routes share (a
  repository, a presenter, a lookup) lives below both.
- Tenant scoping is written once, in the repositories: no other module filters a query on a
  table's `program_id` (`Model.program_id == …`, `.filter_by(program_id=…)`, `.program_id.in_(…)`);
  joining a row to its program (`Program.id == Model.program_id`) is a relationship, not a scope.
  A service or route that needs program-owned rows asks its feature's `repository.py`, whose
  queries start from `TenantRepository.readable()` or take the program explicitly.
- Routes build no queries (`select(…)`, `.where(…)`, `.join(…)`): a list's filters are a
  repository method's parameters, so each query has one home.
"""

import ast
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "cardcore"


@dataclass(frozen=True)
class Import:
    source: Path  # the importing file
    line: int
    target: str  # the imported module (or a name in it), dotted from the top package


def module_name(root: Path, path: Path) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(root: Path, path: Path) -> Iterator[Import]:
    """Every import in the file, relative ones resolved; `from a import b` yields `a.b` too, as
    `b` may be a module of `a`."""
    module = module_name(root, path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                parent = ".".join(base + ([node.module] if node.module else []))
            else:
                parent = node.module or ""
            yield Import(path, node.lineno, parent)
            for alias in node.names:
                yield Import(path, node.lineno, f"{parent}.{alias.name}")


def node_of(root: Path, dotted: str) -> str | None:
    """The first-level package or module `dotted` belongs to, if it is one of ours."""
    parts = dotted.split(".")
    if parts[0] != root.name or len(parts) < 2:
        return None
    name = parts[1]
    if (root / name / "__init__.py").exists() or (root / f"{name}.py").exists():
        return name
    return None


def import_graph(root: Path) -> dict[str, dict[str, list[Import]]]:
    """node -> the nodes it imports -> the imports that say so."""
    graph: dict[str, dict[str, list[Import]]] = {}
    for path in sorted(root.rglob("*.py")):
        source = node_of(root, module_name(root, path))
        if source is None:
            continue
        edges = graph.setdefault(source, {})
        for found in imports_of(root, path):
            target = node_of(root, found.target)
            if target is not None and target != source:
                edges.setdefault(target, []).append(found)
    return graph


def cycles(graph: dict[str, dict[str, list[Import]]]) -> list[list[str]]:
    """For every node that can reach itself, its shortest way back (each cycle once)."""
    found: list[list[str]] = []
    for node in sorted(graph):
        if node not in _reachable(graph, node):
            continue
        group = {other for other in graph if node in _reachable(graph, other)}
        cycle = _shortest_cycle(graph, node, group)
        turn = cycle.index(min(cycle[:-1]))
        canonical = [*cycle[turn:-1], *cycle[:turn], cycle[turn]]
        if canonical not in found:
            found.append(canonical)
    return found


def _reachable(graph: dict[str, dict[str, list[Import]]], start: str) -> set[str]:
    reached: set[str] = set()
    todo = list(graph.get(start, {}))
    while todo:
        node = todo.pop()
        if node not in reached:
            reached.add(node)
            todo.extend(graph.get(node, {}))
    return reached


def _shortest_cycle(
    graph: dict[str, dict[str, list[Import]]], start: str, group: set[str]
) -> list[str]:
    paths = [[start]]
    while paths:
        path = paths.pop(0)
        for target in sorted(graph[path[-1]]):
            if target == start:
                return [*path, start]
            if target in group and target not in path:
                paths.append([*path, target])
    raise AssertionError(f"{start} is in a cycle but none was found")


def describe(root: Path, graph: dict[str, dict[str, list[Import]]], cycle: list[str]) -> str:
    steps = []
    for source, target in itertools.pairwise(cycle):
        where = ", ".join(
            dict.fromkeys(
                f"{found.source.relative_to(root)}:{found.line}" for found in graph[source][target]
            )
        )
        steps.append(f"  {source} -> {target}  ({where})")
    return " -> ".join(cycle) + "\n" + "\n".join(steps)


def endpoint_imports(root: Path) -> list[str]:
    """Each import of an endpoints module by another endpoints module."""
    found = []
    for path in sorted(root.rglob("*endpoints*.py")):
        own = module_name(root, path)
        for each in imports_of(root, path):
            last = each.target.rpartition(".")[2]
            if "endpoints" in last and each.target != own and _is_module(root, each.target):
                found.append(f"{path.relative_to(root)}:{each.line} imports {each.target}")
    return found


def _is_module(root: Path, dotted: str) -> bool:
    parts = dotted.split(".")
    return parts[0] == root.name and root.joinpath(*parts[1:]).with_suffix(".py").exists()


def tenant_filters(root: Path) -> list[str]:
    """Each place outside a repository or the models that filters on a table's `program_id`."""
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if path.name == "repository.py" or relative.parts[0] == "models":
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        lines = sorted(
            {
                node.lineno
                for node in ast.walk(tree)
                if isinstance(node, ast.expr) and _is_tenant_filter(node)
            }
            | {
                node.lineno
                for clause in ast.walk(tree)
                if isinstance(clause, ast.Call) and _is_query_clause(clause)
                for argument in clause.args
                for node in ast.walk(argument)
                if isinstance(node, ast.Compare) and _compares_any_program_id(node)
            }
        )
        found.extend(f"{relative}:{line}" for line in lines)
    return found


def _is_tenant_filter(node: ast.AST) -> bool:
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        return not _joins_program(operands) and any(_is_program_column(each) for each in operands)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr == "filter_by":
            return any(keyword.arg == "program_id" for keyword in node.keywords)
        if node.func.attr in {"in_", "is_", "isnot", "is_not", "not_in"}:
            return _is_program_column(node.func.value)
    return False


def _is_query_clause(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"where", "filter", "having"}
    )


def _compares_any_program_id(node: ast.Compare) -> bool:
    """In a WHERE clause even `model.program_id` (a mapped class held in a variable) is a filter."""
    operands = [node.left, *node.comparators]
    return not _joins_program(operands) and any(
        isinstance(each, ast.Attribute) and each.attr == "program_id" for each in operands
    )


def _joins_program(operands: list[ast.expr]) -> bool:
    """`Program.id == ApiKey.program_id` joins a row to its program: a relationship, not a scope."""
    return any(ast.unparse(each) == "Program.id" for each in operands)


def _is_program_column(node: ast.AST) -> bool:
    """`Model.program_id` (or `aliased.program_id` on a capitalised name): a column of a mapped
    class, not the attribute of an instance such as `card.program_id`."""
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "program_id"
        and isinstance(node.value, ast.Name)
        and node.value.id[:1].isupper()
    )


def endpoint_queries(root: Path) -> list[str]:
    """Each query built in an endpoints module."""
    found = []
    for path in sorted(root.rglob("*endpoints*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Call):
                continue
            builds = (isinstance(node.func, ast.Name) and node.func.id == "select") or (
                isinstance(node.func, ast.Attribute)
                and node.func.attr in {"where", "join"}
                and not isinstance(node.func.value, ast.Constant)  # "; ".join(…) is a string's
            )
            if builds:
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    return sorted(set(found), key=lambda at: (at.split(":")[0], int(at.split(":")[1])))


def test_no_import_cycle_between_packages() -> None:
    graph = import_graph(SOURCE)
    found = cycles(graph)
    assert not found, "import cycles between packages:\n" + "\n".join(
        describe(SOURCE, graph, cycle) for cycle in found
    )


def test_no_endpoints_module_imports_another() -> None:
    assert endpoint_imports(SOURCE) == []


def test_only_repositories_scope_queries_to_a_program() -> None:
    assert tenant_filters(SOURCE) == []


def test_routes_build_no_queries() -> None:
    assert endpoint_queries(SOURCE) == []


# The checks themselves, on a made-up package: they must be able to fail.


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_cycle_through_a_function_or_type_only_import_is_found(tmp_path: Path) -> None:
    root = tmp_path / "app"
    _write(
        root,
        {
            "__init__.py": "",
            "top.py": "from app.low import x\n",
            "low/__init__.py": "",
            "low/x.py": "def f():\n    from app.mid import y\n",
            "mid/__init__.py": "",
            "mid/y.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..low import x\n"
            ),
            "leaf/__init__.py": "",
            "leaf/z.py": "from app import low\n",
        },
    )
    graph = import_graph(root)
    assert cycles(graph) == [["low", "mid", "low"]]
    assert "low/x.py:2" in describe(root, graph, ["low", "mid", "low"])
    assert "mid/y.py:3" in describe(root, graph, ["low", "mid", "low"])


def test_an_endpoints_module_importing_another_is_found(tmp_path: Path) -> None:
    root = tmp_path / "app"
    _write(
        root,
        {
            "__init__.py": "",
            "a/__init__.py": "",
            "a/endpoints.py": "from app.b import endpoints\nfrom app.b.schemas import Out\n",
            "a/more_endpoints.py": "from app.a.endpoints import routes\n",
            "b/__init__.py": "",
            "b/endpoints.py": "from app.b import schemas\n",
            "b/schemas.py": "",
        },
    )
    assert endpoint_imports(root) == [
        "a/endpoints.py:1 imports app.b.endpoints",
        "a/more_endpoints.py:1 imports app.a.endpoints",
    ]


def test_a_tenant_filter_outside_a_repository_is_found(tmp_path: Path) -> None:
    root = tmp_path / "app"
    _write(
        root,
        {
            "__init__.py": "",
            "a/__init__.py": "",
            "a/service.py": (
                "q = select(Card).where(Card.program_id == pid)\n"
                "r = select(Card).filter_by(program_id=pid)\n"
                "s = select(Card).where(Fee.program_id.in_(pids))\n"
                "same = card.program_id == other.program_id\n"
                "j = select(Card).join(Program, Program.id == Card.program_id)\n"
                "t = select(model).where(model.id == i,\n    model.program_id == pid)\n"
            ),
            "a/repository.py": "q = select(Card).where(Card.program_id == pid)\n",
            "models/__init__.py": "",
            "models/cards.py": "q = Card.program_id == 1\n",
        },
    )
    assert tenant_filters(root) == [
        "a/service.py:1",
        "a/service.py:2",
        "a/service.py:3",
        "a/service.py:7",
    ]


def test_a_query_built_in_an_endpoints_module_is_found(tmp_path: Path) -> None:
    root = tmp_path / "app"
    _write(
        root,
        {
            "__init__.py": "",
            "a/__init__.py": "",
            "a/endpoints.py": (
                "rows = repository.readable().where(Card.user_id == u)\n"
                "q = select(Card)\n"
                "r = repository.listed(user_id=u)\n"
                "m = '; '.join(problems)\n"
            ),
            "a/repository.py": "q = select(Card).where(Card.user_id == u)\n",
        },
    )
    assert endpoint_queries(root) == ["a/endpoints.py:1", "a/endpoints.py:2"]
