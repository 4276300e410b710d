"""Reading a grader spec from a YAML or JSON file, with problems that point at file and line."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from ftwizard.errors import InputError
from ftwizard.graders.spec import KINDS, AnyGrader, GraderSpec, PythonGrader, iter_graders
from ftwizard.graders.templates import template_problems
from ftwizard.inputs import read_input_text
from ftwizard.json_input import JSONInputError, compose_yaml, construct_yaml, loads

_ADAPTER: TypeAdapter[AnyGrader] = TypeAdapter(GraderSpec)

Loc = tuple[str | int, ...]


class GraderProblem(BaseModel):
    """One thing wrong with a grader file: what, in which field, at which line."""

    message: str
    field: str | None = None
    line: int | None = None
    path: str | None = None

    def to_error(self) -> InputError:
        """The problem as an :class:`InputError` (exit code 2)."""
        return InputError(self.message, path=self.path, line=self.line, field=self.field)


def _node_lines(node: yaml.Node, loc: Loc, out: dict[Loc, tuple[int, yaml.Node]]) -> None:
    out[loc] = (node.start_mark.line + 1, node)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = (*loc, str(key.value))
            _node_lines(value, k, out)
            # A problem with a field is shown on the line of its key.
            out[k] = (key.start_mark.line + 1, value)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _node_lines(item, (*loc, i), out)


def _read(path: Path) -> tuple[Any, dict[Loc, tuple[int, yaml.Node]]]:
    try:
        text = read_input_text(path)
    except InputError as exc:
        if exc.message.startswith("file not found"):
            raise InputError("grader file not found; check the path", path=path) from None
        raise
    lines: dict[Loc, tuple[int, yaml.Node]] = {}
    if path.suffix.lower() == ".json":
        try:
            data = loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"invalid JSON: {exc.msg} (column {exc.colno})", path=path, line=exc.lineno
            ) from None
        except JSONInputError as exc:
            raise InputError(exc.message, path=path, field=exc.field) from None
        try:
            node = compose_yaml(text)  # only for line numbers
        except (yaml.YAMLError, ValueError):
            node = None  # valid JSON that YAML 1.1 rejects: problems just lack line numbers
    else:
        try:
            node = compose_yaml(text)
            data = None if node is None else construct_yaml(node)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc)
            raise InputError(
                f"invalid YAML: {problem}", path=path, line=mark.line + 1 if mark else None
            ) from None
        except JSONInputError as exc:
            raise InputError(exc.message, path=path, field=exc.field) from None
    if node is not None:
        try:
            _node_lines(node, (), lines)
        except RecursionError:
            lines.clear()  # too deep to map to lines; the spec check still names the field
    return data, lines


def _data_loc(data: Any, loc: Loc) -> Loc:
    """Drop the union tags pydantic puts in ``loc`` so it matches the file's structure."""
    out: list[str | int] = []
    cur = data
    for part in loc:
        if isinstance(cur, dict) and part not in cur and part in KINDS:
            continue
        out.append(part)
        if isinstance(cur, dict):
            cur = cur.get(part)
        elif isinstance(cur, list) and isinstance(part, int) and part < len(cur):
            cur = cur[part]
        else:
            cur = None
    return tuple(out)


def _message(err: dict[str, Any]) -> str:
    kind = err["type"]
    if kind == "union_tag_invalid":
        tag = err.get("ctx", {}).get("tag")
        if tag == "multi":
            return "a multi grader cannot contain another multi grader"
        return f"unknown grader kind '{tag}'; known kinds: {', '.join(KINDS)}"
    if kind == "union_tag_not_found":
        return f"missing 'type'; one of: {', '.join(KINDS)}"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling)"
    if kind == "missing":
        return "required field is missing"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def _field_name(loc: Loc) -> str | None:
    return ".".join(str(p) for p in loc) or None


def _line(lines: dict[Loc, tuple[int, yaml.Node]], loc: Loc) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]][0]
    return None


