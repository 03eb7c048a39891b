"""The docs a new user reads: the README names every command of `automata --help`, and nothing in
the repository points at a document the user does not have (tests may read optional sample data
beside the clone, tests/helpers/sample_data.py, and say so)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import typer

from cli.main import build_app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def visible_commands(app: typer.Typer, prefix: str = "automata") -> list[str]:
    """`automata NAME` for every command and `automata GROUP SUB` for every sub-command, hidden ones left out."""
    names = []
    for cmd in app.registered_commands:
        if not cmd.hidden:
            names.append(f"{prefix} {cmd.name or cmd.callback.__name__.replace('_', '-')}")
    for group in app.registered_groups:
        if group.hidden or group.typer_instance is None:
            continue
        name = group.name or group.typer_instance.info.name
        names.append(f"{prefix} {name}")
        names.extend(visible_commands(group.typer_instance, f"{prefix} {name}"))
    return names


def test_the_readme_names_every_command_and_sub_command():
    commands = visible_commands(build_app())
    assert {"automata run", "automata dca plan", "automata keys add", "automata new-strategy"} <= set(
        commands
    )
    missing = [c for c in commands if not re.search(re.escape(c) + r"(?![\w-])", README)]
    assert not missing, f"README.md does not name: {missing}"


def test_the_readme_lists_the_telegram_commands():
    from services.notifier.commands import CONTROL, HELP

    for command in [*(line.split()[0] for line in HELP.splitlines()[1:]), *(f"/{c}" for c in CONTROL)]:
        assert f"`{command}" in README, command
    assert "allowed_users" in README


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_nothing_outside_the_tests_points_at_the_teams_documents():
    """The grep of the issue (`grep -rn "\\.\\./shared" --exclude-dir=tests --exclude-dir=.venv .`)
    and its kin: a strategy document cited outside docs/, the original menu's item numbers."""
    patterns = {
        "../shared": re.compile(r"\.\./shared"),
        "STRATEGIES.md cited outside docs/": re.compile(r"(?<![\w/])STRATEGIES\.md,? §|\.\./STRATEGIES\.md"),
        "the seed document": re.compile(r"\bseed (document|tutorial)|the seed's\b", re.I),
        "the document's menu": re.compile(r"the document's (menu|defaults|names)", re.I),
        "menu item numbers": re.compile(r"\bItems? \d+(\.\d+[a-z]?)?\b"),
    }
    found = []
    for path in tracked_files():
        rel = path.relative_to(ROOT)
        if rel.parts[0] == "tests" or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for what, pattern in patterns.items():
            if what == "STRATEGIES.md cited outside docs/" and rel.parts[0] == "docs":
                continue  # a relative link between the docs
            for m in pattern.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                found.append(f"{rel}:{line}: {what}")
    assert not found, "\n".join(found)


def test_strategies_md_has_the_sections_the_code_cites():
    doc = (ROOT / "docs" / "STRATEGIES.md").read_text(encoding="utf-8")
    cited = set()
    for path in tracked_files():
        if path.suffix in (".py", ".toml", ".md") and path.is_file():
            cited |= set(re.findall(r"docs/STRATEGIES\.md §(\d+)", path.read_text(encoding="utf-8")))
    assert cited == {"1", "2", "3", "4"}
    for section in cited:
        assert re.search(rf"^## {section}\. ", doc, re.M), f"docs/STRATEGIES.md has no section {section}"


def test_every_automata_command_the_docs_show_exists():
    """A typo in a documented command (`automata pasue`) fails here, not in a new user's terminal."""
    subs: dict[str, set[str]] = {"COMMAND": set()}  # a top-level command -> its sub-commands
    for words in (c.split()[1:] for c in visible_commands(build_app())):
        subs.setdefault(words[0], set()).update(words[1:])
    known = set(subs)
    pattern = re.compile(r"(?<!-u )(?<!-g )(?<!-o )\bautomata ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?")
    wrong = []
    for doc in ("README.md", "docs/STRATEGY_GUIDE.md", "docs/STRATEGIES.md"):
        for m in pattern.finditer((ROOT / doc).read_text(encoding="utf-8")):
            name, sub = m.group(1), m.group(2)
            bad_sub = bool(subs.get(name)) and sub is not None and sub not in subs[name]
            if name not in known or bad_sub:
                wrong.append(f"{doc}: {m.group(0)}")
    assert not wrong, wrong
