"""``vistack shields list`` and ``vistack moderate``: the server's guards from a terminal.

``moderate`` asks ``/v1/moderations`` (text, the default shield or ``--shield``'s model); with
``--image`` it runs the shield on a user message holding the text and the image
(``/v1/safety/run-shield``), since moderations take text only. Exit status: 0 safe, 3 flagged.
"""

from __future__ import annotations

import base64
import mimetypes
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from vistack.cli_ingest import open_client
from vistack.client import VistackAPIError

console = Console(highlight=False)

FLAGGED_EXIT = 3


async def shields_list(server: str | None, distribution: str | None) -> int:
    async with open_client(server, distribution) as client:
        shields = await client.list_shields()
    if not shields:
        console.print("no shields configured (add a provider under providers.safety and a shield under shields)")
        return 0
    table = Table("shield", "provider", "model / checkpoint", "params")
    for s in shields:
        table.add_row(s["identifier"], s["provider_id"], s.get("provider_resource_id") or "", str(s.get("params") or ""))
    console.print(table)
    return 0


async def moderate(text: str, image: str | None, shield: str | None, server: str | None,
                   distribution: str | None) -> int:
    async with open_client(server, distribution) as client:
        if image is None:
            model = None
            if shield:
                model = _shield(await client.list_shields(), shield).get("provider_resource_id") or shield
            result = (await client.moderate(text, model))["results"][0]
            flagged = bool(result["flagged"])
            details = [name for name, hit in (result.get("categories") or {}).items() if hit]
            message = result.get("user_message")
        else:
            shields = await client.list_shields()
            chosen = _shield(shields, shield) if shield else (shields[0] if shields else None)
            if chosen is None:
                raise VistackAPIError(404, "the server has no shields to run")
            content = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": _data_url(image)}}]
            violation = (await client.run_shield(chosen["identifier"], [{"role": "user", "content": content}]))["violation"]
            flagged = violation is not None
            details = [str((violation or {}).get("metadata", {}).get("violation_type", ""))] if flagged else []
            message = (violation or {}).get("user_message")
    if flagged:
        console.print(f"[red]flagged[/red]: {', '.join(d for d in details if d) or 'unsafe'}")
        if message:
            console.print(f"user message: {message}")
        return FLAGGED_EXIT
    console.print("[green]safe[/green]")
    return 0


def _shield(shields: list[dict[str, Any]], name: str) -> dict[str, Any]:
    for s in shields:
        if name in (s["identifier"], s.get("provider_resource_id")):
            return s
    known = ", ".join(s["identifier"] for s in shields) or "none"
    raise VistackAPIError(404, f"no shield '{name}' on the server; shields: {known}")


def _data_url(path: str) -> str:
    p = Path(path)
    if not p.is_file():
        raise VistackAPIError(400, f"image '{path}' does not exist")
    mime = mimetypes.guess_type(p.name)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(p.read_bytes()).decode()}"
