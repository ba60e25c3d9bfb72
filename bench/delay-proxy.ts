/*
 * A TCP proxy on loopback that delays every chunk by a fixed one-way latency in
 * each direction and counts round trips, as the device sees them: the TCP
 * handshake is the first; after that, one more each time the device sends data
 * after it has received data from the cloud (i.e. each time the device had to
 * wait for the other side before it could go on).
 *
 * Timing model: on a real network the device's connect() completes one RTT
 * after it is called and its first bytes reach the server half an RTT later.
 * Here the connect to the proxy completes at once, so the device's first bytes
 * are held until `opened + RTT + one-way`; everything after that is delayed by
 * exactly one way. Chunks of one direction are queued and released strictly in
 * arrival order by one timer per direction (separate setTimeout calls with
 * fractional delays may fire out of order, which would corrupt the stream).
 */
import net from "node:net";

/** A running proxy. */
export interface DelayProxy {
  port: number;
  /** round trips seen on each connection, in connection order */
  roundTrips(): number[];
  /** number of connections accepted so far */
  connections(): number;
  close(): Promise<void>;
}

type Item = { due: number; chunk?: Buffer; end?: true };

/** An ordered, delayed one-way pipe. */
function delayedPipe(
  from: net.Socket,
  to: net.Socket,
  firstDue: number,
  oneWayMs: number,
  onDeliver: () => void,
): { flushNow(): void } {
  const queue: Item[] = [];
  let lastDue = firstDue;
  let timer: NodeJS.Timeout | undefined;
  const pump = () => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && queue[0].due <= now + 0.5) {
      const item = queue.shift() as Item;
      if (item.end) {
        if (!to.destroyed) to.end();
      } else if (item.chunk && to.writable) {
        to.write(item.chunk);
        onDeliver();
      }
    }
    if (queue.length > 0) timer = setTimeout(pump, Math.max(0, queue[0].due - performance.now()));
  };
  const push = (item: Omit<Item, "due">) => {
    const now = performance.now();
    lastDue = Math.max(now + oneWayMs, lastDue);
    queue.push({ ...item, due: lastDue });
    if (!timer) timer = setTimeout(pump, Math.max(0, queue[0].due - now));
  };
  from.on("data", (chunk: Buffer) => push({ chunk }));
  from.on("end", () => push({ end: true }));
  return {
    flushNow() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      queue.length = 0;
    },
  };
}

/**
 * Starts a proxy to 127.0.0.1:`targetPort` with `oneWayMs` of added delay each way.
 */
export async function startDelayProxy(targetPort: number, oneWayMs: number): Promise<DelayProxy> {
  const trips: number[] = [];
  const sockets = new Set<net.Socket>();
  const pipes = new Set<{ flushNow(): void }>();
  const server = net.createServer((device) => {
    const index = trips.push(1) - 1; // the TCP handshake
    // "down" = the device last received something (the SYN-ACK, to begin with)
    let last: "up" | "down" = "down";
    const cloud = net.connect(targetPort, "127.0.0.1");
    for (const socket of [device, cloud]) {
      sockets.add(socket);
      socket.setNoDelay(true);
      socket.on("error", () => {
        device.destroy();
        cloud.destroy();
      });
      socket.on("close", () => {
        sockets.delete(socket);
        // let data still in flight arrive, then tear the other side down
        setTimeout(() => (socket === device ? cloud : device).destroy(), oneWayMs + 5).unref();
      });
    }
    device.on("data", () => {
      if (last === "down") trips[index]++;
      last = "up";
    });
    const opened = performance.now();
    const up = delayedPipe(device, cloud, opened + 3 * oneWayMs, oneWayMs, () => {});
    const down = delayedPipe(cloud, device, 0, oneWayMs, () => {
      last = "down";
    });
    pipes.add(up);
    pipes.add(down);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    roundTrips: () => trips.slice(),
    connections: () => trips.length,
    close: () =>
      new Promise<void>((resolve) => {
        for (const pipe of pipes) pipe.flushNow();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
