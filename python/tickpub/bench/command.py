"""``tickpub bench``: measure tickpub against popoto's path on this machine.

The command checks everything it can before the run (the selection, the output
files, matplotlib for ``--plot``, the server), then runs with a progress bar on
stderr, prints the table on stdout, and writes the JSON file and the plot.

A server started for the run lets a live subscriber fall behind by up to 1 GiB. A
server given by ``--url`` or ``REDIS_URL`` keeps its own ``client-output-buffer-limit``
for pubsub clients: if the subscriber falls behind by more, the server drops it and
the measurement is reported as failed, with a line saying which limit to raise.
"""

from __future__ import annotations

import argparse
import os
import shlex
import time
from pathlib import Path
from typing import Any

import redis

import tickpub
from tickpub._argtypes import positive_number, whole_number
from tickpub.bench import plot, report
from tickpub.bench.paths import KINDS, path_ids, select_paths
from tickpub.bench.payloads import payload_names, select_payloads
from tickpub.bench.progress import Progress
from tickpub.bench.runner import (
    FULL,
    QUICK,
    SUBSCRIBER_MODES,
    Settings,
    plan,
    run,
    with_baselines,
)
from tickpub.server import RedisServer, start_server

__all__ = ["BenchError", "add_bench_command"]

# A server started for the run buffers up to this much for a live subscriber that
# falls behind (the default pubsub hard limit, 32 MiB, is one batch of the 16 MiB
# payload).
_EMBEDDED_SERVER_ARGS = ("--client-output-buffer-limit", "pubsub 1gb 0 0")
_CONNECT_TIMEOUT = 5.0


class BenchError(Exception):
    """A problem the user can fix; the command prints it as one line, exit status 1."""


def _payload_name(value: str) -> str:
    try:
        select_payloads([value])
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value


def _path_selector(value: str) -> str:
    try:
        select_paths([value])
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value


def add_bench_command(commands: argparse._SubParsersAction[Any]) -> None:
    """Register ``bench`` on the ``tickpub`` command's subcommands.

    Args:
        commands: the subparsers of the ``tickpub`` parser.
    """
    bench = commands.add_parser(
        "bench",
        help="measure tickpub against popoto's path on this machine",
        description="Time encoding, publishing one message at a time and publishing "
        "batches, for tickpub and for the pure-Python baselines (msgpack-numpy, "
        "popoto's msgpack-numpy + redis-py, a redis-py pipeline), with and without a "
        "live subscriber. The baseline of each selected kind is always measured, for "
        "the ratios.",
    )
    bench.add_argument(
        "--quick", action="store_true", help="short budgets: a run in under 30 s"
    )
    bench.add_argument(
        "--payload",
        nargs="+",
        action="extend",
        type=_payload_name,
        metavar="NAME",
        help=f"payloads to send (default: all): {', '.join(payload_names())}",
    )
    bench.add_argument(
        "--path",
        nargs="+",
        action="extend",
        type=_path_selector,
        metavar="KIND_OR_ID",
        help=f"paths to measure (default: all): a kind ({', '.join(KINDS)}) or an "
        f"id: {', '.join(path_ids())}",
    )
    bench.add_argument(
        "--subscriber",
        choices=("none", "live", "both"),
        default="both",
        help="publish with no subscriber, with a live subscriber in another "
        "process, or both (default)",
    )
    bench.add_argument("--json", type=Path, metavar="FILE", help="write raw results")
    bench.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help=f"bar chart of the ratios (needs matplotlib: {plot.INSTALL_HINT})",
    )
    bench.add_argument(
        "--url",
        help="server to use (default: REDIS_URL, else a server started for the run)",
    )
    bench.add_argument(
        "--budget",
        type=positive_number,
        metavar="SECONDS",
        help=f"timed seconds per measurement (default {FULL.budget}, "
        f"{QUICK.budget} with --quick)",
    )
    bench.add_argument(
        "--rounds",
        type=whole_number(1),
        metavar="N",
        help=f"timed rounds per measurement (default {FULL.rounds}, "
        f"{QUICK.rounds} with --quick)",
    )
    bench.set_defaults(func=_cmd_bench)


