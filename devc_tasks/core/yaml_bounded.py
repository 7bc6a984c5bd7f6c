"""YAML parsed with bounds: nesting, alias expansion and node count are limited before
the document is built, so a small hostile file cannot take the host's memory. Pure
(text in, data out); ``yaml`` is imported inside the functions.
"""

from __future__ import annotations

import functools
from typing import Any

from devc_tasks.core.devcontainer import MAX_NESTING
from devc_tasks.core.errors import ConfigError

__all__ = ["load_yaml"]

MAX_YAML_NODES = 100_000
"""The most values a compose file may expand to, aliases and merge keys counted
each time they are used (a compose file has hundreds)."""


def _yaml_expanded_size(root: Any, limit: int) -> int:
    """How many nodes the composed YAML graph stands for once aliases and ``<<``
    merges are expanded, counted without expanding them (shared nodes are
    sized once); stops early past ``limit``. Raises ``ValueError`` on a node
    that contains itself and ``RecursionError`` past ``MAX_NESTING`` levels.
    """
    import yaml

    sizes: dict[int, int] = {}
    stack: list[tuple[Any, int, bool]] = [(root, 0, False)]
    on_path: set[int] = set()
    while stack:
        node, depth, children_done = stack.pop()
        key = id(node)
        children: list[Any] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        if children_done:
            on_path.discard(key)
            total = 1 + sum(sizes[id(child)] for child in children)
            sizes[key] = min(total, limit + 1)
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise ValueError("an alias refers to a node that contains it")
        if depth > MAX_NESTING:
            raise RecursionError
        on_path.add(key)
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in children if id(child) not in sizes)
    return sizes[id(root)]


@functools.cache
def _bounded_loader() -> type:
    """PyYAML's SafeLoader, refusing nesting past ``MAX_NESTING`` as it reads.

    The check has to come while scanning: PyYAML's scanner takes time
    quadratic in the flow nesting level (4,000 ``[`` take seconds, 40,000
    minutes), and its composer recurses once per level.
    """
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        _depth = 0

        def fetch_flow_collection_start(self, token_class: Any) -> None:
            if self.flow_level >= MAX_NESTING:
                raise RecursionError
            super().fetch_flow_collection_start(token_class)

        def compose_node(self, parent: Any, index: Any) -> Any:
            self._depth += 1
            try:
                if self._depth > MAX_NESTING:
                    raise RecursionError
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

    return BoundedLoader


def _yaml_error(exc: Exception, source: str, fix: str) -> ConfigError:
    """PyYAML's error as one line with the place: ``... is not valid YAML at line 3, column 5: ...``."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = getattr(exc, "problem", None) or " ".join(str(exc).split())
    return ConfigError(f"{source} is not valid YAML{where}: {what}", fix=fix)


def load_yaml(text: str, *, source: str, fix: str) -> Any:
    """``yaml.safe_load`` with bounds: every failure is a ``ConfigError``.

    PyYAML expands aliases and ``<<`` merge keys without limit, so a few
    lines (an "alias bomb", or merges of merges) can stand for billions of
    values and keep the loader or our merger busy for minutes; and it recurses
    once per nesting level. The composed node graph is therefore sized first
    (cheaply: shared nodes once) and refused past ``MAX_YAML_NODES`` values or
    ``MAX_NESTING`` levels, before anything is constructed.
    """
    import yaml  # heavy; only compose-based lookups pay for it

    loader = _bounded_loader()(text)
    try:
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            size = _yaml_expanded_size(node, MAX_YAML_NODES)
        except yaml.YAMLError as exc:
            raise _yaml_error(exc, source, fix) from exc
        except RecursionError as exc:
            raise ConfigError(f"{source} nests mappings or lists more than {MAX_NESTING} levels deep (aliases counted where they are used)", fix=fix) from exc
        except ValueError as exc:
            raise ConfigError(f"{source} is not usable YAML: {exc}", fix=fix) from exc
        if size > MAX_YAML_NODES:
            raise ConfigError(
                f"{source} expands to more than {MAX_YAML_NODES} values through YAML aliases or merge keys "
                "(an alias bomb?); refusing to read it",
                fix=f"{fix}: use fewer nested aliases (*name) and merge keys (<<)",
            )
        try:
            return loader.construct_document(node)
        except yaml.YAMLError as exc:
            raise _yaml_error(exc, source, fix) from exc
        except RecursionError as exc:
            raise ConfigError(f"{source} nests mappings or lists more than {MAX_NESTING} levels deep (aliases counted where they are used)", fix=fix) from exc
    finally:
        loader.dispose()
