"""The package keeps the layers of docs/architecture.md: imports run downhill, never in a loop."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "imageaudit"
DOC = ROOT / "docs" / "architecture.md"

# Higher imports lower (or the same layer). The order of docs/architecture.md.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("model", "imagefs", "store", "identity", "example", "ioc", "progress", "helptext"),
    ("findings", "signing", "passwords", "facts", "openers", "httpclient"),
    ("vulns", "report", "publish", "malware"),
    ("checks",),
    ("rules",),
    ("certify", "waivers", "tailoring"),
    ("engine", "errors"),
    ("pipeline",),
    ("batch", "cloud"),
    ("cli", "__main__"),
)
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> set[str]:
    """Every imageaudit module ``path`` imports, at any depth (type-only imports included)."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "imageaudit" or name.startswith("imageaudit.")}


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        targets = {t for t in _imports(path, module) if t in files and t != module}
        # Importing a submodule is not a tie to its own package's face.
        graph[module] = {t for t in targets if not module.startswith(t + ".")}
    return graph


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    assert top in LAYER_OF, f"{module}: its folder is in no layer of this test"
    return LAYER_OF[top]


def test_imports_run_downhill() -> None:
    upward = sorted(
        f"{source} -> {target}"
        for source, targets in _graph().items()
        if source != "imageaudit"
        for target in targets
        if target != "imageaudit" and _layer(target) > _layer(source)
    )
    assert upward == []


def test_no_import_circles() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert circles == []


def test_architecture_doc_names_every_folder() -> None:
    text = DOC.read_text()
    folders = sorted(
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*")
        if p.is_dir() and (p / "__init__.py").exists()
    )
    named = set(re.findall(r"`?([a-z_]+)/`?", text))
    missing = [f for f in folders if f.split("/")[-1] not in named]
    assert missing == []
