// Bounded polling: call `tick` until it returns false (nothing left to wait for), the poller is stopped
// (the view was left, another store opened), or `maxMs` has passed. The interval grows from `minMs` to
// `maxIntervalMs` so a long ingestion does not hammer the server.

export class Poller {
  constructor(tick, { minMs = 1000, maxIntervalMs = 5000, maxMs = 15 * 60 * 1000, onGiveUp } = {}) {
    this.tick = tick;
    this.minMs = minMs;
    this.maxIntervalMs = maxIntervalMs;
    this.maxMs = maxMs;
    this.onGiveUp = onGiveUp || (() => {});
    this.timer = null;
    this.generation = 0;
  }

  get running() {
    return this.timer !== null;
  }

  start() {
    if (this.running) return;
    const generation = ++this.generation;
    const started = Date.now();
    let interval = this.minMs;
    const step = async () => {
      let more = false;
      try {
        more = await this.tick();
      } catch (e) {
        // a failed poll (a network blip) is retried at the next interval; a refused sign-in ends it
        more = !(e && e.name === "SignInCancelled");
      }
      if (generation !== this.generation) return;
      if (!more) { this.timer = null; return; }
      if (Date.now() - started > this.maxMs) { this.timer = null; this.onGiveUp(); return; }
      interval = Math.min(Math.round(interval * 1.3), this.maxIntervalMs);
      this.timer = window.setTimeout(step, interval);
    };
    this.timer = window.setTimeout(step, interval);
  }

  stop() {
    this.generation += 1;
    if (this.timer !== null) window.clearTimeout(this.timer);
    this.timer = null;
  }
}
