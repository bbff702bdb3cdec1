"""The template README says what the repository does."""

import json
import re

from .conftest import TEMPLATE_DIR

README = (TEMPLATE_DIR / "README.md").read_text()


def readme_prompts():
    section = README.split("## Prompts", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| (.+?) \| (.+?) \|$", section, re.MULTILINE)
    return {key: default for key, default, _ in rows}


def test_prompts_table_matches_cookiecutter_json():
    context = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())
    keys = [key for key in context if not key.startswith("_")]
    prompts = readme_prompts()
    assert list(prompts) == keys
    for key in keys:
        default = context[key]
        if isinstance(default, list):  # a choice: the first option is the default
            default = default[0]
        if isinstance(default, bool):
            default = "yes" if default else "no"
        if "{{" in str(default):
            assert "derived from" in prompts[key], key
        else:
            assert prompts[key] == f"`{default}`", key
    assert set(context["__prompts__"]) == set(keys)


def test_ci_runs_the_readme_test_command():
    command = README.split("<!-- test-command -->", 1)[1].split("```bash\n", 1)[1].split("\n")[0]
    ci_lines = (TEMPLATE_DIR / ".ci" / "run").read_text().splitlines()
    assert ci_lines[-1] == command


def test_quick_start_second_command_is_the_test_command():
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)\n```", quick_start, re.DOTALL)
    test_command = README.split("<!-- test-command -->", 1)[1].split("```bash\n", 1)[1]
    assert blocks[1] == test_command.split("\n")[0]
