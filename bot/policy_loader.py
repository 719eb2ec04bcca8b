"""Reading policies.yaml: bytes -> YAML nodes (with line numbers) -> validated Policy.

Every problem is reported, not just the first, each as ``file:line key.path: message``:
YAML errors (a parse error stops there), duplicate keys, schema errors and literal secrets
together, then -- once the schema is valid -- the cross-checks of
:func:`bot.domain.policy.checks.check_policy`. Lines come from PyYAML's node marks; a missing key
is reported at the line of the mapping that should hold it.

``${ENV_VAR}`` references are left as written; :mod:`bot.envrefs` resolves them where a
provider is built, never in the domain.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import types
from collections.abc import Mapping
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bot.domain.policy.checks import Finding, check_policy, literal_secret_findings
from bot.domain.policy.rules import LoadedPolicy, Policy
from bot.domain.policy.schema import Loc
from bot.envrefs import referenced_names
from bot.errors import PolicyError, PolicyIssue
from bot.providers.base import RoleLimits
from bot.providers.registry import check_provider_limits, validate_provider_settings

__all__ = ["LoadedPolicy", "load_policy", "parse_policy"]

#: Line (1-based) of every key and list item in the document, by key path.
LineMap = dict[Loc, int]


def load_policy(
    path: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    check_providers: bool = True,
) -> LoadedPolicy:
    """Read and validate the policy file at ``path``; see :func:`parse_policy`.

    An unreadable file is a :class:`PolicyError` with one issue naming the file.
    """
    filename = os.fspath(path)
    try:
        with open(filename, "rb") as f:
            data = f.read()
    except OSError as e:
        raise PolicyError(
            [PolicyIssue(filename, None, "", f"cannot read: {e.strerror or e}")]
        ) from e
    return parse_policy(data, filename=filename, environ=environ, check_providers=check_providers)


def parse_policy(
    data: bytes,
    *,
    filename: str,
    environ: Mapping[str, str] | None = None,
    check_providers: bool = True,
) -> LoadedPolicy:
    """Validate policy ``data`` (the raw file bytes; ``filename`` is used in messages).

    Raises :class:`PolicyError` listing every error found, in line order. Warnings come back
    in ``LoadedPolicy.warnings``. With ``environ``, a ``${VAR}`` reference it does not define
    is a warning (checks run in CI, where the secrets are not set, so it is not an error).
    ``check_providers`` (default on) also validates each resource's provider settings
    against that provider's own schema, once everything else is valid.
    """
    version = hashlib.sha256(data).hexdigest()

    loader = _Loader(data)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as e:
            raise PolicyError([_yaml_issue(filename, e)]) from e
        except yaml.YAMLError as e:  # e.g. a reader error without a mark
            raise PolicyError([PolicyIssue(filename, None, "", f"invalid YAML: {e}")]) from e
        if node is None:
            raise PolicyError([PolicyIssue(filename, None, "", "the file is empty")])
        issues = [
            PolicyIssue(filename, line, _path_text(loc), msg)
            for loc, line, msg in _duplicates(node)
        ]
        try:
            raw = loader.construct_document(node)  # also flattens `<<` merges into the nodes
        except yaml.MarkedYAMLError as e:
            raise PolicyError([*issues, _yaml_issue(filename, e)]) from e
    finally:
        loader.dispose()

    lines = _line_map(node)

    def issue(
        loc: Loc, message: str, severity: str = "error", missing: bool = False
    ) -> PolicyIssue:
        kept, line = _locate(loc, lines, missing=missing)
        return PolicyIssue(filename, line, _path_text(kept), message, severity)

    if not isinstance(raw, dict):
        raise PolicyError(
            [*issues, PolicyIssue(filename, 1, "", "the top level must be a mapping")]
        )
    issues += [issue(f.loc, f.message) for f in literal_secret_findings(raw)]
    policy: Policy | None = None
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as e:
        for err in e.errors():
            loc, message = _schema_message(err)
            missing = err["type"] in ("missing", "union_tag_not_found")
            issues.append(issue(loc, message, missing=missing))
    warnings: list[PolicyIssue] = []
    if policy is not None and not issues:
        for f in check_policy(policy):
            (warnings if f.severity == "warning" else issues).append(
                issue(f.loc, f.message, f.severity)
            )
        if check_providers and not issues:
            issues += [issue(f.loc, f.message) for f in _provider_findings(policy)]
        if check_providers and not issues:
            for f in _provider_limit_findings(policy):
                (warnings if f.severity == "warning" else issues).append(
                    issue(f.loc, f.message, f.severity)
                )
        if environ is not None:
            warnings += [issue(f.loc, f.message, "warning") for f in _unset_env_refs(raw, environ)]
    if issues or policy is None:
        raise PolicyError(sorted(issues, key=_by_line))
    return LoadedPolicy(
        policy=policy, version=version, path=filename, warnings=sorted(warnings, key=_by_line)
    )


def _provider_findings(policy: Policy) -> list[Finding]:
    """Each resource's provider settings checked by the provider's own schema."""
    found: list[Finding] = []
    for rname, spec in policy.resources.items():
        problems = validate_provider_settings(
            {"type": spec.provider.type, **spec.provider.settings},
            {role: role_spec.provider for role, role_spec in spec.roles.items()},
        )
        for problem in problems:
            path, _, why = problem.partition(": ")
            found.append(Finding(("resources", rname, *_split_key_path(path)), why or problem))
    return found


def _provider_limit_findings(policy: Policy) -> list[Finding]:
    """Each provider type's own view of its roles' limits (AWS session durations)."""
    found: list[Finding] = []
    for rname, spec in policy.resources.items():
        limits = {}
        for role in spec.roles:
            rule = policy.rule(rname, role)
            limits[role] = RoleLimits(
                max_duration_s=rule.max_duration_s, default_duration_s=rule.default_duration_s
            )
        for role, f in check_provider_limits(
            {"type": spec.provider.type, **spec.provider.settings},
            {role: role_spec.provider for role, role_spec in spec.roles.items()},
            limits,
        ):
            loc = ("resources", rname, "roles", role, *_split_key_path(f.key))
            found.append(Finding(loc, f.message, "warning" if f.severity == "warning" else "error"))
    return found


def _split_key_path(path: str) -> Loc:
    """``roles.read.provider.grant_roles[0]`` -> ("roles", "read", "provider", "grant_roles", 0)."""
    loc: list[str | int] = []
    for part in path.split("."):
        name, *indexes = part.replace("]", "").split("[")
        loc.append(name)
        loc.extend(int(i) for i in indexes if i.isdigit())
    return tuple(loc)


def _by_line(issue: PolicyIssue) -> tuple[int, str]:
    return (issue.line or 0, issue.path)


# --- YAML nodes ----------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader whose impossible dates (2026-13-01) are YAML errors with a line."""

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as e:  # PyYAML lets datetime's ValueError escape unmarked
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a valid date ({e})", node.start_mark
            ) from e


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def _yaml_issue(filename: str, e: yaml.MarkedYAMLError) -> PolicyIssue:
    mark = e.problem_mark or e.context_mark
    what = e.problem or e.context or "cannot be parsed"
    if e.problem and e.context and e.context_mark:
        opened = e.context_mark.line + 1
        if e.problem.startswith("but "):  # PyYAML splits one sentence: "expected X", "but Y"
            what = f"{e.context} (line {opened}), {e.problem}"
        else:
            what += f" ({e.context} opened on line {opened})"
    return PolicyIssue(filename, mark.line + 1 if mark else None, "", f"invalid YAML: {what}")


