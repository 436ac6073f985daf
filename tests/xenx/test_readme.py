"""The README is the reference, so it is checked against the code: the endpoint table
against the OpenAPI schema and the URL configuration, every shell command against the
entry points it names, the Dependencies table against the pins, the settings table
against what the settings read; and nothing points outside the repository."""

import re
import shlex
import subprocess

import pytest
from django.core.management import get_commands, load_command_class
from django.urls import Resolver404, resolve
from drf_spectacular.generators import SchemaGenerator

from tests.xenx.servers import ROOT

README = (ROOT / "README.md").read_text()
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
# Served, but not operations of the OpenAPI schema.
NOT_IN_SCHEMA = {"/api/schema/", "/api/docs/", "/api/{service}/{path}"}
EXAMPLE_ARGS = {
    "id": "1",
    "inv": "2",
    "name": "billing",
    "service": "demo",
    "path": "x",
    "client_id": "abc",
}


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README has no section '## {title}'"
    return match.group(1)


def table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not re.match(r"^\|[-:| ]+\|$", line):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows[1:]  # without the header


def _git(*args) -> str:
    if not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout")
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


# --- nothing outside the repository --------------------------------------------------


def test_nothing_points_outside_the_repository():
    outside = ("../" + "shared", "/work/" + "shared")
    files = _git("ls-files").split()
    hits = [
        f"{name}: {marker}"
        for name in files
        if (ROOT / name).is_file()
        for marker in outside
        if marker in (ROOT / name).read_text(errors="replace")
    ]
    assert not hits, "the repository must stand alone: " + ", ".join(hits)


# --- endpoints ------------------------------------------------------------------------


def _documented_endpoints() -> dict[str, set[str]]:
    documented: dict[str, set[str]] = {}
    for methods, path, *_ in table_rows(section("Endpoints")):
        path = path.strip("`")
        for method in methods.split(","):
            documented.setdefault(path, set()).add(method.strip().lower())
    return documented


def _schema_operations() -> dict[str, set[str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        path: {method for method in operations if method in HTTP_METHODS}
        for path, operations in schema["paths"].items()
    }


def test_every_schema_operation_is_in_the_endpoint_table_and_back():
    documented = _documented_endpoints()
    schema = _schema_operations()
    missing = sorted(
        f"{method.upper()} {path}"
        for path, methods in schema.items()
        for method in methods - documented.get(path, set())
    )
    assert not missing, f"add rows to README '## Endpoints' for: {missing}"
    extra = sorted(
        f"{method.upper()} {path}"
        for path, methods in documented.items()
        if path.startswith("/api/") and path not in NOT_IN_SCHEMA
        for method in methods - schema.get(path, set())
    )
    assert not extra, f"README '## Endpoints' lists what the schema has not: {extra}"


@pytest.mark.parametrize("path", sorted(_documented_endpoints()))
def test_every_documented_path_is_served(path):
    concrete = re.sub(r"\{(\w+)\}", lambda m: EXAMPLE_ARGS[m.group(1)], path)
    try:
        match = resolve(concrete)
    except Resolver404:
        pytest.fail(f"README '## Endpoints' lists {path}, which no URL serves")
    if path != "/api/{service}/{path}":
        assert match.url_name != "gateway-proxy", f"{path} falls to the gateway"


def test_every_error_code_of_the_readme_is_produced_by_the_code():
    table = section("Conventions").split("| status | codes |", 1)[1].split("\n\n")[0]
    codes = set(re.findall(r"`([a-z_]+)`", table))
    assert len(codes) > 15
    sources = _git("grep", "-h", "-o", "-E", r'"[a-z_]+"', "--", "*.py", ":!tests")
    produced = {line.strip('"') for line in sources.split()}
    assert not codes - produced, (
        f"README error codes not in the code: {codes - produced}"
    )


# --- commands -------------------------------------------------------------------------

EXTERNAL = {"curl", "python3", "export"}  # python3 only with -c (see below)


def _readme_commands() -> list[list[str]]:
    """Each simple command of the README's ```sh blocks, as tokens."""
    commands = []
    for block in re.findall(r"^```sh\n(.*?)^```", README, re.M | re.S):
        for line in block.replace("\\\n", " ").splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars="();<>|&")
            lexer.whitespace_split = True
            lexer.commenters = "#"
            current: list[str] = []
            for token in lexer:
                if token in {"(", ")", "|", "||", "&&", ";", "&"}:
                    if current:
                        commands.append(current)
                    current = []
                elif current or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", token):
                    current.append(token)  # leading NAME=value assignments skipped
            if current:
                commands.append(current)
    return commands


def test_readme_has_shell_commands():
    entry_points = {command[0] for command in _readme_commands()}
    assert {"scripts/run", "scripts/test", "scripts/manage", "curl"} <= entry_points


