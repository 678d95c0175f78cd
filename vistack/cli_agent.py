"""``vistack ask`` and ``vistack chat``: questions about a vector store's documents.

Both run on :class:`vistack.client.AsyncVistack`, against a server
(``--server``) or the distribution run in-process (``-d``), through
:func:`vistack.cli_ingest.open_target` like ``ingest`` and ``search``.
Answers stream as they are generated (rendered as Markdown on a terminal,
raw text otherwise) and end with the table of cited pages.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown
from rich.table import Table

from vistack.cli_ingest import open_target
from vistack.client import VistackAPIError
from vistack.client.documents import AsyncVistack
from vistack.client.types import Answer, Done, Failed, SearchDone, SearchStarted, StreamEvent, TextDelta

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

CHAT_HELP = "/new starts a new conversation, /exit (or end of input) quits"


@contextlib.asynccontextmanager
async def open_vistack(server: str | None, distribution: str | None, timeout: float) -> AsyncIterator[AsyncVistack]:
    if logging.getLogger().level > logging.DEBUG:  # one INFO line per HTTP request is noise in a conversation
        for name in ("httpx", "httpx2", "openai"):
            logging.getLogger(name).setLevel(logging.WARNING)
    async with open_target(server, distribution) as (base_url, app), \
            AsyncVistack(base_url, app=app, timeout=timeout) as client:
        yield client


def _options(args: Any) -> dict[str, Any]:
    return {"model": args.model, "strategy": args.strategy, "pages": args.pages,
            "max_output_tokens": args.max_tokens}


async def ask(args: Any) -> int:
    async with open_vistack(args.server, args.distribution, args.timeout) as client:
        if args.json:
            answer = await client.ask(args.question, args.store, **_options(args))
            saved = await answer.asave_pages(args.save_pages) if args.save_pages else []
            print(json.dumps({**answer.to_dict(), "saved_pages": [str(p) for p in saved]}, indent=2))
            return 0
        answer = await render_stream(client.ask_stream(args.question, args.store, **_options(args)))
        if answer is None:
            return 1
        pages_table(answer)
        if args.save_pages:
            saved = await answer.asave_pages(args.save_pages)
            console.print(f"saved {len(saved)} page image{'s' * (len(saved) != 1)} to {Path(args.save_pages)}: "
                          + ", ".join(p.name for p in saved))
    return 0


async def chat(args: Any) -> int:
    failures = 0
    async with open_vistack(args.server, args.distribution, args.timeout) as client:
        model = args.model or await client.default_model()
        session = await client.chat(args.store, **{**_options(args), "model": model})
        where = f"store [cyan]{args.store}[/]" if args.store else "no documents"
        console.print(f"[bold]vistack chat[/] with [cyan]{model}[/] on {where}; {CHAT_HELP}")
        _conversation_line(session.id, client.base_url)
        interactive = sys.stdin.isatty()
        while True:
            line = _read_line(interactive)
            if line is None:
                break
            text = line.strip()
            if not text:
                continue
            if text in ("/exit", "/quit"):
                break
            if text == "/new":
                _conversation_line(await session.new(), client.base_url)
                continue
            if text.startswith("/"):
                console.print(f"[yellow]unknown command {text.split()[0]}[/]: {CHAT_HELP}")
                continue
            try:
                answer = await render_stream(session.send_stream(text))
            except VistackAPIError as e:
                err_console.print(f"[red]error {e.status_code}:[/red] {e.message}")
                answer = None
            if answer is None:
                failures += 1
                continue
            pages_table(answer)
    return 1 if failures else 0


def _read_line(interactive: bool) -> str | None:
    """The next line of input, or None at end of input (EOF, Ctrl-D, Ctrl-C at the prompt)."""
    if interactive:
        try:
            return console.input("[bold green]you>[/] ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return None
    line = sys.stdin.readline()
    if not line:
        return None
    if line.strip():  # echo the question, so the transcript reads like a conversation
        console.print(f"[bold green]you>[/] {line.rstrip()}")
    return line


def _conversation_line(conversation_id: str, base_url: str) -> None:
    console.print(f"conversation [cyan]{conversation_id}[/] (history: GET {base_url}/v1/conversations/"
                  f"{conversation_id}/items)", soft_wrap=True)


async def render_stream(events: AsyncIterator[StreamEvent]) -> Answer | None:
    """Print a streamed answer; the final :class:`Answer`, or None when the response failed."""
    text = ""
    live: Live | None = None
    try:
        async for event in events:
            if isinstance(event, SearchStarted):
                console.print(f"[dim]searching: {'; '.join(event.queries)}[/]")
            elif isinstance(event, SearchDone):
                pages = sorted({(h.filename, h.page) for h in event.results}, key=lambda x: (x[0], x[1] or 0))
                console.print(f"[dim]found {len(event.results)} passages on {len(pages)} pages[/]")
            elif isinstance(event, TextDelta):
                text += event.text
                if console.is_terminal:
                    if live is None:
                        live = Live(Markdown(text), console=console, refresh_per_second=12,
                                    vertical_overflow="visible")
                        live.start()
                    live.update(Markdown(text))
                else:
                    console.file.write(event.text)
                    console.file.flush()
            elif isinstance(event, Done):
                _end_text(live, text)
                live = None
                if event.answer.status == "incomplete":
                    console.print(f"[yellow](answer incomplete: {event.answer.incomplete_reason or 'unknown'})[/]")
                return event.answer
            elif isinstance(event, Failed):
                _end_text(live, text)
                live = None
                err_console.print(f"[red]the response failed[/red] ({event.code or 'error'}): {event.message}")
                return None
    finally:
        if live is not None:
            live.stop()
    err_console.print("[red]the answer stream ended early[/red]")
    return None


def _end_text(live: Live | None, text: str) -> None:
    if live is not None:
        live.stop()
    elif text:
        console.file.write("\n")
        console.file.flush()


def pages_table(answer: Answer) -> None:
    if not answer.pages:
        console.print("[dim]no pages cited[/]")
        return
    table = Table(title="cited pages", title_justify="left")
    for col in ("#", "file", "page", "bbox", "page_image_file_id"):
        table.add_column(col, overflow="fold")
    for c in answer.pages:
        table.add_row(str(c.source or ""), c.filename, str(c.page or ""), c.bbox or "", c.page_image_file_id or "")
    console.print(table)
