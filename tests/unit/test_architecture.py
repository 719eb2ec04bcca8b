"""The layout's rules, read from the source of ``bot/`` (nothing is imported or run).

- ``bot/``'s import graph has no cycle.
- Only ``bot/store/`` imports redis or holds Lua (a ``.lua`` file or a string with Lua in it),
  save the Redis ACL provider (its target is a Redis), the demo and ``bot/devtools/``.
- ``bot/domain/`` imports nothing of ``bot`` but ``bot.errors`` and ``bot.domain``.
- No module of ``bot/`` is over 450 lines.

What counts as an import: every ``import`` and ``from … import`` statement anywhere in a
module, at its top, inside a function (a deferred import) or under ``if TYPE_CHECKING:``. A
deferred or type-only import does not fail at run time, but a reader who follows the module's
names still walks in a circle, and the next edit that hoists the import makes it a real
one, so they count. An edge goes to the module named: ``from bot.a import b`` is an edge to
``bot.a.b`` when that is a module, else to ``bot.a``; the packages a dotted name passes through
(``bot``, ``bot.a``) are not edges of their own, since every submodule would otherwise "import"
its package's ``__init__``, which re-exports it.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "bot"
MAX_LINES = 450

#: Outside bot/store/, these may import redis: the Redis ACL provider (a Redis is its target),
#: the demo and the shipped test tools.
REDIS_ALLOWED = ("bot/providers/redis_acl.py", "bot/demo.py", "bot/devtools/")

#: Lua's tell-tales in a string: a call into Redis, or a script's keys and arguments.
LUA_RE = re.compile(r"redis\.p?call\s*\(|\bKEYS\[\d|\bARGV\[\d")


@dataclass(frozen=True)
class Module:
    name: str  # bot.store.keys
    path: str  # bot/store/keys.py
    tree: ast.Module
    lines: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Module]:
    found: dict[str, Module] = {}
    for path in sorted(BOT.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        name = _module_name(path)
        found[name] = Module(
            name=name,
            path=path.relative_to(ROOT).as_posix(),
            tree=ast.parse(text, filename=str(path)),
            lines=len(text.splitlines()),
        )
    return found


def _is_package(module: Module) -> bool:
    return module.path.endswith("/__init__.py")


def imported_names(module: Module) -> Iterator[str]:
    """Every dotted name ``module`` imports, made absolute: for ``from a import b``, ``a.b``
    when that is a module of bot, else ``a``."""
    package = module.name if _is_package(module) else module.name.rpartition(".")[0]
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield submodule if submodule in modules() else base


def _resolve(name: str) -> str | None:
    """The module of bot a dotted name lands in (its longest prefix that is one), if any."""
    known = modules()
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known:
            return candidate
        parts.pop()
    return None


def edges_of(module: Module) -> frozenset[str]:
    """The modules of bot that ``module`` imports (by the rules in the docstring)."""
    return frozenset(
        target
        for imported in imported_names(module)
        if imported == "bot" or imported.startswith("bot.")
        if (target := _resolve(imported)) is not None and target != module.name
    )


@cache
def graph() -> dict[str, frozenset[str]]:
    """bot's modules -> the modules of bot each imports."""
    return {name: edges_of(module) for name, module in modules().items()}


def cycles(edges: Mapping[str, frozenset[str]]) -> list[tuple[list[str], list[str]]]:
    """Each strongly connected component of the graph (Tarjan): a shortest cycle in it, closed,
    and all its modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    counter = 0

    def visit(start: str) -> None:
        nonlocal counter
        # Iterative Tarjan: the graph is a few hundred modules deep at most, but stay safe.
        work: list[tuple[str, Iterator[str]]] = []
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        work.append((start, iter(sorted(edges[start]))))
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)

    for name in sorted(edges):
        if name not in index:
            visit(name)
    return [(_a_cycle_in(component, edges), sorted(component)) for component in components]


def _a_cycle_in(component: set[str], edges: Mapping[str, frozenset[str]]) -> list[str]:
    """The shortest cycle through the component's first module (breadth first), closed."""
    start = min(component)
    paths: dict[str, list[str]] = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(edges[node] & component):
            if child == start:
                return [*paths[node], start]
            if child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")  # pragma: no cover


