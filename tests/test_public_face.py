"""The toolkit as a user meets it: the README's commands, pandas output and
feature names, metadata routing, check_estimator for users."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _readme_commands():
    """The one-line commands of the README's bash blocks."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines()
            if line.strip()]


def test_readme_has_the_two_commands_and_ci_runs_the_test_one():
    commands = _readme_commands()
    tour = [c for c in commands if c.endswith("python -m sklearn_mbdl tour")]
    tests = [c for c in commands if c.endswith("python -m pytest")]
    assert len(tour) == 1 and len(tests) == 1
    for command in (tour[0], tests[0]):
        # each works pasted alone: it makes the environment and installs
        assert command.startswith("python3 -m venv .venv && . .venv/bin/activate")
        assert 'pip install -e ".[test]"' in command
    ci = (ROOT / ".ci" / "run")
    if ci.exists():  # (absent from an installed copy)
        lines = [line.strip() for line in ci.read_text().splitlines()]
        assert tests[0] in lines
