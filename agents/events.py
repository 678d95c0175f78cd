"""The event stream of one response: it owns the response being built and the sequence numbers.

Every event the agent emits goes through :class:`ResponseEvents`, which
numbers it (0, 1, 2, ... with no gaps) and keeps ``response.output`` in step
with the ``output_item.added/done`` events, so the final response and the
stream can never disagree. :class:`MessageWriter` streams one assistant
message (added, content part, text deltas, annotations, done) in OpenAI's order.
"""

from __future__ import annotations

from typing import Any

from vistack.api.response_events import (
    AnnotationAddedEvent,
    ArgumentsDeltaEvent,
    ArgumentsDoneEvent,
    ContentPartEvent,
    ItemProgressEvent,
    OutputItemEvent,
    OutputTextDeltaEvent,
    OutputTextDoneEvent,
    RefusalDeltaEvent,
    RefusalDoneEvent,
    ResponseEvent,
    ResponseLifecycleEvent,
)
from vistack.api.responses import MessageItem, OutputText, Refusal, ResponseObject, TokenLogprob, new_item_id


class ResponseEvents:
    def __init__(self, response: ResponseObject) -> None:
        self.response = response
        self._next = 0

    def _numbered(self, event: ResponseEvent) -> ResponseEvent:
        event.sequence_number = self._next
        self._next += 1
        return event

    def lifecycle(self, kind: str) -> ResponseEvent:
        """``response.created`` / ``in_progress`` / ``completed`` / ``incomplete`` / ``failed`` with a snapshot."""
        snapshot = self.response.model_copy(deep=True)
        return self._numbered(ResponseLifecycleEvent(type=f"response.{kind}", response=snapshot))  # type: ignore[arg-type]

    def item_added(self, item: Any) -> tuple[int, ResponseEvent]:
        self.response.output.append(item)
        index = len(self.response.output) - 1
        event = OutputItemEvent(type="response.output_item.added", response_id=self.response.id, output_index=index,
                                item=item.model_copy(deep=True))
        return index, self._numbered(event)

    def item_done(self, index: int, item: Any) -> ResponseEvent:
        self.response.output[index] = item
        event = OutputItemEvent(type="response.output_item.done", response_id=self.response.id, output_index=index,
                                item=item.model_copy(deep=True))
        return self._numbered(event)

    def progress(self, kind: str, index: int, item_id: str) -> ResponseEvent:
        """``response.file_search_call.searching``, ``response.mcp_call.in_progress``, ..."""
        return self._numbered(ItemProgressEvent(type=f"response.{kind}", item_id=item_id, output_index=index))  # type: ignore[arg-type]

    def arguments(self, kind: str, index: int, item_id: str, arguments: str, name: str) -> list[ResponseEvent]:
        """The arguments of a function or MCP call: one delta with the whole JSON, then done."""
        prefix = "response.function_call_arguments" if kind == "function" else "response.mcp_call.arguments"
        return [
            self._numbered(ArgumentsDeltaEvent(type=f"{prefix}.delta", item_id=item_id, output_index=index,  # type: ignore[arg-type]
                                               delta=arguments)),
            self._numbered(ArgumentsDoneEvent(type=f"{prefix}.done", item_id=item_id, output_index=index,  # type: ignore[arg-type]
                                              arguments=arguments, name=name)),
        ]

    def message(self, hold: bool = False) -> MessageWriter:
        return MessageWriter(self, hold)


