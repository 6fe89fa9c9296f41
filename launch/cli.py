"""The `ruang` command: one entry point, a subcommand per role.

ruang demo                         embedded broker + cloud + edge + simulated floor
ruang cloud serve                  the cloud API and MQTT ingestion
ruang edge run --config FILE       the edge agent on a Raspberry Pi
ruang edge doctor --config FILE    technician checks: PASS/WARN/FAIL with what to do
ruang edge status --config FILE    what the running agent reports about itself
ruang sim deskunits --count N      simulated desk units on pseudo-terminals
ruang contract schema              the MQTT payload schemas as JSON
ruang keys generate --dir DIR      a cloud key set to give every replica (production)
ruang contract asyncapi            the MQTT contract as AsyncAPI 3.0 YAML (docs/asyncapi.yaml)
ruang brick export SITE            a site's building model as Brick Schema RDF/Turtle
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from ruang import __version__
from ruang.logs import setup_logging

# Allocations between young-generation collections in a serving cloud (default 700):
# a request allocates a few thousand objects, most gone when it ends.
GC_GEN0_THRESHOLD = 50_000


def _loop_factory(fast: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop for the cloud server when installed (the `cloud` extra brings it): its
    loop and transports in C roughly halve the per-request cost of the event loop
    itself (docs/performance.md); anything else keeps asyncio's loop."""
    if not fast:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _run(coro: Coroutine[Any, Any, None], *, fast_loop: bool = False) -> int:
    """Runs one coroutine in one loop; SIGINT and SIGTERM stop it cleanly."""

    async def main() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await coro
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    try:
        with asyncio.Runner(loop_factory=_loop_factory(fast_loop)) as runner:
            runner.run(main())
    except (asyncio.CancelledError, KeyboardInterrupt):
        pass
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from launch.demo import run_demo

    return _run(
        run_demo(
            desks=args.desks, speed=args.speed, http_port=args.port, data_dir=Path(args.data_dir)
        )
    )


def _cmd_cloud_serve(args: argparse.Namespace) -> int:
    from cloud.keys import MissingKey, require_keys
    from cloud.runtime.roles import RoleRefused, check_role
    from cloud.settings import CloudSettings

    overrides: dict[str, Any] = {}
    if args.port:
        overrides["http_port"] = args.port
    if args.host:
        overrides["http_host"] = args.host
    if args.role:
        overrides["role"] = args.role
    if args.worker is not None:
        overrides["worker_id"] = args.worker
    settings = CloudSettings(**overrides)
    try:
        check_role(settings)  # before anything opens the database
        # The app checks again at start-up; here a missing key is one clear message.
        require_keys(settings)
    except (RoleRefused, MissingKey) as exc:
        print(f"ruang cloud serve: {exc}", file=sys.stderr)
        return 2
    return _run(_serve_tuned(settings), fast_loop=True)


