"""Key paths and the YAML lines they were written on, so that every problem can say where it is.

A key path is what ConfigProblem.path shows: `providers[0].vantage.proxy`.
"""

from __future__ import annotations

import yaml

from auditor.errors import ConfigProblem


def key_lines(root: yaml.Node | None) -> tuple[dict[str, int], list[ConfigProblem]]:
    """The 1-based line of each mapping key and sequence item, by key path; and duplicate keys.

    Walks the composed node tree (before construction, so merge keys are still visible) without
    recursion, visiting an anchored node once, so aliases cannot blow it up.
    """
    lines: dict[str, int] = {}
    duplicates: list[ConfigProblem] = []
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, str]] = [(root, "")] if root is not None else []
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    stack.append((value_node, path))
                    continue
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                child = join(path, key_node.value)
                line = key_node.start_mark.line + 1
                if key_node.value in first:
                    message = (
                        f"duplicate key (first at line {first[key_node.value]}); YAML would silently keep "
                        "only the last one: remove one of them"
                    )
                    duplicates.append(ConfigProblem(child or "(top level)", message, line))  # key ''
                    continue
                first[key_node.value] = line
                lines.setdefault(child, line)
                stack.append((value_node, child))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                child = f"{path}[{index}]"
                lines.setdefault(child, item.start_mark.line + 1)
                stack.append((item, child))
    return lines, duplicates


def join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def parent(path: str) -> str:
    cut = path.rfind("[") if path.endswith("]") else path.rfind(".")
    return path[:cut] if cut > 0 else ""
