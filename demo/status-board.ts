/*
 * A live status board for the demo: one line per device, redrawn in place on a
 * terminal, or one line per change when the output is a pipe or a file.
 */
import type { ManagerStatus } from "../modules/manager";

const MARK: Record<string, string> = {
  STOPPED: "·",
  SCANNING: "~",
  JOINING: "≈",
  CONNECTING: "…",
  ISSUING: "⇄",
  ONLINE: "✔",
  RETRY_WAIT: "↻",
  AUTH_FAILED: "✖",
};

/** The last state changes, oldest elided: the line stays readable. */
function history(states: string[]): string {
  return states.length <= 6 ? states.join(" → ") : `… → ${states.slice(-5).join(" → ")}`;
}

interface Row {
  id: string;
  status: ManagerStatus;
  since: number;
  history: string[];
}

/** Renders device states for people. */
export class StatusBoard {
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;
  readonly #rows: Row[] = [];
  readonly #events: string[] = [];
  readonly #started = performance.now();
  #drawn = 0;

  constructor(out: NodeJS.WriteStream) {
    this.#out = out;
    this.#tty = Boolean(out.isTTY) && !process.env.CI;
  }

  /** Prints a line above the board (call before the first add). */
  note(text: string): void {
    this.#out.write(`${text}\n`);
  }

  /** Records an event under the board, e.g. an operator's action. */
  event(text: string): void {
    const line = `  ${((performance.now() - this.#started) / 1000).toFixed(2).padStart(6)} s  ${text}`;
    this.#events.push(line);
    if (this.#tty) this.#redraw();
    else this.#out.write(`${line}\n`);
  }

  /** Adds a device row. */
  add(id: string, status: ManagerStatus): void {
    this.#rows.push({ id, status, since: performance.now(), history: [status.state] });
    this.#render(this.#rows[this.#rows.length - 1]);
  }

  /** Records a new status for a device. */
  update(id: string, status: ManagerStatus): void {
    const row = this.#rows.find((r) => r.id === id);
    if (!row) return;
    if (row.history[row.history.length - 1] !== status.state) {
      row.history.push(status.state);
      row.since = performance.now();
    }
    row.status = status;
    this.#render(row);
  }

  /** Leaves the final board on screen. */
  finish(): void {
    if (this.#tty) this.#redraw();
  }

  #line(row: Row): string {
    const s = row.status;
    const elapsed = ((row.since - this.#started) / 1000).toFixed(2).padStart(6);
    const credential = row.history.includes("ISSUING") && s.credential === "permanent" ? "temporary→permanent" : s.credential;
    const failure = s.lastFailure ? `  last failure: ${s.lastFailure.reason}` : "";
    const network = s.network ? ` [${s.network.kind} ${s.network.ssid}]` : "";
    const retry = s.retryInMs !== undefined ? ` (retry in ${(s.retryInMs / 1000).toFixed(1)} s)` : "";
    return `${MARK[s.state] ?? "?"} ${row.id.padEnd(18)} ${credential.padEnd(20)} ${s.state.padEnd(11)}${elapsed} s  ${history(row.history)}${network}${retry}${failure}`;
  }

  #render(row: Row): void {
    if (!this.#tty) {
      this.#out.write(`${this.#line(row)}\n`);
      return;
    }
    this.#redraw();
  }

  #redraw(): void {
    if (this.#drawn > 0) this.#out.write(`\x1b[${this.#drawn}A`);
    for (const row of this.#rows) this.#out.write(`\x1b[2K${this.#line(row)}\n`);
    for (const line of this.#events) this.#out.write(`\x1b[2K${line}\n`);
    this.#drawn = this.#rows.length + this.#events.length;
  }
}
