/*
 * bench:radius-resume: what TLS session resumption saves per hotspot
 * authentication (issue 14 item 1), full handshake vs resumed, side by side
 * in one run.
 *
 * 1. Round trips (Access-Request/response exchanges) counted by the stock
 *    eapol_test with `-r 3` (one full authentication, three resumed
 *    re-authentications, by session id) for TTLS/PAP and EAP-TLS (EC and RSA
 *    client keys), when eapol_test is installed.
 * 2. Server CPU per authentication: the RADIUS server in this process, the
 *    bench peer as NAS and device, one conversation at a time (so the CPU
 *    measured around each handle() call is the server's alone); full and
 *    resumed authentications alternate, so load changes hit both alike.
 *    Prints median and p90 of the server's CPU ms per authentication and the
 *    ratio, with the load average.
 *
 * Run: npm run bench:radius-resume [-- --rounds 200] (not part of npm test).
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { startCloud } from "../cloud/index";
import { nodeDigest } from "../cloud/node-digest";
import { radiusIdentity, RADIUS_SERVER_NAME } from "../cloud/radius/identity";
import { RadiusServer } from "../cloud/radius/server";
import { deriveHotspotPassword } from "../modules/derive";
import { authenticate, type PeerOptions } from "./radius-peer";
import { percentile, table } from "./table";
import { hasEapolTest } from "./radius-bench";

const NAS_SECRET = "bench-resume-shared-secret";
const argv = process.argv.slice(2);
const rounds = Number(argv[argv.indexOf("--rounds") + 1] ?? 0) || 200;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "wcm-resume-bench-"));
  const cloud = await startCloud({ dataDir: join(dir, "data"), masterKey: Buffer.alloc(32, 7), mqttPort: 0, radiusPort: 0, limits: { login: { perDevice: { burst: 1e6, perSecond: 1e6 } } } });
  try {
    const services = cloud.services;
    await services.addNasClient({ name: "bench-ap", address: "127.0.0.1", secret: NAS_SECRET });
    const secretHex = "11".repeat(32);
    await services.registerSecretDevice({ deviceId: "bench-s1", secretHex });
    await services.createProductCa({ name: "bench" });
    const certs: Record<string, { certificatePem: string; privateKeyPem: string }> = {};
    for (const keyType of ["ec", "rsa"] as const) {
      certs[keyType] = await services.issueDeviceCertificate({ caName: "bench", deviceId: `bench-c-${keyType}`, keyType });
      await services.registerCertificateDevice({ deviceId: `bench-c-${keyType}`, caName: "bench" });
    }
    const password = deriveHotspotPassword(nodeDigest, Buffer.from(secretHex, "hex"), "bench-s1");
    const methods: { name: string; peer: PeerOptions; conf: string }[] = [
      { name: "TTLS/PAP", peer: { nasSecret: NAS_SECRET, method: "ttls", identity: "bench-s1", password, caPem: cloud.serverCaPem, serverName: RADIUS_SERVER_NAME }, conf: "" },
      ...(["ec", "rsa"] as const).map((k) => ({
        name: `EAP-TLS (${k.toUpperCase()} client key)`,
        peer: { nasSecret: NAS_SECRET, method: "tls" as const, identity: `bench-c-${k}`, certPem: certs[k].certificatePem, keyPem: certs[k].privateKeyPem, caPem: cloud.serverCaPem, serverName: RADIUS_SERVER_NAME },
        conf: "",
      })),
    ];
    const caFile = join(dir, "ca.pem");
    writeFileSync(caFile, cloud.serverCaPem);
    // 1. eapol_test -r 3
    const rtRows: string[][] = [];
    if (hasEapolTest()) {
      for (const m of methods) {
        const lines = [`network={`, `  key_mgmt=WPA-EAP`, `  ca_cert="${caFile}"`, `  domain_match="${RADIUS_SERVER_NAME}"`];
        if (m.peer.method === "ttls") lines.push(`  eap=TTLS`, `  identity="${m.peer.identity}"`, `  anonymous_identity="anonymous@wcm"`, `  password="${m.peer.password}"`, `  phase2="auth=PAP"`);
        else {
          writeFileSync(join(dir, "c.pem"), m.peer.certPem!);
          writeFileSync(join(dir, "k.pem"), m.peer.keyPem!, { mode: 0o600 });
          lines.push(`  eap=TLS`, `  identity="${m.peer.identity}"`, `  client_cert="${join(dir, "c.pem")}"`, `  private_key="${join(dir, "k.pem")}"`);
        }
        lines.push("}");
        const conf = join(dir, "e.conf");
        writeFileSync(conf, `${lines.join("\n")}\n`);
        const out = await new Promise<string>((resolve) => execFile("eapol_test", ["-c", conf, "-a", "127.0.0.1", "-p", String(cloud.radiusPort), "-s", NAS_SECRET, "-r3", "-t", "20"], { maxBuffer: 64 << 20 }, (_e, stdout) => resolve(stdout)));
        // round trips per authentication: Access-Requests between the starts of the rounds
        const chunks = out.split(/eapol_test: Triggering EAP reauthentication/);
        const perRound = chunks.map((c) => (c.match(/^Sending RADIUS message to authentication server$/gm) ?? []).length);
        const resumed = [...out.matchAll(/Handshake finished - resumed=(\d)/g)].map((x) => x[1]).join("");
        rtRows.push([m.name, String(perRound[0]), perRound.slice(1).join(" / "), resumed, /MPPE keys OK: 4 {2}mismatch: 0/.test(out) ? "yes" : "NO"]);
      }
    }
    // 2. server CPU per authentication, full vs resumed, alternating
    const radius = cloud.radius!;
    const cpuRows: string[][] = [];
    for (const m of methods) {
      const full: number[] = [];
      const resumed: number[] = [];
      const trips = { full: 0, resumed: 0 };
      let session: Buffer | undefined;
      const transport = async (request: Buffer) => {
        const start = process.cpuUsage();
        const answer = await radius.handle(request, { address: "127.0.0.1", port: 40000 });
        const used = process.cpuUsage(start);
        spent += (used.user + used.system) / 1000;
        return answer;
      };
      let spent = 0;
      for (let i = 0; i < rounds; i++) {
        for (const kind of ["full", "resumed"] as const) {
          spent = 0;
          const result = await authenticate(transport, { ...m.peer, ...(kind === "resumed" && session ? { session } : {}) });
          if (!result.ok || (kind === "resumed") !== Boolean(result.resumed)) throw new Error(`${m.name} ${kind}: ${result.reason ?? `resumed=${result.resumed}`}`);
          if (kind === "full") session = result.session;
          (kind === "full" ? full : resumed).push(spent);
          trips[kind] = result.roundTrips;
        }
      }
      full.sort((a, b) => a - b);
      resumed.sort((a, b) => a - b);
      const f50 = percentile(full, 50);
      const r50 = percentile(resumed, 50);
      cpuRows.push([m.name, `${trips.full} / ${trips.resumed}`, `${f50.toFixed(2)} (p90 ${percentile(full, 90).toFixed(2)})`, `${r50.toFixed(2)} (p90 ${percentile(resumed, 90).toFixed(2)})`, (f50 / r50).toFixed(1)]);
    }
    console.log(`\nbench:radius-resume, ${rounds} full and ${rounds} resumed authentications per method, alternating; load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
    if (rtRows.length) {
      console.log("\nRound trips per authentication, stock eapol_test -r 3 (session id resumption), fragment 1000:");
      console.log(table([["method", "full", "resumed (3 re-auths)", "resumed= per round", "MPPE keys OK"], ...rtRows]));
    } else console.log("\n(eapol_test not installed: round trips by eapol_test skipped)");
    console.log("\nServer CPU per authentication (ms), bench peer, one conversation at a time:");
    console.log(table([["method", "round trips full / resumed", "full: median", "resumed: median", "full / resumed"], ...cpuRows]));
  } finally {
    await cloud.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
