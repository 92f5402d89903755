"""The GitHub Actions workflows are product code: actionlint finds nothing, and every
`invoke` command in them names an existing task with flags it accepts (checked with
invoke's own parser), so the YAML cannot drift from tasks.py."""

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def invoke_commands(text: str) -> list[list[str]]:
    """argv (after 'invoke') of every invoke command in a run: block, with GitHub
    expressions and shell variables standing in as plain words."""
    text = re.sub(r"\$\{\{[^}]*\}\}", "X", text)
    text = re.sub(r'"\$\{\w+\[@\]\}"', "", text)  # "${args[@]}": flags built above, checked there
    text = re.sub(r"\$\{?\w+\}?", "X", text)
    commands = []
    for line in text.splitlines():
        for part in re.split(r"&&|\|\||;|\|", line):
            words = shlex.split(part.split(">>")[0].strip() or "true", comments=True)
            if words and words[0] == "invoke":
                commands.append(words[1:])
    return commands


def all_runs() -> list[tuple[str, str]]:
    runs = []
    for wf in WORKFLOWS:
        data = yaml.safe_load(wf.read_text())
        for name, job in data["jobs"].items():
            for step in job.get("steps", []):
                if "run" in step:
                    runs.append((f"{wf.name}:{name}", step["run"]))
    return runs


def test_actionlint_reports_nothing():
    exe = shutil.which("actionlint")
    assert exe, "actionlint is not installed: pip install -e '.[test]'"
    proc = subprocess.run([exe, "-no-color", *map(str, WORKFLOWS)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_invoke_command_names_a_task_with_valid_flags():
    import sys

    sys.path.insert(0, str(REPO))
    from invoke import Collection, Program
    from invoke.parser import Parser

    import tasks

    coll = Collection.from_module(tasks)
    parser = Parser(initial=Program(namespace=coll).initial_context, contexts=coll.to_contexts())
    seen = []
    for where, run in all_runs():
        for argv in invoke_commands(run):
            parsed = parser.parse_argv(argv)  # ParseError on an unknown task or flag
            for ctx in parsed[1:]:
                for arg in ctx.args.values():
                    if arg.takes_value and arg.got_value:
                        assert arg.value not in (None, "", True), (where, argv, arg.name)
            seen.append(" ".join(c.name for c in parsed[1:]))
    # the workflow's own steps: plan, per-arch setup + ci, merge, dashboard, summary
    for task in ("plan", "setup", "ci", "report", "dashboard", "summary", "setup test"):
        assert task in seen, (task, seen)


def test_a_wrong_flag_would_be_caught():
    from invoke.exceptions import ParseError
    from invoke import Collection, Program
    from invoke.parser import Parser

    import tasks

    coll = Collection.from_module(tasks)
    parser = Parser(initial=Program(namespace=coll).initial_context, contexts=coll.to_contexts())
    for argv in (["ci", "--seris", "x"], ["deploy"]):
        with pytest.raises(ParseError):
            parser.parse_argv(argv)


# The first major of each action that runs on Node 24 (Node 20 leaves GitHub's runners in
# September 2026); an action not listed here fails the test until its Node 24 major is added.
NODE24 = {"actions/checkout": 5, "actions/setup-python": 6, "actions/cache": 5, "actions/upload-artifact": 6,
          "actions/download-artifact": 7, "actions/upload-pages-artifact": 5, "actions/deploy-pages": 5,
          "mikepenz/action-junit-report": 6}


def test_no_action_is_a_node20_major():
    old = []
    for wf in WORKFLOWS:
        for action, major in re.findall(r"uses:\s*([\w.-]+/[\w.-]+)@v(\d+)", wf.read_text()):
            if action not in NODE24 or int(major) < NODE24[action]:
                old.append(f"{wf.name}: {action}@v{major}")
    assert old == []


def test_actionlint_runs_shellcheck_on_every_run_script():
    assert shutil.which("shellcheck"), "shellcheck is missing: invoke setup --test installs it"


def test_every_workflow_cancels_superseded_runs_and_limits_permissions():
    for wf in WORKFLOWS:
        data = yaml.safe_load(wf.read_text())
        assert data.get("concurrency", {}).get("cancel-in-progress") is True, wf.name
        assert data.get("permissions") == {"contents": "read"}, wf.name