def grader_problems(
    data: Any,
    *,
    path: str | Path | None = None,
    fields: set[str] | None = None,
    lines: dict[Loc, tuple[int, yaml.Node]] | None = None,
) -> tuple[AnyGrader | None, list[GraderProblem]]:
    """Validate grader data; return the spec (when it parses) and every problem found.

    ``fields`` are the dataset's field names; when given, ``{{item.x}}`` must name one of them.
    Python sources in ``source_file`` are read relative to ``path``'s folder and compiled (never
    run) so a syntax error is reported with its file and line.
    """
    lines = lines or {}
    where = str(path) if path is not None else None
    if not isinstance(data, dict):
        return None, [
            GraderProblem(
                message="a grader file must hold one object (a mapping) with a 'type' field",
                path=where,
                line=1,
            )
        ]
    try:
        spec = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = _data_loc(data, tuple(err["loc"]))
            if str(err["msg"]).startswith("Value error, calculate_output"):
                loc = (*loc, "calculate_output")
            elif err["type"] == "union_tag_invalid":
                loc = (*loc, "type")
            problems.append(
                GraderProblem(
                    message=_message(dict(err)),
                    field=_field_name(loc),
                    line=_line(lines, loc),
                    path=where,
                )
            )
        return None, problems
    problems = []
    base_dir = Path(path).parent if path is not None else Path.cwd()
    for prefix, g in iter_graders(spec):
        if isinstance(g, PythonGrader):
            loc: Loc = tuple(p for p in prefix.split(".") if p)
            problems += _load_python(g, loc, base_dir, where, lines)
    for field, why in template_problems(spec, fields):
        loc = tuple(int(p) if p.isdigit() else p for p in field.split("."))
        problems.append(GraderProblem(message=why, field=field, line=_line(lines, loc), path=where))
    return spec, problems


def _load_python(
    g: PythonGrader,
    loc: Loc,
    base_dir: Path,
    where: str | None,
    lines: dict[Loc, tuple[int, yaml.Node]],
) -> list[GraderProblem]:
    if g.source_file is not None:
        src_path = (base_dir / g.source_file).resolve()
        try:
            g.source = read_input_text(src_path)
        except InputError as exc:
            return [
                GraderProblem(
                    message=f"cannot read source_file {src_path}: {exc.message}",
                    field=_field_name((*loc, "source_file")),
                    line=_line(lines, (*loc, "source_file")),
                    path=where,
                )
            ]
        g.set_origin(src_path, 1)
    else:
        entry = lines.get((*loc, "source"))
        first = 1
        if entry is not None:
            node = entry[1]
            # A block scalar (| or >) starts on the line after its indicator.
            block = getattr(node, "style", None) in ("|", ">")
            first = node.start_mark.line + (2 if block else 1)
        g.set_origin(Path(where) if where else None, first)
    return [p for p in [python_source_problem(g)] if p is not None]


def python_source_problem(g: PythonGrader) -> GraderProblem | None:
    """A syntax error or a missing ``grade`` function in a python grader, or ``None``."""
    origin, first = g.origin()
    try:
        tree = ast.parse(g.code, filename=str(origin or "<grader>"))
    except SyntaxError as exc:
        src_line = exc.lineno or 1
        return GraderProblem(
            message=f"python grader '{g.name}': syntax error: {exc.msg} (source line {src_line})",
            path=str(origin) if origin else None,
            line=first + src_line - 1,
        )
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "grade":
            if len(node.args.args) + len(node.args.posonlyargs) < 2 and node.args.vararg is None:
                return GraderProblem(
                    message=f"python grader '{g.name}': grade() must take (sample, item)",
                    path=str(origin) if origin else None,
                    line=first + node.lineno - 1,
                )
            return None
    return GraderProblem(
        message=f"python grader '{g.name}': the source defines no "
        "`def grade(sample, item) -> float`",
        path=str(origin) if origin else None,
        line=first,
    )


def check_grader_file(
    path: str | Path, *, fields: set[str] | None = None
) -> tuple[AnyGrader | None, list[GraderProblem]]:
    """Read and validate a grader file (YAML or JSON); return the spec and every problem."""
    p = Path(path)
    data, lines = _read(p)
    return grader_problems(data, path=p, fields=fields, lines=lines)


def load_grader(path: str | Path, *, fields: set[str] | None = None) -> AnyGrader:
    """Load a grader file, raising :class:`InputError` (exit 2) on its first problem.

    The message counts the other problems so the user knows how much is left to fix.
    """
    spec, problems = check_grader_file(path, fields=fields)
    if problems:
        first = problems[0]
        if len(problems) > 1:
            first = first.model_copy(
                update={"message": f"{first.message} (and {len(problems) - 1} more problem(s))"}
            )
        raise first.to_error()
    assert spec is not None
    return spec


def parse_grader(data: dict[str, Any], *, fields: set[str] | None = None) -> AnyGrader:
    """Validate grader data already in memory (e.g. from the grader screen)."""
    spec, problems = grader_problems(data, fields=fields)
    if problems:
        raise problems[0].to_error()
    assert spec is not None
    return spec


def dataset_fields(rows: list[dict[str, Any]]) -> set[str]:
    """Every field name that appears in these dataset rows (what ``{{item.x}}`` may name)."""
    out: set[str] = set()
    for row in rows:
        if isinstance(row, dict):
            out.update(row)
    return out