@pytest.mark.parametrize("command", _readme_commands(), ids=" ".join)
def test_every_readme_command_has_its_entry_point(command):
    entry = command[0]
    if entry.startswith(("scripts/", "bench/")):
        script = ROOT / entry
        assert script.is_file(), f"{entry} does not exist"
        assert script.stat().st_mode & 0o111, f"{entry} is not executable"
        if entry == "scripts/manage":
            name = command[1]
            assert name in get_commands(), f"no management command {name!r}"
            parser = load_command_class(get_commands()[name], name).create_parser(
                "manage.py", name
            )
            parser.parse_args(command[2:])  # CommandError on unknown options
        else:
            # The script's own text and the Python files it runs (bench/faults runs
            # bench/faults.py) must know each option.
            text = script.read_text()
            for name in re.findall(r"[\w/]+\.py", text):
                for candidate in (script.parent / name, ROOT / name):
                    if candidate.is_file():
                        text += candidate.read_text()
            for option in command[1:]:
                if option.startswith("--"):
                    assert option.split("=")[0] in text, (
                        f"{entry} does not know {option}"
                    )
        return
    assert entry in EXTERNAL, f"README command {' '.join(command)!r}: unknown {entry!r}"
    if entry == "python3":
        assert command[1] == "-c", "run project code through scripts/manage"


# --- dependencies ---------------------------------------------------------------------

REQUIREMENT_FILES = {
    "requirements.txt": "runtime",
    "requirements-dev.txt": "dev",
    "requirements-bench.txt": "bench",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_pinned_package_has_a_dependencies_row():
    pinned = {}
    for filename, kind in REQUIREMENT_FILES.items():
        for line in (ROOT / filename).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                name = re.split(r"[=<>!~\[; ]", line, maxsplit=1)[0]
                pinned[_norm(name)] = kind
    rows = {
        _norm(row[0].strip("`")): row[1] for row in table_rows(section("Dependencies"))
    }
    missing = sorted(set(pinned) - set(rows))
    assert not missing, (
        f"README '## Dependencies' needs a row (| `package` | file | why |) for: {missing}"
    )
    stale = sorted(set(rows) - set(pinned))
    assert not stale, f"README '## Dependencies' lists packages not pinned: {stale}"
    wrong = sorted(
        f"{n}: {rows[n]} → {kind}" for n, kind in pinned.items() if rows[n] != kind
    )
    assert not wrong, f"README '## Dependencies' names the wrong file for: {wrong}"


# --- settings -------------------------------------------------------------------------

SETTINGS_SOURCES = [
    "xenx/settings/base.py",
    "xenx/settings/development.py",
    "xenx/settings/production.py",
    "gunicorn.conf.py",
]
ENV_READ = re.compile(
    r"""(?:env_\w+|os\.environ\.get|os\.environ\.setdefault|getenv)\(\s*["']([A-Z0-9_]+)["']"""
    r"""|os\.environ\[["']([A-Z0-9_]+)["']\]"""
)


def test_every_setting_read_from_the_environment_is_documented():
    names = set()
    for source in SETTINGS_SOURCES:
        for match in ENV_READ.finditer((ROOT / source).read_text()):
            names.add(match.group(1) or match.group(2))
    undocumented = sorted(name for name in names if f"`{name}`" not in README)
    assert not undocumented, f"README does not document the settings {undocumented}"


# --- README sections named by comments and docstrings ---------------------------------

# The forms matched: README then a quoted heading in single or double quotes, maybe
# followed by a subsection in parentheses (inside the quotes or after them), or
# README.md, section then the quoted heading; a name may wrap onto the next comment or
# docstring line.
README_POINTER = re.compile(
    r"""README(?:\.md)?,?\s+(?:section\s+)?(?P<q>["'])(?P<name>[^"'#]{1,100}?)(?P=q)"""
    r"""(?:[ \t]*\((?P<sub>[^)\n]{1,60})\))?"""
)


def _readme_headings() -> dict[str, str]:
    """Every ``##``/``###`` heading → its text (up to the next heading of any level)."""
    parts = re.split(r"^(#{2,3} .+)$", README, flags=re.M)
    return {
        head.lstrip("#").strip(): body
        for head, body in zip(parts[1::2], parts[2::2], strict=True)
    }


def _readme_pointers() -> list[tuple[str, str, str | None]]:
    pointers = []
    for name in _git("ls-files", "*.py").split():
        if name == "tests/xenx/test_readme.py":  # its own examples above
            continue
        text = (ROOT / name).read_text(errors="replace")
        text = re.sub(r"\n[ \t]*#[ \t]*", " ", text)  # a comment's next line
        for match in README_POINTER.finditer(text):
            section_name = " ".join(match["name"].split())
            pointers.append((name, section_name, match["sub"]))
    return pointers


def test_every_readme_section_a_comment_names_exists():
    """A name is a heading, or a heading's part before its colon ("Identity" for
    "Identity: login, MFA, tokens, audit log"); a sub-topic in parentheses appears in
    that section."""
    headings = _readme_headings()
    by_name = {**{h.split(":")[0]: body for h, body in headings.items()}, **headings}
    pointers = _readme_pointers()
    assert len(pointers) > 30  # the pattern still finds them

    def found(name: str, sub: str | None) -> bool:
        inner = re.fullmatch(r"(.+?) \((.+)\)", name)
        if name not in by_name and sub is None and inner:  # README 'Section (sub)'
            name, sub = inner.groups()
        if name not in by_name:
            return False
        return sub is None or " ".join(sub.split()).lower() in by_name[name].lower()

    wrong = [
        f"{path}: README {name!r}" + (f" ({sub})" if sub else "")
        for path, name, sub in pointers
        if not found(name, sub)
    ]
    assert not wrong, "no such README section: " + "; ".join(wrong)
