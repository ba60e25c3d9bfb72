/*
 * A TCP proxy on loopback that delays every chunk by a fixed one-way latency in
 * each direction and counts round trips: a round trip is counted each time data
 * starts flowing from the device again after the cloud has answered (the device
 * initiating TCP counts as the first).
 */
import net from "node:net";

/** A running proxy. */
export interface DelayProxy {
  port: number;
  /** round trips seen on each connection, in connection order */
  roundTrips(): number[];
  close(): Promise<void>;
}

/**
 * Starts a proxy to 127.0.0.1:`targetPort` with `oneWayMs` of added delay each way.
 * Order is preserved: chunks leave in the order they arrived.
 */
export async function startDelayProxy(targetPort: number, oneWayMs: number): Promise<DelayProxy> {
  const trips: number[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((device) => {
    const index = trips.push(1) - 1; // the TCP handshake
    let lastDirection: "up" | "down" = "up";
    const cloud = net.connect(targetPort, "127.0.0.1");
    sockets.add(device);
    sockets.add(cloud);
    device.setNoDelay(true);
    cloud.setNoDelay(true);
    // The device's TCP handshake with the proxy is instant: hold its first bytes
    // one extra round trip so the handshake costs what it would on the network.
    const opened = performance.now();
    const pipe = (from: net.Socket, to: net.Socket, direction: "up" | "down") => {
      let lastDue = direction === "up" ? opened + 2 * oneWayMs : 0;
      from.on("data", (chunk) => {
        if (direction === "up" && lastDirection === "down") trips[index]++;
        lastDirection = direction;
        const now = performance.now();
        lastDue = Math.max(now + oneWayMs, lastDue);
        setTimeout(() => to.writable && to.write(chunk), lastDue - now);
      });
      from.on("end", () => setTimeout(() => to.end(), oneWayMs));
      from.on("error", () => to.destroy());
      from.on("close", () => {
        sockets.delete(from);
        setTimeout(() => to.destroy(), oneWayMs);
      });
    };
    pipe(device, cloud, "up");
    pipe(cloud, device, "down");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    roundTrips: () => trips.slice(),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
