/*
 * The two command-line tools (cloud/cli.ts, make-lot) and the configuration
 * file (cloud/config.ts): per-command options and --help, --flag=value,
 * --version, unknown flags refused, missing files as input errors naming the
 * file, secrets refused on argv and taken from files or standard input, one
 * error format (text and --json) with documented exit codes, a missing registry
 * refused, and the configuration's validation with file line numbers.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI_COMMANDS, runCli } from "../cloud/cli";
import { EXIT } from "../cloud/cli-kit";
import { envName, loadConfig, settingAt, settingPaths, startOptionsFromConfig, ConfigError } from "../cloud/config";
import { DEFAULT_CONNECTION_LIMITS, DEFAULT_LOGIN_LIMITS, DEFAULT_REFUSAL_AUDIT } from "../cloud/limits";
import { isCloudError } from "../cloud/errors";
import { runMakeLot } from "../tools/manufacturing/make-lot";

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) } };
}

describe("CLIs: cloud and make-lot (issue 9 item 8) and the configuration file (item 2)", function () {
  let work: string;
  let env: NodeJS.ProcessEnv;
  before(() => {
    work = mkdtempSync(join(tmpdir(), "wcm-cli-"));
    env = { WCM_MASTER_KEY: randomBytes(32).toString("hex"), WCM_DATA: join(work, "data") };
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it("runCli_HelpVersion_ListEveryCommandAndItsOwnOptions", async () => {
    const c = capture();
    assert.equal(await runCli(["--help"], env, c.io), EXIT.OK);
    for (const name of CLI_COMMANDS) assert.ok(c.out[0].includes(`  ${name}`), `--help lists ${name}`);
    assert.equal(await runCli([], env, c.io), EXIT.USAGE, "no command is a usage error");
    assert.equal(await runCli(["device", "network", "--help"], env, c.io), EXIT.OK);
    assert.match(c.out.at(-1)!, /--password-file <file\|->/);
    assert.doesNotMatch(c.out.at(-1)!, /--limit/, "device network's help shows its own options, not device list's");
    assert.equal(await runCli(["--version"], env, c.io), EXIT.OK);
    assert.equal(c.out.at(-1), JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version);
  });

  it("runCli_InitThenCommands_RegistryMissingRefusedAndNothingCreated", async () => {
    const c = capture();
    const typo = join(work, "dta");
    assert.equal(await runCli(["device", "list", "--data", typo], env, c.io), EXIT.USAGE);
    assert.match(c.err.at(-1)!, /^error REGISTRY_MISSING: .*dta holds no registry/);
    assert.throws(() => readFileSync(join(typo, "registry.sqlite")), "a mistyped --data makes no registry");
    assert.equal(await runCli(["init"], env, c.io), EXIT.OK, c.err.join("\n"));
    assert.equal(await runCli(["init"], env, c.io), EXIT.REFUSED, "a second init is refused");
    assert.equal(await runCli(["device", "list", "--limit=5"], env, c.io), EXIT.OK, "--flag=value");
    assert.deepEqual(JSON.parse(c.out.at(-1)!), []);
  });

  it("runCli_UnknownFlagsAndExtraArguments_UsageErrorExit2", async () => {
    const c = capture();
    assert.equal(await runCli(["device", "list", "--bogus"], env, c.io), EXIT.USAGE);
    assert.match(c.err.at(-1)!, /^error USAGE: Unknown option '--bogus' \(run with --help\)$/);
    assert.equal(await runCli(["device", "list", "--ec"], env, c.io), EXIT.USAGE, "cert issue's --ec is not device list's");
    assert.equal(await runCli(["device", "show", "a", "b"], env, c.io), EXIT.USAGE);
    assert.equal(await runCli(["device", "list", "--limit"], env, c.io), EXIT.USAGE, "a value is needed");
    assert.equal(await runCli(["device", "frobnicate"], env, c.io), EXIT.USAGE);
    assert.match(c.err.at(-1)!, /^error USAGE: unknown command device frobnicate/);
  });

  it("runCli_MissingOrUnreadableFile_InputErrorNamingTheFile", async () => {
    const c = capture();
    const absent = join(work, "absent.txt");
    for (const argv of [
      ["device", "add-secret", "f-1", "--secret-file", absent],
      ["hotspot", "set", absent],
      ["import", absent],
      ["import-bundle", absent],
      ["ca", "register", "x", absent],
      ["nas", "add", "ap", "*", "--secret-file", absent],
    ]) {
      assert.equal(await runCli(argv, env, c.io), EXIT.USAGE, argv.join(" "));
      assert.match(c.err.at(-1)!, /^error FILE_UNREADABLE: cannot read the .* file .*absent\.txt: no such file$/, argv.join(" "));
    }
    assert.equal(await runCli(["import", work], env, c.io), EXIT.USAGE);
    assert.match(c.err.at(-1)!, /FILE_UNREADABLE: .*is a directory/);
    assert.equal(c.err.some((l) => l.includes("INTERNAL")), false);
  });

  it("runCli_SecretsOnArgv_RefusedAndNeverEchoed_FileAndStdinAccepted", async () => {
    const c = capture();
    const secret = randomBytes(32).toString("hex");
    for (const argv of [
      ["device", "add-secret", "s-1", "--secret-hex", secret],
      ["device", "add-secret", "s-1", `--secret-hex=${secret}`],
      ["nas", "add", "ap-1", "*", "--secret", secret],
      ["device", "network", "s-1", "--ssid", "Lab", "--password", secret],
    ]) {
      assert.equal(await runCli(argv, env, c.io), EXIT.USAGE, argv.join(" ").replace(secret, "<secret>"));
    }
    assert.equal(await runCli(["device", "add-secret", "s-1", "--secret-file", "-"], env, { ...c.io, stdin: () => Buffer.from(`${secret}\n`) }), EXIT.OK, c.err.at(-1));
    const file = join(work, "nas.secret");
    writeFileSync(file, "nas-shared-secret-0123\n", { mode: 0o600 });
    assert.equal(await runCli(["nas", "add", "ap-1", "*", "--secret-file", file], env, c.io), EXIT.OK, c.err.at(-1));
    const everything = c.out.concat(c.err).join("\n");
    assert.equal(everything.includes(secret), false, "the secret is in no output");
    assert.equal(everything.includes("nas-shared-secret-0123"), false);
  });

  it("runCli_Json_ErrorsOnStdoutWithCodeAndExit", async () => {
    const c = capture();
    assert.equal(await runCli(["device", "show", "nobody", "--json"], env, c.io), EXIT.REFUSED);
    assert.deepEqual(JSON.parse(c.out.at(-1)!), { error: { code: "DEVICE_NOT_FOUND", message: "deviceId: no device nobody", field: "deviceId" }, exit: 1 });
    assert.equal(await runCli(["device", "list", "--bogus", "--json"], env, c.io), EXIT.USAGE);
    assert.equal((JSON.parse(c.out.at(-1)!) as { error: { code: string } }).error.code, "USAGE");
    assert.equal(c.err.length, 0, "--json writes nothing to stderr");
  });

  it("runMakeLot_SameParserAndErrorFormat", async () => {
    const c = capture();
    const out = join(work, "lot");
    assert.equal(await runMakeLot(["--bogus"], {}, c.io), EXIT.USAGE);
    assert.match(c.err.at(-1)!, /^error USAGE: Unknown option '--bogus' \(run with --help\)$/);
    assert.equal(await runMakeLot(["--help"], {}, c.io), EXIT.OK);
    assert.match(c.out.at(-1)!, /--temporary-mode derived\|hardware\|lot-key/);
    assert.equal(await runMakeLot(["--version"], {}, c.io), EXIT.OK);
    assert.match(c.out.at(-1)!, /^\d+\.\d+\.\d+$/);
    assert.equal(await runMakeLot(["--option=secret", "--count=2", "--out", out, "--cloud-ca", join(work, "nope.pem")], {}, c.io), EXIT.USAGE);
    assert.match(c.err.at(-1)!, /^error FILE_UNREADABLE: cannot read the cloud CA file .*nope\.pem: no such file$/);
    assert.equal(await runMakeLot(["--option=secret", "--count=2", "--out", out, "--cloud-host", "mqtt.example.com"], {}, c.io), EXIT.USAGE, "a cloud host without a CA is not dropped silently");
    assert.match(c.err.at(-1)!, /--cloud-host goes into cloud.json, which needs the cloud's CA/);
    assert.equal(await runMakeLot(["--option=certificate", "--count=1", "--out", out, "--ca-name", "x", "--data", join(work, "none"), "--json"], {}, c.io), EXIT.USAGE);
    assert.equal((JSON.parse(c.out.at(-1)!) as { error: { code: string } }).error.code, "REGISTRY_MISSING");
    assert.equal(await runMakeLot(["--option=secret", "--count=2", "--prefix=cli-", `--out=${out}`], {}, c.io), EXIT.OK, c.err.at(-1));
    assert.equal((JSON.parse(c.out.at(-1)!) as { made: number }).made, 2);
  });

  it("loadConfig_ExampleFile_NamesEverySettingAndLoads", () => {
    const file = new URL("../deploy/wcm.example.yaml", import.meta.url).pathname;
    const text = readFileSync(file, "utf8");
    for (const path of settingPaths()) assert.ok(text.includes(envName(path)), `the example documents ${path} (${envName(path)})`);
    const { values } = loadConfig({ file, env: {} });
    const options = startOptionsFromConfig(values);
    assert.equal(options.mqttHost, "0.0.0.0");
    assert.equal(options.radiusPort, 1812);
    assert.equal(options.dataDir, "/var/lib/wcm");
  });

  it("configSchema_EveryAbuseLimit_IsASetting", () => {
    for (const [section, defaults] of Object.entries({ login: DEFAULT_LOGIN_LIMITS, connections: DEFAULT_CONNECTION_LIMITS, refusalAudit: DEFAULT_REFUSAL_AUDIT })) {
      for (const [key, value] of Object.entries(defaults)) {
        const paths = typeof value === "object" ? Object.keys(value as object).map((k) => `limits.${section}.${key}.${k}`) : [`limits.${section}.${key}`];
        for (const path of paths) assert.ok(settingAt(path), `${path} is in CONFIG_SCHEMA (cloud/config.ts) and so in deploy/wcm.example.yaml`);
      }
    }
  });

  it("loadConfig_UnknownKeyWrongTypeDuplicate_EachWithFileLineAndColumn", () => {
    const file = join(work, "bad.yaml");
    writeFileSync(file, "mqtt:\n  port: \"8883\"\n  prot: 1\nlimits:\n  connections:\n    newTotal: { burst: 1.5 }\nlog:\n  level: loud\n");
    const error = (() => {
      try {
        loadConfig({ file, env: { WCM__MQTT__NOPE: "1" } });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(error instanceof ConfigError && isCloudError(error, "CONFIG_INVALID"));
    assert.deepEqual(error.problems, [
      `${file}:2:9: mqtt.port must be an integer 0..65535, not "8883"`,
      `${file}:3:3: unknown key mqtt.prot (mqtt has: host, port, names, tlsCertFile, tlsKeyFile, connectTimeoutMs, maxConnections, tlsSessions)`,
      `${file}:6:24: limits.connections.newTotal.burst must be an integer 1..1000000000, not 1.5`,
      `${file}:8:10: log.level must be one of debug, info, warn, error, not "loud"`,
      "env WCM__MQTT__NOPE: no such setting (names are WCM__SECTION__KEY, e.g. WCM__MQTT__PORT)",
    ]);
    writeFileSync(file, "mqtt:\n  port: 1\n  port: 2\n");
    assert.throws(() => loadConfig({ file, env: {} }), (e) => e instanceof ConfigError && /bad\.yaml:3:3: Map keys must be unique/.test(e.problems[0]));
  });

  it("loadConfig_EnvOverridesFileAndFlagsOverrideEnv", () => {
    const file = join(work, "good.yaml");
    writeFileSync(file, "mqtt:\n  port: 1883\n  maxConnections: 50\nlimits:\n  login:\n    perDevice:\n      burst: 3\n");
    const loaded = loadConfig({ file, env: { WCM__MQTT__MAX_CONNECTIONS: "70", WCM__LIMITS__LOGIN__PER_DEVICE__PER_SECOND: "0.5" }, overrides: { "mqtt.port": 9999 } });
    const options = startOptionsFromConfig({ ...loaded.values, data: { dir: "/d" } });
    assert.equal(options.mqttPort, 9999);
    assert.equal(options.maxConnections, 70);
    assert.deepEqual(options.limits?.login?.perDevice, { burst: 3, perSecond: 0.5 });
    assert.equal(loaded.sources.get("mqtt.maxConnections"), "env WCM__MQTT__MAX_CONNECTIONS");
    assert.equal(loaded.sources.get("limits.login.perDevice.burst"), `${file}:7:14`);
    assert.equal(loaded.sources.get("mqtt.port"), "flag");
  });

  it("runCli_ConfigCheck_PrintsWhatIsInForce_Exit2OnAProblem", async () => {
    const c = capture();
    const dir = join(work, "cfg");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, "wcm.yaml");
    writeFileSync(file, "admin:\n  port: 9443\n");
    assert.equal(await runCli(["config", "check", "--config", file], { WCM__LOG__LEVEL: "debug" }, c.io), EXIT.OK, c.err.at(-1));
    const shown = JSON.parse(c.out.at(-1)!) as { config: { admin: { port: number; name: null }; log: { level: string } } };
    assert.equal(shown.config.admin.port, 9443);
    assert.equal(shown.config.admin.name, null);
    assert.equal(shown.config.log.level, "debug");
    assert.equal(await runCli(["config", "check", "--sources"], { WCM_CONFIG: file }, c.io), EXIT.OK);
    assert.equal((JSON.parse(c.out.at(-1)!) as { settings: Record<string, { from: string }> }).settings["admin.port"].from, `${file}:2:9`);
    writeFileSync(file, "admin:\n  port: -1\n");
    assert.equal(await runCli(["config", "check", "--config", file], {}, c.io), EXIT.USAGE);
    assert.match(c.err.at(-1)!, /^error CONFIG_INVALID: 1 problem in the configuration:\n  .*wcm\.yaml:2:9: admin\.port must be within 0\.\.65535, not -1$/);
    assert.equal(await runCli(["config", "check", "--config", join(dir, "absent.yaml")], {}, c.io), EXIT.USAGE);
    assert.match(c.err.at(-1)!, /^error FILE_UNREADABLE: .*absent\.yaml/);
  });
});