def _duplicates(root: yaml.Node) -> list[tuple[Loc, int, str]]:
    """Keys written twice in one mapping (PyYAML would silently keep the last)."""
    found: list[tuple[Loc, int, str]] = []
    stack: list[tuple[yaml.Node, Loc]] = [(root, ())]
    seen_nodes: set[int] = set()  # aliases share nodes; visit each once
    while stack:
        node, loc = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                line = key_node.start_mark.line + 1
                if key == "<<":  # a merge key may repeat its keys on purpose
                    continue
                if key in first_line:
                    found.append(
                        ((*loc, key), line, f"duplicate key (first at line {first_line[key]})")
                    )
                else:
                    first_line[key] = line
                stack.append((value_node, (*loc, key)))
        elif isinstance(node, yaml.SequenceNode):
            stack += [(item, (*loc, i)) for i, item in enumerate(node.value)]
    return sorted(found, key=lambda f: f[1])


def _line_map(root: yaml.Node) -> LineMap:
    lines: LineMap = {(): root.start_mark.line + 1}
    stack: list[tuple[yaml.Node, Loc, frozenset[int]]] = [(root, (), frozenset())]
    while stack:
        node, loc, ancestors = stack.pop()
        if id(node) in ancestors:  # a recursive alias; the constructor has refused it anyway
            continue
        inner = ancestors | {id(node)}
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                child = (*loc, str(key_node.value))
                lines[child] = key_node.start_mark.line + 1  # the last wins, as in PyYAML
                stack.append((value_node, child, inner))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[(*loc, i)] = item.start_mark.line + 1
                stack.append((item, (*loc, i), inner))
    return lines


