"""``tickpub bench``: the table, the JSON file, the selection, the live subscriber, and
a one-line error for every bad input. Budgets are tiny: these tests check what the
command reports, never how fast anything is."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgpack_numpy
import pytest

from tests.conftest import ServerFactory
from tickpub.bench.paths import PATHS, BenchPath
from tickpub.bench.payloads import PAYLOADS
from tickpub.bench.runner import Settings, plan, run
from tickpub.cli import main

TINY = ["--budget", "0.02", "--rounds", "2"]
RATIO = re.compile(r"^\d+\.\d\dx$")
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
ORMSGPACK = importlib.util.find_spec("ormsgpack") is not None


def bench(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``tickpub bench ARGV`` in this process: (status, stdout, stderr)."""
    try:
        status = main(["bench", *argv])
    except SystemExit as exit_:
        # argparse exits with status 2 for bad arguments.
        status = exit_.code if isinstance(exit_.code, int) else -1
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def table_rows(stdout: str) -> list[list[str]]:
    """The table's rows, split into cells (cells are separated by 2+ spaces)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("---")) + 1
    rows = []
    for line in lines[start:]:
        if not line.strip():
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def assert_one_line_error(status: int, stderr: str, *needles: str) -> None:
    assert status != 0
    assert stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in stderr


def test_table_lists_every_path_with_a_ratio_and_json_has_everything(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "results.json"
    argv = ["--url", redis_url, "--payload", "tick", "--subscriber", "none", *TINY]
    status, stdout, _ = bench([*argv, "--json", str(out_file)], capsys)
    assert status == 0

    assert stdout.startswith("machine: ")
    assert "CPUs" in stdout.splitlines()[0]
    assert "command: tickpub bench --payload tick --subscriber none" in stdout
    assert re.search(r"^elapsed: \d+\.\d s$", stdout, re.MULTILINE)
    rows = table_rows(stdout)
    listed = {(row[1], row[2].removesuffix(" (baseline)")) for row in rows}
    available = [p for p in PATHS if p.unavailable() is None]
    assert listed == {(p.kind, p.name) for p in available}
    for row in rows:
        assert row[0] == "tick"
        assert RATIO.match(row[6]), row
        if row[2].endswith("(baseline)"):
            assert row[6] == "1.00x"
        assert row[3] == ("-" if row[1] == "encode" else "none")

    document = load(out_file)
    assert document["settings"] == {"budget": 0.02, "rounds": 2}
    env = document["environment"]
    assert env["cpu_count"] == os.cpu_count()
    assert env["packages"]["numpy"]
    assert env["packages"]["tickpub"]
    assert env["server"]["version"]
    measurements = document["measurements"]
    assert len(measurements) == len(available)
    tick_bytes = len(msgpack_numpy.packb(PAYLOADS[0].message()))
    by_key = {(m["kind"], m["path"]): m for m in measurements}
    for m in measurements:
        assert m["error"] is None
        assert m["payload_bytes"] == tick_bytes
        assert m["rounds"] == 2
        assert m["calls"] >= 3
        per_message = m["seconds_per_call"] / m["messages_per_call"]
        assert m["messages_per_second"] == pytest.approx(1 / per_message)
        mb = tick_bytes / per_message / 1e6
        assert m["megabytes_per_second"] == pytest.approx(mb)
        baseline = next(
            b for b in measurements if b["kind"] == m["kind"] and b["baseline"]
        )
        base = baseline["seconds_per_call"] / baseline["messages_per_call"]
        assert m["ratio"] == pytest.approx(base / per_message)
        if m["kind"] != "encode":
            assert m["messages_sent"] == m["calls"] * m["messages_per_call"]
    assert by_key["batch", "tickpub"]["messages_per_call"] == PAYLOADS[0].batch


def test_selection_measures_the_paths_asked_for_plus_their_baselines(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "results.json"
    argv = ["--url", redis_url, "--subscriber", "none", *TINY, "--json", str(out_file)]
    selection = ["--payload", "row-64", "--path", "publish/tickpub", "encode"]
    status, stdout, _ = bench([*argv, *selection], capsys)
    assert status == 0

    measured = {
        (m["payload"], m["kind"], m["path"]) for m in load(out_file)["measurements"]
    }
    encoders = {("row-64", "encode", p.name) for p in PATHS if p.kind == "encode"}
    encoders = {e for e in encoders if e[2] != "ormsgpack" or ORMSGPACK}
    assert measured == encoders | {
        ("row-64", "publish", "tickpub"),
        ("row-64", "publish", "popoto"),
    }
    assert {row[0] for row in table_rows(stdout)} == {"row-64"}


def test_live_subscriber_receives_every_message_sent(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "results.json"
    argv = ["--url", redis_url, "--payload", "tick-np", "--path", "publish", "batch"]
    status, stdout, _ = bench(
        [*argv, "--subscriber", "live", *TINY, "--json", str(out_file)], capsys
    )
    assert status == 0

    measurements = load(out_file)["measurements"]
    assert len(measurements) == len([p for p in PATHS if p.kind != "encode"])
    for m in measurements:
        assert m["subscriber"] == "live"
        assert m["error"] is None
        assert m["messages_sent"] > 0
        assert m["messages_received"] == m["messages_sent"]
    assert {row[3] for row in table_rows(stdout)} == {"live"}


def test_a_subscriber_the_server_drops_fails_the_measurement(
    server_factory: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = server_factory(
        extra_args=["--client-output-buffer-limit", "pubsub 1kb 0 0"]
    )
    out_file = tmp_path / "results.json"
    argv = ["--url", server.url, "--payload", "array-1m", "--path", "publish/tickpub"]
    status, stdout, stderr = bench(
        [*argv, "--subscriber", "live", *TINY, "--json", str(out_file)], capsys
    )

    assert status == 1
    assert "Traceback" not in stderr
    assert stderr.splitlines()[-1].startswith("tickpub: error: 2 measurement(s) failed")
    assert [row[6] for row in table_rows(stdout)] == ["FAILED", "FAILED"]
    assert "client-output-buffer-limit" in stdout
    for m in load(out_file)["measurements"]:
        assert m["error"]
        assert m["messages_per_second"] is None
        assert m["ratio"] is None


def test_a_path_whose_module_is_missing_is_skipped_with_a_reason(
    redis_url: str,
) -> None:
    missing = BenchPath(
        "encode",
        "missing",
        "a path needing a module that is not installed",
        PATHS[0].prepare,
        module="tickpub_no_such_module",
    )
    steps = plan([PAYLOADS[0]], [PATHS[1], missing], ["none"])
    results = run(redis_url, steps, Settings(budget=0.01, rounds=1))

    assert [m.id for m in results.measurements] == ["encode/msgpack-numpy"]
    assert results.skipped == [
        (
            "encode/missing",
            "tickpub_no_such_module is not installed (pip install 'tickpub[bench]')",
        )
    ]


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["--bogus"], ["--bogus"]),
        (["--payload", "tick", "nope"], ["unknown payload nope", "array-16m"]),
        (["--path", "encode/nope"], ["unknown path encode/nope", "batch/raw-socket"]),
        (["--subscriber", "some"], ["--subscriber"]),
        (["--budget", "0"], ["--budget", "above 0"]),
        (["--rounds", "two"], ["--rounds", "not a whole number"]),
        (["--url", "http://localhost"], ["--url", "redis://"]),
    ],
)
def test_bad_arguments_give_one_line_errors(
    argv: list[str], needles: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status, stdout, stderr = bench(argv, capsys)
    assert_one_line_error(status, stderr, *needles)
    assert stdout == ""


def test_an_unreachable_url_gives_a_one_line_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    status, _, stderr = bench(["--url", url], capsys)
    assert_one_line_error(status, stderr, url, "--url", "refused")


def test_an_unreachable_redis_url_gives_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    status, _, stderr = bench(["--quick"], capsys)
    assert_one_line_error(status, stderr, "REDIS_URL")


@pytest.mark.parametrize("where", ["missing-dir/out.json", "."])
def test_an_unwritable_json_path_is_refused_before_the_run(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The unreachable URL would fail later: the JSON path is checked first.
    url = f"redis://127.0.0.1:{free_port()}/0"
    target = tmp_path / where
    status, _, stderr = bench(["--json", str(target), "--url", url], capsys)
    assert_one_line_error(status, stderr, "--json", str(target))


def test_plot_without_matplotlib_is_refused_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes the import fail
    url = f"redis://127.0.0.1:{free_port()}/0"
    status, _, stderr = bench(["--plot", str(tmp_path / "r.png"), "--url", url], capsys)
    assert_one_line_error(status, stderr, "matplotlib", "pip install 'tickpub[plot]'")


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed")
def test_plot_writes_a_png(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "ratios.png"
    argv = ["--url", redis_url, "--payload", "tick", "--path", "encode", *TINY]
    status, _, _ = bench([*argv, "--plot", str(image)], capsys)
    assert status == 0
    assert image.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def _command_env(**changes: str) -> dict[str, str]:
    env = dict(os.environ, **changes)
    env.pop("REDIS_URL", None)
    return env


def test_no_server_binary_gives_a_one_line_error(tmp_path: Path) -> None:
    env = _command_env(PATH=str(tmp_path), REDIS_SERVER_BIN="/nonexistent/x")
    result = subprocess.run(
        [sys.executable, "-m", "tickpub", "bench", "--quick"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert_one_line_error(result.returncode, result.stderr, "REDIS_SERVER_BIN")


def test_python_m_tickpub_bench_runs_with_progress_on_stderr(redis_url: str) -> None:
    command = [sys.executable, "-m", "tickpub", "bench", "--url", redis_url]
    result = subprocess.run(
        [*command, "--payload", "tick", "--path", "encode", "--budget", "0.01"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    steps = [p for p in PATHS if p.kind == "encode"]
    # Not a terminal: one progress line per step.
    progress = result.stderr.splitlines()
    assert len(progress) == len(steps)
    assert progress[-1].startswith("[")
    assert f"{len(steps)}/{len(steps)}" in progress[-1]
    assert len(table_rows(result.stdout)) == len(
        [p for p in steps if p.unavailable() is None]
    )
