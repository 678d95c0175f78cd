// Server-sent events from a fetch() body: yields the JSON of every `data:` event.
// Spec: https://html.spec.whatwg.org/multipage/server-sent-events.html (lines end in \n, \r\n or \r;
// an empty line ends an event; several data lines join with \n; lines starting with ":" are comments).

export async function* readSSE(body, signal) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let data = [];
  try {
    while (true) {
      if (signal && signal.aborted) return;
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop(); // an unfinished line waits for more bytes
      for (const line of lines) {
        if (line === "") {
          if (data.length) {
            const event = parseData(data.join("\n"));
            data = [];
            if (event === DONE) return;
            if (event !== null) yield event;
          }
        } else if (line.startsWith("data:")) {
          data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
        } // "event:", "id:", "retry:" and ":" comments are not needed: every event names its own type
      }
    }
    buffer += decoder.decode();
    if (buffer.startsWith("data:")) data.push(buffer.slice(5).trimStart());
    if (data.length) {
      const event = parseData(data.join("\n"));
      if (event !== null && event !== DONE) yield event;
    }
  } finally {
    reader.cancel().catch(() => {}); // stop the download when the reader leaves early (Stop, a new question)
  }
}

const DONE = Symbol("done");

function parseData(text) {
  if (text.trim() === "[DONE]") return DONE;
  try {
    return JSON.parse(text);
  } catch {
    return null; // not JSON: skip it rather than break the whole answer
  }
}
