"""The ``vistack`` command line: serve and inspect distributions, ingest, search, ask and chat."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from vistack.api import ConfigError
from vistack.client import VistackAPIError

console = Console()
err_console = Console(stderr=True)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from vistack.config import load_distribution
    from vistack.logging_setup import configure_logging
    from vistack.server.app import create_app

    # Every log line (uvicorn's too: log_config=None lets them propagate to the root logger) in one format,
    # with the request id; the access log is vistack.access (one line per request, with its duration).
    configure_logging(args.log_level, args.log_format)
    if not args.access_log:
        logging.getLogger("vistack.access").setLevel(logging.WARNING)
    config = load_distribution(args.distribution)
    if args.port is not None:
        config.server.port = args.port
    if args.host is not None:
        config.server.host = args.host
    app = create_app(config)
    url = f"http://{config.server.host}:{config.server.port}"
    if args.log_format == "json":
        logging.getLogger("vistack.cli").info(
            "serving distribution %s (%s) on %s", config.distro_name, config.source, url,
            extra={"distribution": config.distro_name, "url": url, "state_dir": str(config.storage.state_dir)},
        )
    else:
        err_console.print(
            f"[bold]vistack[/bold] serving distribution [cyan]{config.distro_name}[/cyan] "
            f"({config.source}) on {url}  state: {config.storage.state_dir}"
        )
    uvicorn.run(app, host=config.server.host, port=config.server.port, log_level=args.log_level,
                log_config=None, access_log=False, timeout_keep_alive=config.server.keep_alive_s)
    return 0


def _distributions_list(args: argparse.Namespace) -> int:
    import yaml

    from vistack.config import packaged_distributions

    table = Table(title="Packaged distributions")
    table.add_column("name", style="cyan")
    table.add_column("apis")
    table.add_column("providers")
    for name, path in sorted(packaged_distributions().items()):
        raw = yaml.safe_load(path.read_text()) or {}
        providers = [p.get("provider_type", "") for entries in (raw.get("providers") or {}).values() for p in entries or []]
        table.add_row(name, ", ".join(raw.get("apis") or []), "\n".join(providers))
    console.print(table)
    return 0


def _distributions_show(args: argparse.Namespace) -> int:
    from vistack.config import load_distribution, resolve_distribution

    path = resolve_distribution(args.name)
    if args.resolved:
        import yaml

        config = load_distribution(path)
        text = yaml.safe_dump(config.model_dump(mode="json", exclude_none=True), sort_keys=False)
    else:
        text = path.read_text()
    console.print(Syntax(text, "yaml", word_wrap=True))
    return 0


def _ingest(args: argparse.Namespace) -> int:
    import asyncio

    from vistack.cli_ingest import ingest

    return asyncio.run(ingest(args.paths, args.store, args.server, args.distribution, args.timeout))


def _search(args: argparse.Namespace) -> int:
    import asyncio

    from vistack.cli_ingest import search

    return asyncio.run(search(args.store, args.query, args.server, args.distribution, args.k, args.mode))


def _ask(args: argparse.Namespace) -> int:
    import asyncio

    from vistack.cli_agent import ask

    return asyncio.run(ask(args))


def _chat(args: argparse.Namespace) -> int:
    import asyncio

    from vistack.cli_agent import chat

    try:
        return asyncio.run(chat(args))
    except KeyboardInterrupt:
        return 130


def _shields_list(args: argparse.Namespace) -> int:
    import asyncio

    from vistack.cli_safety import shields_list

    return asyncio.run(shields_list(args.server, args.distribution))


def _moderate(args: argparse.Namespace) -> int:
    import asyncio

    from vistack.cli_safety import moderate

    return asyncio.run(moderate(args.text, args.image, args.shield, args.server, args.distribution))


def _add_answer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strategy", choices=["top1", "stitch", "per_page", "text"], default=None,
                   help="how page images reach the vision model [default: the server's]")
    p.add_argument("--pages", type=int, default=None, help="pages to show the model (stitch, per_page)")
    p.add_argument("--model", default=None, help="model id [default: the server's first vision llm]")
    p.add_argument("--max-tokens", type=int, default=None, help="cap on the answer's tokens")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for each request")
    _add_target(p)


def _add_target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", default=os.environ.get("VISTACK_SERVER"),
                   help="URL of a running server; without it the distribution runs in-process")
    p.add_argument("--distribution", "-d", default=os.environ.get("VISTACK_DISTRIBUTION", "local"),
                   help="distribution for in-process mode [default: local]")


def _log_format_default() -> str:
    value = os.environ.get("VISTACK_LOG_FORMAT", "text").strip().lower()
    return value if value in ("text", "json") else "text"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vistack", description="Self-hosted visual document intelligence (Llama Stack-compatible).")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the HTTP server for a distribution")
    serve.add_argument("--distribution", "-d", default=os.environ.get("VISTACK_DISTRIBUTION", "local"),
                       help="packaged name (local, remote-vllm) or path to a YAML file [default: local]")
    serve.add_argument("--port", type=int, default=None, help="port [default: the distribution's, 8321]")
    serve.add_argument("--host", default=None, help="bind address [default: the distribution's, 127.0.0.1]")
    serve.add_argument("--log-level", default=os.environ.get("VISTACK_LOG_LEVEL", "info"),
                       choices=["critical", "error", "warning", "info", "debug"])
    serve.add_argument("--log-format", choices=["text", "json"], default=_log_format_default(),
                       help="text, or one JSON object per line with request_id and principal "
                            "[default: $VISTACK_LOG_FORMAT, else text]")
    serve.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True,
                       help="one line per request (method, path, status, duration) on the vistack.access logger")
    serve.set_defaults(func=_serve)

    dists = sub.add_parser("distributions", help="list or show distributions")
    dsub = dists.add_subparsers(dest="dist_command", required=True)
    dlist = dsub.add_parser("list", help="list packaged distributions")
    dlist.set_defaults(func=_distributions_list)
    dshow = dsub.add_parser("show", help="print a distribution's YAML")
    dshow.add_argument("name", help="packaged name or path")
    dshow.add_argument("--resolved", action="store_true", help="show it after env substitution and validation")
    dshow.set_defaults(func=_distributions_show)

    ing = sub.add_parser("ingest", help="upload files or folders into a vector store (created if missing)")
    ing.add_argument("paths", nargs="+", help="files or directories (searched recursively)")
    ing.add_argument("--store", required=True, help="vector store name or id")
    ing.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for ingestion")
    _add_target(ing)
    ing.set_defaults(func=_ingest)

    srch = sub.add_parser("search", help="search a vector store; prints ranked pages")
    srch.add_argument("query")
    srch.add_argument("--store", required=True, help="vector store name or id")
    srch.add_argument("-k", type=int, default=10, help="number of results")
    srch.add_argument("--mode", choices=["hybrid", "vector", "keyword"], default="hybrid")
    _add_target(srch)
    srch.set_defaults(func=_search)

    ask = sub.add_parser("ask", help="answer a question from a vector store's pages; prints the cited pages")
    ask.add_argument("question")
    ask.add_argument("--store", required=True, help="vector store name or id")
    ask.add_argument("--save-pages", metavar="DIR", default=None,
                     help="write the cited page images as DIR/<file>-p<page>.png")
    ask.add_argument("--json", action="store_true", help="print the answer, citations and hits as JSON")
    _add_answer_options(ask)
    ask.set_defaults(func=_ask)

    chat = sub.add_parser("chat", help="interactive conversation about a vector store (reads stdin until EOF)")
    chat.add_argument("--store", default=None, help="vector store name or id [default: no documents]")
    _add_answer_options(chat)
    chat.set_defaults(func=_chat)

    shields = sub.add_parser("shields", help="the server's safety shields")
    ssub = shields.add_subparsers(dest="shields_command", required=True)
    slist = ssub.add_parser("list", help="list shields")
    _add_target(slist)
    slist.set_defaults(func=_shields_list)

    mod = sub.add_parser("moderate", help="check text (and an image) with a shield; exit 3 when flagged")
    mod.add_argument("text")
    mod.add_argument("--image", default=None, help="an image to judge with the text (a vision guard)")
    mod.add_argument("--shield", default=None, help="shield id or model [default: the server's default shield]")
    _add_target(mod)
    mod.set_defaults(func=_moderate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = os.environ.get("VISTACK_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":  # one INFO line per HTTP request (every progress poll) would bury the output
        for name in ("httpx", "httpcore", "openai"):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return args.func(args)
    except ConfigError as e:
        err_console.print(f"[red]configuration error:[/red] {e}", highlight=False)
        return 2
    except VistackAPIError as e:
        err_console.print(f"[red]error {e.status_code}:[/red] {e.message}", highlight=False)
        return 1


if __name__ == "__main__":
    sys.exit(main())