async def _serve_tuned(settings: Any) -> None:
    """`serve` with the garbage collector set for a long-running server: everything
    loaded at start-up (modules, routes, compiled statements) is frozen out of the
    collector's scans, and young collections run less often. Full collections over
    that heap were the stalls behind the booking p99 (docs/performance.md)."""
    import gc

    from launch.webapp import serve

    ready = asyncio.Event()
    served = asyncio.ensure_future(serve(settings, ready=ready))
    waiting = asyncio.ensure_future(ready.wait())
    try:
        await asyncio.wait({served, waiting}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # stopped while starting: stop the server with us
        served.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await served
        raise
    finally:
        waiting.cancel()
    if ready.is_set():
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
    await served


def _cmd_db_migrate(args: argparse.Namespace) -> int:
    from cloud.runtime.startup import prepare_database
    from cloud.settings import CloudSettings

    asyncio.run(prepare_database(CloudSettings()))
    print("ruang db migrate: the schema is at head")
    return 0


def _cmd_db_backup(args: argparse.Namespace) -> int:
    from cloud.db.backup import backup

    return _db_file_command("backup", backup, Path(args.output), f"written to {args.output}")


def _cmd_db_restore(args: argparse.Namespace) -> int:
    from cloud.db.backup import restore

    return _db_file_command("restore", restore, Path(args.source), f"{args.source} restored")


def _db_file_command(
    name: str, step: Callable[[str, Path], Coroutine[Any, Any, None]], file: Path, done: str
) -> int:
    """Runs a backup or restore step on RUANG_DATABASE_URL; its refusal is one line, exit 2."""
    from cloud.db.backup import BackupError
    from cloud.settings import CloudSettings

    try:
        asyncio.run(step(CloudSettings().database_url, file))
    except BackupError as exc:
        print(f"ruang db {name}: {exc}", file=sys.stderr)
        return 2
    print(f"ruang db {name}: {done}")
    return 0


def _cmd_edge_run(args: argparse.Namespace) -> int:
    from edge.main import run
    from edge.remote_config import RESTART_EXIT_CODE, RestartRequested
    from edge.settings import ConfigError

    try:
        return _run(run(Path(args.config) if args.config else None))
    except ConfigError as exc:
        print(f"ruang edge: {exc}", file=sys.stderr)
        return 2
    except RestartRequested:
        # systemd (Restart=always) starts the agent again, on the new remote config.
        return RESTART_EXIT_CODE


def _cmd_edge_doctor(args: argparse.Namespace) -> int:
    from edge.doctor import run_doctor

    return asyncio.run(run_doctor(Path(args.config) if args.config else None, cloud_url=args.cloud))


def _cmd_edge_status(args: argparse.Namespace) -> int:
    from edge.status import show_status

    return show_status(Path(args.config) if args.config else None)


def _cmd_edge_enroll(args: argparse.Namespace) -> int:
    from edge.enroll import EnrolError, enroll

    try:
        result = asyncio.run(
            enroll(args.cloud, args.token, Path(args.config), Path(args.env),
                   Path(args.state_dir), args.force)
        )  # fmt: skip
    except EnrolError as exc:
        print(f"ruang edge enroll: {exc}", file=sys.stderr)
        return 2
    print(f"enrolled as {result.node_id}; config in {result.config_path}")
    return 0


def _cmd_edge_devices(args: argparse.Namespace) -> int:
    from edge.discovery import devices_report, format_report

    rows = asyncio.run(devices_report(args.ports, probe_ports=args.probe, timeout=args.timeout))
    print(format_report(rows))
    return 0


def _cmd_sim_deskunits(args: argparse.Namespace) -> int:
    from simulators.floor import main_deskunits

    return _run(main_deskunits(count=args.count, scenario=args.scenario, speed=args.speed))


def _cmd_keys_generate(args: argparse.Namespace) -> int:
    from cloud.keys import generate_key_set

    try:
        key_set = generate_key_set(Path(args.dir), snapshot_only=args.snapshot_only)
    except (FileExistsError, OSError) as exc:
        print(f"ruang keys generate: {exc}", file=sys.stderr)
        return 2
    print(f"key set written to {key_set.directory} (files 0600); give every cloud replica")
    print(f"the same files and these settings (also in {key_set.env_file}):")
    for name, value in key_set.env.items():
        print(f"  {name}={value}")
    print(f"edge nodes trust {key_set.files['snapshot_public_key']} (snapshot_public_key)")
    return 0


def _cmd_token(args: argparse.Namespace) -> int:
    from cloud.keys import MissingKey
    from cloud.people.auth import mint_dev_token
    from cloud.settings import CloudSettings

    try:
        token = mint_dev_token(
            CloudSettings(),
            args.subject,
            args.role,
            sites=args.site or None,
            name=args.name,
            ttl_s=int(args.ttl_hours * 3600),
        )
    except (ValueError, MissingKey) as exc:
        print(f"ruang token: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def _cmd_contract_schema(args: argparse.Namespace) -> int:
    from ruang.contract import describe

    print(json.dumps(describe(), indent=2))
    return 0


def _write(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def _cmd_contract_asyncapi(args: argparse.Namespace) -> int:
    from ruang.asyncapi import render_yaml

    _write(render_yaml(), args.output)
    return 0


def _cmd_brick_export(args: argparse.Namespace) -> int:
    from cloud.buildings.brick import site_brick
    from cloud.db.engine import make_engine
    from cloud.errors import NotFound
    from cloud.settings import CloudSettings

    settings = CloudSettings()

    async def export() -> str:
        engine = make_engine(settings.database_url)
        try:
            async with engine.connect() as conn:
                return await site_brick(conn, args.site, bucket=settings.influx_bucket)
        finally:
            await engine.dispose()

    try:
        text = asyncio.run(export())
    except NotFound as exc:
        print(f"ruang brick export: {exc}", file=sys.stderr)
        return 2
    _write(text, args.output)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ruang", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"ruang {__version__}")
    parser.add_argument(
        "--log-level", default=None, help="DEBUG, INFO, WARNING (env RUANG_LOG_LEVEL)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the whole system on one machine with a simulated floor")
    demo.add_argument("--desks", type=int, default=24, help="simulated desk units (default 24)")
    demo.add_argument(
        "--speed",
        type=float,
        default=120.0,
        help="scenario clock speed-up: 120 plays a 9-hour office day in 4.5 minutes",
    )
    demo.add_argument("--port", type=int, default=8000, help="HTTP port of the API (0 = any free)")
    demo.add_argument(
        "--data-dir", default="var/demo", help="where the demo keeps its SQLite files"
    )
    demo.set_defaults(func=_cmd_demo)

    cloud = sub.add_parser("cloud", help="cloud service").add_subparsers(
        dest="action", required=True
    )
    serve = cloud.add_parser("serve", help="run the API and MQTT ingestion (settings from RUANG_*)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument(
        "--role", choices=("all", "api", "ingest", "jobs"), default=None,
        help="what this process runs (default RUANG_ROLE, else all); see docs/operations.md",
    )  # fmt: skip
    serve.add_argument(
        "--worker", type=int, default=None,
        help="slot of this process among those of its role (default RUANG_WORKER_ID, else 0)",
    )  # fmt: skip
    serve.set_defaults(func=_cmd_cloud_serve)

    db = sub.add_parser("db", help="the cloud's database (RUANG_DATABASE_URL)").add_subparsers(
        dest="action", required=True
    )
    db.add_parser(
        "migrate", help="migrate the schema to head and apply the layout file, then exit"
    ).set_defaults(func=_cmd_db_migrate)
    backup = db.add_parser("backup", help="write a consistent backup (pg_dump, or SQLite's copy)")
    backup.add_argument("--output", "-o", required=True, help="backup file to write")
    backup.set_defaults(func=_cmd_db_backup)
    restore = db.add_parser("restore", help="restore a backup into a new, empty database")
    restore.add_argument("source", help="backup file made by `ruang db backup`")
    restore.set_defaults(func=_cmd_db_restore)

    edge = sub.add_parser("edge", help="edge agent").add_subparsers(dest="action", required=True)
    run = edge.add_parser("run", help="run the agent with a config file")
    run.add_argument("--config", "-c", default=None, help="YAML or JSON config file")
    run.set_defaults(func=_cmd_edge_run)
    enrol = edge.add_parser("enroll", help="enrol this node with the cloud using a one-time token")
    enrol.add_argument("--cloud", required=True, help="cloud base URL, e.g. https://cloud.example")
    enrol.add_argument("--token", required=True)
    enrol.add_argument("--config", default="/etc/ruang/edge.yaml")
    enrol.add_argument("--env", default="/etc/ruang/edge.env")
    enrol.add_argument("--state-dir", default="/var/lib/ruang")
    enrol.add_argument("--force", action="store_true", help="replace an existing config")
    enrol.set_defaults(func=_cmd_edge_enroll)
    devices = edge.add_parser(
        "devices", help="list serial ports and, with --probe, what answers on them"
    )
    devices.add_argument("ports", nargs="*", help="extra ports to look at (pty paths, socket://)")
    devices.add_argument("--probe", action="store_true", help="ask each port what device it is")
    devices.add_argument("--timeout", type=float, default=1.0, help="seconds per probe")
    devices.set_defaults(func=_cmd_edge_devices)
    doctor = edge.add_parser("doctor", help="check config, devices, broker, clock and disk")
    doctor.add_argument("--config", "-c", default=None, help="YAML or JSON config file")
    doctor.add_argument("--cloud", default=None, help="cloud base URL, to check the clock")
    doctor.set_defaults(func=_cmd_edge_doctor)
    status = edge.add_parser("status", help="what the running agent last reported")
    status.add_argument("--config", "-c", default=None, help="YAML or JSON config file")
    status.set_defaults(func=_cmd_edge_status)

    sim = sub.add_parser("sim", help="simulated hardware").add_subparsers(
        dest="kind", required=True
    )
    desks = sim.add_parser(
        "deskunits", help="desk units on pseudo-terminals; prints DESK PTY lines"
    )
    desks.add_argument("--count", type=int, default=4)
    desks.add_argument(
        "--scenario", default=None, help="scenario YAML/JSON (default: an office day)"
    )
    desks.add_argument("--speed", type=float, default=1.0)
    desks.set_defaults(func=_cmd_sim_deskunits)

    token = sub.add_parser(
        "token", help="mint a development bearer token (signed with the local dev key)"
    )
    token.add_argument("subject", help="the person id the token speaks for")
    token.add_argument(
        "--role", action="append", required=True,
        help="asn, guest, facility_manager, technician, admin or approver (repeatable)",
    )  # fmt: skip
    token.add_argument("--site", action="append", help="site id the role applies to (repeatable)")
    token.add_argument("--name", default=None)
    token.add_argument("--ttl-hours", type=float, default=8.0)
    token.set_defaults(func=_cmd_token)

    keys = sub.add_parser("keys", help="the cloud's keys and secrets").add_subparsers(
        dest="action", required=True
    )
    generate = keys.add_parser(
        "generate", help="write a fresh key set (never overwrites) for every replica"
    )
    generate.add_argument("--dir", required=True, help="directory to write the key files into")
    generate.add_argument(
        "--snapshot-only", action="store_true",
        help="only a new snapshot key pair: the first step of a key rotation",
    )  # fmt: skip
    generate.set_defaults(func=_cmd_keys_generate)

    contract = sub.add_parser("contract", help="the edge<->cloud MQTT contract").add_subparsers(
        dest="action", required=True
    )
    schema = contract.add_parser("schema", help="print the payload JSON schemas")
    schema.set_defaults(func=_cmd_contract_schema)
    asyncapi = contract.add_parser("asyncapi", help="print the contract as AsyncAPI 3.0 YAML")
    asyncapi.add_argument("--output", "-o", default=None, help="write to this file")
    asyncapi.set_defaults(func=_cmd_contract_asyncapi)

    brick = sub.add_parser("brick", help="the building model in Brick Schema").add_subparsers(
        dest="action", required=True
    )
    export = brick.add_parser(
        "export", help="a site's building model as RDF/Turtle (database from RUANG_DATABASE_URL)"
    )
    export.add_argument("site", help="site id")
    export.add_argument("--output", "-o", default=None, help="write to this file")
    export.set_defaults(func=_cmd_brick_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