def _command_line(args: argparse.Namespace) -> str:
    words = ["tickpub", "bench"]
    if args.quick:
        words.append("--quick")
    for option in ("payload", "path"):
        if getattr(args, option):
            words += [f"--{option}", *getattr(args, option)]
    if args.subscriber != "both":
        words += ["--subscriber", args.subscriber]
    for option in ("budget", "rounds", "json", "plot"):
        if getattr(args, option) is not None:
            words += [f"--{option}", str(getattr(args, option))]
    if args.url is not None:
        words += ["--url", report.redact(args.url)]
    return shlex.join(words)


def _check_writable(path: Path, option: str) -> None:
    where = path.absolute().parent
    if path.is_dir():
        raise BenchError(f"{option} {path} is a directory; give a file name")
    if not where.is_dir():
        raise BenchError(
            f"{option} {path}: the directory {where} does not exist; create it or "
            "choose another file"
        )
    if not os.access(path if path.exists() else where, os.W_OK):
        raise BenchError(f"{option} {path} is not writable; choose another file")


def _check_server(url: str, source: str) -> None:
    hint = (
        f"start the server, fix {source}, or leave --url and REDIS_URL unset to run "
        "a server started for the benchmark"
    )
    try:
        tickpub.connect(url, socket_connect_timeout=_CONNECT_TIMEOUT).close()
    except (tickpub.ConnectionError, tickpub.ServerError) as err:
        raise BenchError(
            f"cannot use the server at {report.redact(url)} ({source}): {err}; {hint}"
        ) from None


def _settings(args: argparse.Namespace) -> Settings:
    base = QUICK if args.quick else FULL
    return Settings(
        budget=args.budget if args.budget is not None else base.budget,
        rounds=args.rounds if args.rounds is not None else base.rounds,
    )


def _check_outputs(args: argparse.Namespace) -> None:
    if args.json is not None:
        _check_writable(args.json, "--json")
    if args.plot is not None:
        if not plot.plotting_available():
            raise BenchError(
                f"--plot needs matplotlib, which is not installed: {plot.INSTALL_HINT}"
            )
        _check_writable(args.plot, "--plot")


def _server(args: argparse.Namespace) -> tuple[str, RedisServer | None]:
    """The URL to use, and the server started for the run when there is one."""
    if args.url:
        _check_server(args.url, "--url")
        return args.url, None
    if os.environ.get("REDIS_URL"):
        _check_server(os.environ["REDIS_URL"], "REDIS_URL")
        return os.environ["REDIS_URL"], None
    server = start_server(extra_args=_EMBEDDED_SERVER_ARGS)
    return server.url, server


def _environment(url: str, server: RedisServer | None) -> dict[str, Any]:
    try:
        client = redis.Redis.from_url(url)
    except ValueError as err:
        raise BenchError(f"redis-py cannot use {report.redact(url)}: {err}") from None
    try:
        binary = server.binary if server is not None else None
        return report.environment(url, report.server_info(client, binary))
    finally:
        client.close()


def _cmd_bench(args: argparse.Namespace) -> int:
    start = time.monotonic()
    settings = _settings(args)
    paths = with_baselines(select_paths(args.path))
    subscribers = SUBSCRIBER_MODES if args.subscriber == "both" else (args.subscriber,)
    steps = plan(select_payloads(args.payload), paths, subscribers)
    _check_outputs(args)

    url, server = _server(args)
    progress = Progress(len(steps))
    try:
        env = _environment(url, server)
        results = run(url, steps, settings, lambda i, s: progress.step(i, s.label))
    except (OSError, redis.ConnectionError, redis.TimeoutError) as err:
        raise BenchError(
            f"lost the server at {report.redact(url)} during the run: {err}"
        ) from None
    finally:
        progress.close()
        if server is not None:
            server.stop()

    command = _command_line(args)
    elapsed = time.monotonic() - start
    print(report.format_report(results, env, command, elapsed), flush=True)
    try:
        if args.json is not None:
            document = report.results_document(results, env, command, settings, elapsed)
            report.write_json(args.json, document)
        if args.plot is not None:
            plot.write_plot(args.plot, results, report.machine_line(env))
    except OSError as err:
        raise BenchError(f"cannot write the results: {err}") from None

    if results.failed:
        raise BenchError(
            f"{len(results.failed)} measurement(s) failed; see the FAILED lines above"
        )
    return 0