class MessageWriter:
    """Streams one assistant message with a single ``output_text`` part (and a ``refusal`` part when a guard
    replaces it).

    With ``hold`` set (output guardrails), text is collected but no delta is emitted until ``release``:
    nothing reaches the client before a shield has passed it.
    """

    def __init__(self, events: ResponseEvents, hold: bool = False) -> None:
        self.events = events
        self.item = MessageItem(id=new_item_id("msg"), role="assistant", status="in_progress", content=[])
        self.index = -1
        self.text = ""
        self.logprobs: list[TokenLogprob] = []  # of the whole text, when the request asked for them
        self.started = False
        self.hold = hold
        self.released = ""  # text the client has seen
        self._pending: list[tuple[str, list[TokenLogprob]]] = []

    @property
    def pending_chars(self) -> int:
        return sum(len(t) for t, _ in self._pending)

    def release(self) -> list[ResponseEvent]:
        """Emit the held text (it passed the output check)."""
        out: list[ResponseEvent] = []
        pending, self._pending = self._pending, []
        for text, logprobs in pending:
            out += self._emit(text, logprobs)
        return out

    def start(self) -> list[ResponseEvent]:
        self.started = True
        self.index, added = self.events.item_added(self.item.model_copy(deep=True))
        part = ContentPartEvent(type="response.content_part.added", response_id=self.events.response.id,
                                item_id=self.item.id or "", output_index=self.index, content_index=0,
                                part=OutputText(text=""))
        return [added, self.events._numbered(part)]

    def delta(self, text: str, logprobs: list[TokenLogprob] | None = None) -> list[ResponseEvent]:
        if not text:
            return []
        self.text += text
        self.logprobs.extend(logprobs or [])
        if self.hold:
            self._pending.append((text, list(logprobs or [])))
            return []
        return self._emit(text, logprobs)

    def _emit(self, text: str, logprobs: list[TokenLogprob] | None) -> list[ResponseEvent]:
        out = [] if self.started else self.start()
        self.released += text
        out.append(self.events._numbered(OutputTextDeltaEvent(
            item_id=self.item.id or "", output_index=self.index, content_index=0, delta=text,
            logprobs=list(logprobs or []))))
        return out

    def refuse(self, refusal: str) -> list[ResponseEvent]:
        """End the message with a refusal instead of the held text.

        What was already released (window-checked streaming) stays as the ``output_text`` part, closed, and the
        refusal follows as a second part; otherwise the refusal is the message's only part.
        """
        self._pending = []
        out: list[ResponseEvent] = []
        item_id = self.item.id or ""
        rid = self.events.response.id
        parts: list[Any] = []
        if self.started:
            part = OutputText(text=self.released)
            out.append(self.events._numbered(OutputTextDoneEvent(
                item_id=item_id, output_index=self.index, content_index=0, text=self.released)))
            out.append(self.events._numbered(ContentPartEvent(
                type="response.content_part.done", response_id=rid, item_id=item_id, output_index=self.index,
                content_index=0, part=part)))
            parts.append(part)
        else:
            self.started = True
            self.index, added = self.events.item_added(self.item.model_copy(deep=True))
            out.append(added)
        index = len(parts)
        out.append(self.events._numbered(ContentPartEvent(
            type="response.content_part.added", response_id=rid, item_id=item_id, output_index=self.index,
            content_index=index, part=Refusal(refusal=""))))
        out.append(self.events._numbered(RefusalDeltaEvent(item_id=item_id, output_index=self.index,
                                                           content_index=index, delta=refusal)))
        out.append(self.events._numbered(RefusalDoneEvent(item_id=item_id, output_index=self.index,
                                                          content_index=index, refusal=refusal)))
        out.append(self.events._numbered(ContentPartEvent(
            type="response.content_part.done", response_id=rid, item_id=item_id, output_index=self.index,
            content_index=index, part=Refusal(refusal=refusal))))
        self.text = self.released
        self.item = self.item.model_copy(update={"content": [*parts, Refusal(refusal=refusal)], "status": "completed"})
        out.append(self.events.item_done(self.index, self.item))
        return out

    def finish(self, annotations: list[Any] | None = None, status: str = "completed") -> list[ResponseEvent]:
        out = self.release()
        out += [] if self.started else self.start()
        annotations = annotations or []
        item_id = self.item.id or ""
        for i, annotation in enumerate(annotations):
            out.append(self.events._numbered(AnnotationAddedEvent(
                item_id=item_id, output_index=self.index, content_index=0, annotation_index=i, annotation=annotation)))
        out.append(self.events._numbered(OutputTextDoneEvent(
            item_id=item_id, output_index=self.index, content_index=0, text=self.text, logprobs=self.logprobs)))
        # Llama Stack's content_part.done carries no logprobs; the message item carries them all.
        part = OutputText(text=self.text, annotations=annotations)
        out.append(self.events._numbered(ContentPartEvent(
            type="response.content_part.done", response_id=self.events.response.id, item_id=item_id,
            output_index=self.index, content_index=0, part=part)))
        final = part.model_copy(update={"logprobs": list(self.logprobs)})
        self.item = self.item.model_copy(update={"content": [final], "status": status})
        out.append(self.events.item_done(self.index, self.item))
        return out