def _locate(loc: Loc, lines: LineMap, *, missing: bool) -> tuple[Loc, int | None]:
    """Map a (pydantic or check) location onto the document: the path as written and its line.

    Elements not in the document are dropped (pydantic adds union tags such as "static",
    "[key]", and "id" for a member written as a bare string), except the last one of a
    ``missing`` key: that is named, and placed at the line of its parent.
    """
    kept: Loc = ()
    line = lines.get(())
    for i, part in enumerate(loc):
        if part == "[key]":
            continue
        for candidate in ((*kept, part), (*kept, str(part))):
            if candidate in lines:
                kept, line = candidate, lines[candidate]
                break
        else:
            if missing and i == len(loc) - 1:
                kept = (*kept, part)
    return kept, line


def _path_text(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# --- schema errors -------------------------------------------------------------------------


def _schema_message(err: ErrorDetails) -> tuple[Loc, str]:
    """Pydantic's error as the loc to report and a message for someone editing YAML."""
    kind, loc, ctx = err["type"], tuple(err["loc"]), err.get("ctx") or {}
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f'; did you mean "{close[0]}"?' if close else ""
        return loc, f"unknown key{hint} (allowed here: {', '.join(allowed)})"
    if kind == "union_tag_invalid":
        return (*loc, "type"), f'"{ctx.get("tag")}" is not one of: {ctx.get("expected_tags")}'
    if kind == "union_tag_not_found":
        return (*loc, "type"), "required key is missing"
    simple = {
        "missing": "required key is missing",
        "string_type": "must be a string",
        "bool_type": "must be true or false",
        "int_type": "must be a whole number",
        "dict_type": "must be a mapping",
        "model_type": "must be a mapping",
        "list_type": "must be a list",
        "literal_error": f"must be {ctx.get('expected')}",
        "greater_than_equal": f"must be at least {ctx.get('ge')}",
        "too_short": "must not be empty",
    }
    if kind in simple:
        return loc, simple[kind]
    if kind.startswith("date"):
        return loc, "must be a date like 2026-06-30"
    return loc, err["msg"]


def _strip_optional(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp


def _allowed_keys(loc: Loc) -> list[str]:
    """The keys the model at ``loc`` accepts (walking Policy's type annotations)."""
    tp: Any = Policy
    for part in loc:
        tp = _strip_optional(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            info = tp.model_fields.get(str(part))
            tp = info.annotation if info is not None else None
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        elif get_origin(tp) is list:
            tp = get_args(tp)[0]
        elif get_origin(tp) in (Union, types.UnionType):  # a discriminated union: part is the tag
            tp = next(
                (m for m in get_args(tp) if part in get_args(m.model_fields["type"].annotation)),
                None,
            )
        if tp is None:
            return []
    tp = _strip_optional(tp)
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _unset_env_refs(raw: Mapping[str, Any], environ: Mapping[str, str]) -> list[Finding]:
    found: list[Finding] = []

    def walk(value: Any, loc: Loc) -> None:
        if isinstance(value, str):
            for name in referenced_names(value):
                if name not in environ:
                    found.append(Finding(loc, f"${{{name}}} is not set in this environment"))
        elif isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, (*loc, str(k)))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, (*loc, i))

    walk(raw.get("resources"), ("resources",))
    walk(raw.get("oncall"), ("oncall",))
    walk(raw.get("clients"), ("clients",))
    return found