def test_the_import_graph_sees_imports_everywhere_in_a_module() -> None:
    """The walker sees top-level, relative, deferred and TYPE_CHECKING imports alike."""
    source = textwrap.dedent(
        """
        from __future__ import annotations
        from typing import TYPE_CHECKING
        from . import keys
        from ..domain import model
        import bot.store.scripts as scripts
        if TYPE_CHECKING:
            from bot.errors import StoreUnavailable
        def later():
            from bot.pacing import Pacer
        """
    )
    module = Module("bot.store.example", "bot/store/example.py", ast.parse(source), 10)
    assert edges_of(module) == {
        "bot.store.keys",
        "bot.domain.model",
        "bot.store.scripts",
        "bot.errors",
        "bot.pacing",
    }


def test_the_cycle_finder_names_each_knot() -> None:
    """Every knot of a graph is found once, with a shortest cycle through it; a module that
    only leads into a knot is not part of it."""
    edges = {
        "a": frozenset({"b"}),
        "b": frozenset({"c", "a"}),
        "c": frozenset({"a"}),
        "d": frozenset({"a", "e"}),
        "e": frozenset(),
        "f": frozenset({"g"}),
        "g": frozenset({"f"}),
    }
    assert sorted(cycles(edges)) == [
        (["a", "b", "a"], ["a", "b", "c"]),
        (["f", "g", "f"], ["f", "g"]),
    ]


def test_the_import_graph_has_no_cycle() -> None:
    """Following bot's imports from any module never leads back to it."""
    found = {" -> ".join(cycle): members for cycle, members in cycles(graph())}
    offences = list(found)
    named = [
        f"{o} (all tied in this knot: {', '.join(found[o])})" if o in found else o for o in offences
    ]
    assert not offences, "import cycles in bot/:\n  " + "\n  ".join(named)


def _under(path: str, allowed: tuple[str, ...]) -> bool:
    return any(path == a or (a.endswith("/") and path.startswith(a)) for a in allowed)


def test_only_the_store_imports_redis() -> None:
    """Outside bot/store/ (the Redis ACL provider, the demo and devtools aside), no redis."""
    found: dict[str, list[str]] = {}
    for module in modules().values():
        if module.path.startswith("bot/store/") or _under(module.path, REDIS_ALLOWED):
            continue
        names = {n for n in imported_names(module) if n == "redis" or n.startswith("redis.")}
        if names:
            found[module.path] = sorted(names)
    offences = list(found)
    named = [f"{o} imports {', '.join(found[o])}" if o in found else o for o in offences]
    assert not offences, "redis imported outside bot/store/:\n  " + "\n  ".join(named)


def test_only_the_store_holds_lua() -> None:
    """Every Lua script is a file in bot/store/lua/; no module outside the store holds one."""
    found = [
        path.relative_to(ROOT).as_posix()
        for path in sorted(BOT.rglob("*.lua"))
        if not path.relative_to(ROOT).as_posix().startswith("bot/store/lua/")
    ]
    for module in modules().values():
        if module.path.startswith("bot/store/") or _under(module.path, REDIS_ALLOWED):
            continue
        for node in ast.walk(module.tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and LUA_RE.search(node.value)
            ):
                found.append(f"{module.path}:{node.lineno}")
    offences = found
    assert not offences, "Lua outside bot/store/lua/:\n  " + "\n  ".join(offences)


def test_the_lua_detector_knows_lua() -> None:
    """The inline-Lua check would catch a script, and not a sentence about Redis."""
    assert LUA_RE.search("local v = redis.call('GET', KEYS[1])")
    assert LUA_RE.search("return ARGV[2]")
    assert not LUA_RE.search("Redis calls the store's scripts by file name")


def test_the_domain_imports_only_itself_and_errors() -> None:
    """bot/domain is pure: of bot, it imports only bot.errors and bot.domain."""
    found = []
    for name, targets in sorted(graph().items()):
        if name != "bot.domain" and not name.startswith("bot.domain."):
            continue
        for target in sorted(targets):
            if target == "bot.errors" or target == "bot.domain" or target.startswith("bot.domain."):
                continue
            found.append(f"{modules()[name].path} imports {target}")
    offences = found
    assert not offences, "bot/domain imports beyond itself:\n  " + "\n  ".join(offences)


def test_no_module_is_over_450_lines() -> None:
    """Every module of bot/ (the emulator's parts included) is at most 450 lines."""
    sizes = {m.path: m.lines for m in modules().values()}
    found = sorted(path for path, lines in sizes.items() if lines > MAX_LINES)
    offences = found
    named = [f"{o} ({sizes[o]} lines)" if o in sizes else o for o in offences]
    assert not offences, f"modules over {MAX_LINES} lines:\n  " + "\n  ".join(named)
