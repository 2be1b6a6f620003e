"""The README's examples, run against the test server so that they cannot rot.

Every ```python block of README.md runs in a fresh interpreter with ``REDIS_URL``
pointing at the test server, as a reader would run it after exporting the URL. A
block directly followed by a ```text block must print exactly that text.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"

# A hang guard only: every example finishes in well under a second.
EXAMPLE_TIMEOUT = 300

FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Example:
    """One ```python block: where it is, its code, and what it must print."""

    name: str
    line: int
    code: str
    output: str | None


def _blocks(text: str) -> list[tuple[str, int, str, str]]:
    """Every fenced block as (language, first line, heading above it, body)."""
    blocks: list[tuple[str, int, str, str]] = []
    heading = "top"
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        opening = FENCE.match(line)
        if opening is None:
            index += 1
            continue

        start = index + 1
        end = start
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        if end == len(lines):
            raise AssertionError(f"README.md:{index + 1}: fence is never closed")
        body = "\n".join(lines[start:end]) + "\n"
        blocks.append((opening.group(1), index + 1, heading, body))
        index = end + 1
    return blocks


def _next_nonblank(lines: list[str], after: int) -> int | None:
    for index in range(after, len(lines)):
        if lines[index].strip():
            return index
    return None


def readme_examples() -> list[Example]:
    """The README's python blocks, each with the text block that follows it, if any."""
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    blocks = _blocks(text)
    examples: list[Example] = []
    counts: dict[str, int] = {}
    for position, (language, line, heading, body) in enumerate(blocks):
        if language != "python":
            continue

        output = None
        closing = line + body.count("\n")  # index of the closing fence's line
        following = _next_nonblank(lines, closing + 1)
        if position + 1 < len(blocks):
            next_language, next_line, _, next_body = blocks[position + 1]
            if next_language == "text" and following == next_line - 1:
                output = next_body

        slug = re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")
        counts[slug] = counts.get(slug, 0) + 1
        name = f"{slug}-{counts[slug]}"
        examples.append(Example(name, line, body, output))
    return examples


EXAMPLES = readme_examples()


def test_the_readme_has_runnable_examples_of_the_main_api() -> None:
    code = "".join(example.code for example in EXAMPLES)
    for name in (
        "tickpub.Publisher",
        "tickpub.Subscriber",
        "tickpub.packb",
        "tickpub.unpackb",
        "tickpub.connect",
        "publish_many",
        "pipeline=",
        "batch()",
        "tickpub.EncodeError",
        "tickpub.ConnectionError",
    ):
        assert name in code, f"no README example uses {name}"
    assert sum(example.output is not None for example in EXAMPLES) >= 5


def test_the_readme_keeps_the_two_setup_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "python -m pip install -e '.[test]' && python -m pytest\n" in text
    assert "python -m pip install '.[bench]' && tickpub bench\n" in text


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_readme_example_runs(
    example: Example,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    result = subprocess.run(
        [sys.executable, "-c", example.code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=EXAMPLE_TIMEOUT,
        check=False,
    )
    where = f"README.md:{example.line} ({example.name})"
    assert result.returncode == 0, f"{where} failed:\n{result.stderr}"
    if example.output is not None:
        assert result.stdout == example.output, f"{where} printed:\n{result.stdout}"
