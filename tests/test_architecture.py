"""No module uses another app's private names (leading underscore).

import-linter (``scripts/lint.sh``) holds the layers and keeps ``api``/``views`` modules to their
app; it sees modules, not names. This test reads the source of ``src/warenhaus``: an import of
``_name`` from another app, an attribute ``_name`` of another app's module, or a private module of
another app is a finding. The root modules (``warenhaus.api``, ``urls``, ...) count as an app of
their own.
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = SRC / "warenhaus"

#: findings other branches are removing; each is pruned once the branch is merged
ALLOWED: set[str] = set()
#: Django's public names that start with an underscore (``Model._meta``)
DJANGO_PUBLIC = {"_meta", "_default_manager", "_base_manager", "_state"}


def _module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _app(qualified: str, src: Path) -> str:
    """The app a module or name belongs to: ``warenhaus.<app>``, or ``warenhaus`` for the root."""
    parts = qualified.split(".")
    if len(parts) >= 2 and (src / parts[0] / parts[1]).is_dir():
        return ".".join(parts[:2])
    return "warenhaus"


def _is_private(segment: str) -> bool:
    return segment.startswith("_") and not segment.startswith("__") and segment not in DJANGO_PUBLIC


def _private_of_another_app(importer: str, qualified: str, src: Path) -> bool:
    app = _app(qualified, src)
    if not qualified.startswith("warenhaus.") or app == _app(importer, src):
        return False
    tail = qualified.split(".")[app.count(".") + 1 :]
    return any(_is_private(segment) for segment in tail)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _dotted(node: ast.expr) -> list[str] | None:
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    names.append(node.id)
    return names[::-1]


def findings_in(path: Path, src: Path = SRC) -> set[str]:
    """``importer -> warenhaus.app.module._name`` for each use of another app's private name."""
    module = _module_name(path, src)
    tree = ast.parse(path.read_text(), filename=str(path))
    found, aliases = set(), {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    aliases[top] = top
                if _private_of_another_app(module, alias.name, src):
                    found.add(f"{module} -> {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, path.name == "__init__.py", node)
            for alias in node.names:
                qualified = f"{source}.{alias.name}"
                aliases[alias.asname or alias.name] = qualified
                if _private_of_another_app(module, qualified, src):
                    found.add(f"{module} -> {qualified}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            chain = _dotted(node)
            if chain and chain[0] in aliases:
                qualified = ".".join([aliases[chain[0]], *chain[1:]])
                if _private_of_another_app(module, qualified, src):
                    found.add(f"{module} -> {qualified}")
    return found


def all_findings() -> set[str]:
    return {f for path in sorted(ROOT.rglob("*.py")) for f in findings_in(path)}


def test_no_module_uses_another_apps_private_names():
    found = all_findings()
    new = sorted(found - ALLOWED)
    assert not new, "private names of another app used (make them public or add a port):\n" + (
        "\n".join(new)
    )


def test_the_allow_list_names_only_what_is_still_there():
    """A warning, not a failure, while branches that remove findings are being merged (as
    import-linter's ``unmatched_ignore_imports_alerting = "warn"``)."""
    gone = sorted(ALLOWED - all_findings())
    if gone:
        warnings.warn("no longer found, drop from ALLOWED: " + "; ".join(gone), stacklevel=1)


def test_the_check_finds_each_kind_of_use(tmp_path):
    app = tmp_path / "warenhaus" / "promotions"
    app.mkdir(parents=True)
    (tmp_path / "warenhaus" / "checkout").mkdir()
    source = app / "services.py"
    source.write_text(
        "from warenhaus.checkout.services import _open, get_cart\n"
        "from warenhaus.checkout import services as checkout\n"
        "import warenhaus.checkout.pricing\n"
        "from . import _mine\n"
        "from warenhaus.checkout._sql import LOCK\n"
        "from warenhaus.checkout.models import Cart\n"
        "def f():\n"
        "    checkout._lock_cart(1)\n"
        "    warenhaus.checkout.pricing._round(2)\n"
        "    checkout.__name__, Cart._meta\n"
    )
    found = findings_in(source, src=tmp_path)
    assert found == {
        "warenhaus.promotions.services -> warenhaus.checkout.services._open",
        "warenhaus.promotions.services -> warenhaus.checkout._sql.LOCK",
        "warenhaus.promotions.services -> warenhaus.checkout.services._lock_cart",
        "warenhaus.promotions.services -> warenhaus.checkout.pricing._round",
    }


def test_every_app_is_in_the_import_contracts():
    """A new app joins a layer and the api/views contract, so import-linter watches it."""
    import tomllib

    config = tomllib.loads((SRC.parent / "pyproject.toml").read_text())["tool"]["importlinter"]
    by_id = {c["id"]: c for c in config["contracts"]}
    layered = {
        name.strip(" ()") for layer in by_id["layers"]["layers"] for name in layer.split("|")
    }
    apps = {f"warenhaus.{p.parent.name}" for p in ROOT.glob("*/apps.py")}
    assert apps - layered == set(), "apps in no layer"
    assert apps - set(by_id["api-views"]["source_modules"]) == set(), "apps outside api-views"
