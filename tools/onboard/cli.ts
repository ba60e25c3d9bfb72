/*
 * `npm run onboard`: the owner's client on the command line (for tests and the
 * manufacturing line's end-of-line check). Joined to the device's SoftAP (or,
 * in the simulator, given its loopback URL), it runs the label-code handshake,
 * shows the scan, hands over the network and waits for JOINED or FAILED.
 *
 *   npm run onboard -- --code 1RVV-WN6H-7BH6-J2 --ssid Home-5G --password-file ./wifi.txt
 *   npm run onboard -- --qr "WCM1:lamp-0001:1RVV-WN6H-7BH6-J2:wcm-lamp-0001" --ssid Home-5G   (password from WCM_WIFI_PASSWORD)
 *   npm run onboard -- --code-file ./code.txt --url http://127.0.0.1:41234 --scan
 *
 * The network password comes from a file or WCM_WIFI_PASSWORD, never argv
 * (argv is visible to every user of the machine). `--code` is accepted as the
 * label shows it; `--code-file` keeps it out of argv too. Exit 0 on JOINED,
 * 1 on FAILED or a refusal (LOCKED, AUTH_FAILED), 2 on bad arguments.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { nobleDigest } from "../../modules/noble-digest";
import { OnboardingClient, OnboardError, type LocalTransport } from "../../modules/onboarding/client";
import { parseLabelQr } from "../../modules/onboarding/label-code";
import { nodeSeal } from "../../hosts/node/node-seal";
import { invokedDirectly } from "../../cloud/invoked-directly";

const USAGE = `usage: npm run onboard -- (--code <label code> | --code-file f | --qr <QR payload>) [--device <id>]
       [--url http://192.168.4.1] (--ssid <network> [--password-file f | WCM_WIFI_PASSWORD] [--priority 0..100] | --scan)
       [--timeout-s 90]`;

/** HTTP to the device's local service with fetch (bounded answers, a per-request timeout). */
export function httpTransport(base: string, timeoutMs = 10_000): LocalTransport {
  return async (method, path, body) => {
    const answer = await fetch(`${base}${path}`, {
      method, signal: AbortSignal.timeout(timeoutMs),
      ...(body ? { body: Buffer.from(body), headers: { "content-type": "text/plain" } } : {}),
    });
    const bytes = new Uint8Array(await answer.arrayBuffer());
    return { status: answer.status, body: bytes.subarray(0, 4096) };
  };
}

class UsageError extends Error {}

/** Runs the command line; returns the exit status. Lines go to `out`, never a secret. */
export async function runOnboard(argv: string[], env: NodeJS.ProcessEnv = process.env, out: (line: string) => void = console.log): Promise<number> {
  const flags = new Map<string, string>();
  try {
    for (let i = 0; i < argv.length; i++) {
      const flag = argv[i];
      if (flag === "--scan") flags.set("scan", "1");
      else if (["--code", "--code-file", "--qr", "--device", "--url", "--ssid", "--password-file", "--priority", "--timeout-s"].includes(flag)) {
        const value = argv[++i];
        if (value === undefined) throw new UsageError(`${flag} needs a value`);
        flags.set(flag.slice(2), value);
      } else throw new UsageError(`unknown option ${flag}`);
    }
    const qr = flags.has("qr") ? parseLabelQr(flags.get("qr")!) : undefined;
    if (flags.has("qr") && !qr) throw new UsageError("--qr is not a wcm label payload (WCM1:...)");
    const code = qr?.code ?? flags.get("code") ?? (flags.has("code-file") ? readFileSync(flags.get("code-file")!, "utf8").trim() : undefined);
    if (!code) throw new UsageError("give --code, --code-file or --qr");
    if (!flags.has("ssid") && !flags.has("scan")) throw new UsageError("give --ssid or --scan");
    const priority = flags.has("priority") ? Number(flags.get("priority")) : 50;
    if (!Number.isInteger(priority) || priority < 0 || priority > 100) throw new UsageError("--priority must be 0..100");
    const timeoutS = flags.has("timeout-s") ? Number(flags.get("timeout-s")) : 90;
    if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new UsageError("--timeout-s must be a positive number");
    let password = "";
    if (flags.has("ssid")) {
      if (flags.has("password-file")) password = readFileSync(flags.get("password-file")!, "utf8").replace(/\r?\n$/, "");
      else if (env.WCM_WIFI_PASSWORD !== undefined) password = env.WCM_WIFI_PASSWORD;
    }
    const client = new OnboardingClient(httpTransport(flags.get("url") ?? "http://192.168.4.1"), {
      digest: nobleDigest, seal: nodeSeal, random: (n) => new Uint8Array(randomBytes(n)),
    });
    const info = await client.info();
    const deviceId = qr?.deviceId ?? flags.get("device") ?? info.id;
    if (info.id !== deviceId) out(`warning: the SoftAP says it is ${info.id}, the label says ${deviceId}; the handshake decides`);
    if (info.locked) out(`device ${info.id} is locked after too many failed attempts: press its button or power-cycle it`);
    await client.authenticate(deviceId, code);
    out(`device ${deviceId}: label code accepted (${info.pake})`);
    const scan = await client.scan();
    out(`heard: ${scan.map((n) => `${n.ssid} (${n.security}, ${n.rssi} dBm)`).join(", ") || "nothing"}`);
    if (!flags.has("ssid")) return 0;
    const ssid = flags.get("ssid")!;
    await client.sendNetworks([{ ssid, password, priority }]);
    out(`handed over ${ssid}; waiting for the device to join`);
    const intervalMs = 500;
    const result = await client.waitForResult((ms) => new Promise((resolve) => setTimeout(resolve, ms)), Math.ceil((timeoutS * 1000) / intervalMs), intervalMs);
    out(result.state === "JOINED" ? `JOINED ${result.ssid}` : `FAILED ${result.ssid}: ${result.reason ?? "unknown"}`);
    return result.state === "JOINED" ? 0 : 1;
  } catch (error) {
    if (error instanceof UsageError) {
      out(`${error.message}\n${USAGE}`);
      return 2;
    }
    if (error instanceof OnboardError) {
      out(error.code === "LOCKED" ? "LOCKED: too many failed attempts; press the device's button or power-cycle it" : `${error.code}: ${error.message.replace(/^[A-Z_]+: /, "")}`);
      return 1;
    }
    out(`error: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

if (invokedDirectly(import.meta.url)) {
  runOnboard(process.argv.slice(2)).then((code) => process.exit(code));
}
