/*
 * Packaging (issue 9 item 7), checked here without a container runtime:
 * the systemd unit passes `systemd-analyze verify` and carries LoadCredential
 * and the hardening options; the Dockerfile is multi-stage, non-root, with a
 * data volume and a healthcheck, and its entry command line, run outside a
 * container on the bundle the image builds (`npm run build:bundle`), inits,
 * serves, passes the image's own HEALTHCHECK command and stops on SIGTERM
 * with exit 0; compose.yaml names the image's config, volume and ports.
 * (No docker daemon or compose plugin here: the image itself is not built.)
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";

const root = fileURLToPath(new URL("..", import.meta.url));
const read = (file: string) => readFileSync(join(root, file), "utf8");

describe("packaging: systemd unit, Dockerfile, compose (issue 9 item 7)", function () {
  this.timeout(180_000);

  it("systemdUnit_VerifiesAndHasCredentialAndHardening", function () {
    const unit = read("deploy/wcm.service");
    for (const line of ["LoadCredential=master-key:/etc/wcm/master-key", "NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=", "SystemCallFilter=@system-service", "User=wcm", "ExecReload=/bin/kill -HUP $MAINPID"]) {
      assert.ok(unit.split("\n").includes(line), `the unit has ${line}`);
    }
    assert.match(read("deploy/wcm.example.yaml"), /masterKeyFile: "\/run\/credentials\/wcm\.service\/master-key"/, "the example config reads the credential the unit loads");
    const which = spawnSync("systemd-analyze", ["--version"], { encoding: "utf8" });
    if (which.error) {
      console.log("      skipped systemd-analyze verify: systemd-analyze is not installed (apt-get install -y systemd)");
      return;
    }
    const verify = spawnSync("systemd-analyze", ["verify", join(root, "deploy/wcm.service")], { encoding: "utf8" });
    const own = `${verify.stdout}${verify.stderr}`.split("\n").filter((l) => l.includes("wcm.service"));
    assert.equal(verify.status, 0, own.join("\n"));
    assert.deepEqual(own, [], "no warning about the unit");
  });

  it("dockerfile_MultiStageNonRootVolumeHealthcheck_EntryCommandWorksOutsideAContainer", async function () {
    const docker = read("Dockerfile");
    const lines = docker.split("\n").filter((l) => !l.startsWith("#"));
    assert.ok(lines.filter((l) => /^FROM /.test(l)).length >= 2, "multi-stage");
    const user = lines.filter((l) => /^USER /.test(l)).at(-1);
    assert.ok(user && !/^USER (root|0)\b/.test(user), "runs as a non-root user");
    assert.ok(lines.some((l) => l === 'VOLUME ["/var/lib/wcm"]'), "a data volume");
    const entry = JSON.parse(/^ENTRYPOINT (.+)$/m.exec(docker)![1]) as string[];
    const cmd = JSON.parse(/^CMD (.+)$/m.exec(docker)![1]) as string[];
    const health = JSON.parse(/HEALTHCHECK [^\n]*\\\n\s+CMD (.+)$/m.exec(docker)![1]) as string[];
    assert.deepEqual([...entry, ...cmd], ["node", "dist/wcm.mjs", "serve"]);
    assert.match(docker, /RUN npm run build:bundle/);

    // the image's /app, outside a container: package.json, node_modules, the bundle
    const app = mkdtempSync(join(tmpdir(), "wcm-image-"));
    try {
      const build = spawnSync("npm", ["run", "-s", "build:bundle", "--", `--outfile=${join(app, "dist/wcm.mjs")}`], { cwd: root, encoding: "utf8", timeout: 150_000 });
      assert.equal(build.status, 0, build.stderr);
      cpSync(join(root, "package.json"), join(app, "package.json"));
      symlinkSync(join(root, "node_modules"), join(app, "node_modules"));
      const config = join(app, "wcm.yaml");
      // the image's config with the ports free for a test
      const image = parseYaml(read("deploy/wcm.container.yaml")) as Record<string, Record<string, unknown>>;
      image.data.dir = join(app, "data");
      for (const section of ["mqtt", "admin", "radius", "ops"]) image[section] = { ...image[section], host: "127.0.0.1", port: 0 };
      delete image.admin.name;
      delete image.admin.tls;
      writeFileSync(config, JSON.stringify(image));
      const env = { ...process.env, WCM_CONFIG: config, WCM_MASTER_KEY: randomBytes(32).toString("hex"), NODE_ENV: "production" };
      const init = spawnSync(entry[0] === "node" ? process.execPath : entry[0], [...entry.slice(1), "init"], { cwd: app, env, encoding: "utf8", timeout: 60_000 });
      assert.equal(init.status, 0, init.stderr);
      const child = spawn(process.execPath, [...entry.slice(1), ...cmd], { cwd: app, env, stdio: ["ignore", "pipe", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      const summary = await new Promise<{ opsPort: number }>((resolve, reject) => {
        let out = "";
        const timer = setTimeout(() => reject(new Error(`no start in 90 s: ${stderr}`)), 90_000);
        child.stdout.on("data", (chunk: Buffer) => {
          out += chunk.toString();
          if (!out.includes("\n")) return;
          clearTimeout(timer);
          resolve(JSON.parse(out.split("\n")[0]));
        });
        void exited.then((code) => reject(new Error(`exited ${code}: ${stderr}`)));
      });
      assert.match(stderr, /listening mqtt mqtts:\/\/127\.0\.0\.1:\d+ cert localhost/);
      // the image's HEALTHCHECK command, against this ops port
      const probe = spawnSync(process.execPath, health.slice(1).map((a) => a.replace("9464", String(summary.opsPort))), { encoding: "utf8", timeout: 30_000 });
      assert.equal(probe.status, 0, `healthcheck: ${probe.stderr}`);
      child.kill("SIGTERM");
      assert.equal(await exited, 0, stderr);
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });

  it("compose_StartsTheImageWithTheConfigVolumeAndPorts", function () {
    const compose = parseYaml(read("compose.yaml")) as { services: { wcm: { volumes: string[]; ports: string[]; environment: Record<string, string>; env_file: string } }; volumes: Record<string, unknown> };
    const wcm = compose.services.wcm;
    assert.ok(wcm.volumes.includes("wcm-data:/var/lib/wcm"));
    assert.ok(wcm.volumes.includes("./deploy/wcm.container.yaml:/etc/wcm/wcm.yaml:ro"));
    assert.equal(wcm.environment.WCM_CONFIG, "/etc/wcm/wcm.yaml");
    assert.ok(wcm.ports.includes("8883:8883/tcp") && wcm.ports.includes("1812:1812/udp"));
    assert.ok(wcm.ports.filter((p) => /:(8080|9464)\//.test(p)).every((p) => p.startsWith("127.0.0.1:")), "admin and ops published on loopback only");
    assert.ok("wcm-data" in compose.volumes);
  });
});
