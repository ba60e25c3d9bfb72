/*
 * Prometheus metrics on the ops listener (issue 9 item 5): logins accepted
 * and refused by reason, live sessions, the login latency histogram, issuance
 * outcomes, pre-auth connections, certificate expiry, registry reads,
 * event-loop lag; and no device id in any label.
 */
import assert from "node:assert/strict";
import { authenticate, type PeerOptions } from "../bench/radius-peer";
import { RADIUS_SERVER_NAME } from "../cloud/radius/identity";
import { deriveHotspotPassword } from "../modules/derive";
import { connectDevice, digest, end, exchange, loginPassword, mustConnect, newSecret, startTestCloud, type TestCloud } from "./cloud-helpers";

/** The value of one sample line (`name{labels} value`), or undefined. */
function sample(text: string, name: string, labels = ""): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ""} `));
  return line === undefined ? undefined : Number(line.split(" ").at(-1));
}

describe("metrics: /metrics on the ops listener (issue 9 item 5)", function () {
  let t: TestCloud;
  before(async () => {
    t = await startTestCloud({ opsPort: 0, radiusPort: 0 });
  });
  after(async () => t?.stop());

  it("metrics_LoginsSessionsIssuanceExpiry_CountedWithoutDeviceIds", async () => {
    const s = newSecret();
    await t.cloud.services.registerSecretDevice({ deviceId: "metric-dev-1", secretHex: s.hex });
    const client = await mustConnect(t.cloud, { id: "metric-dev-1", password: loginPassword("metric-dev-1", s.bytes, "s", 1) });
    const refused = await connectDevice(t.cloud, { id: "metric-dev-1", password: loginPassword("metric-dev-1", newSecret().bytes, "s", 2) });
    assert.ok(refused.error, "a wrong secret is refused");
    const answer = await exchange(client, "metric-dev-1", { v: 1, rid: "m1", op: "issue" });
    const body = await (await fetch(`http://127.0.0.1:${t.cloud.opsPort}/metrics`)).text();
    assert.equal(sample(body, "wcm_mqtt_connects_total", 'outcome="accepted",reason=""'), 1);
    const refusedLine = body.split("\n").find((l) => l.startsWith('wcm_mqtt_connects_total{outcome="refused"'));
    assert.match(refusedLine ?? "", /reason="[A-Z_]+"} 1$/);
    assert.equal(sample(body, "wcm_mqtt_sessions"), 1);
    assert.equal(sample(body, "wcm_login_seconds_count", 'outcome="accepted"'), 1);
    assert.equal(sample(body, "wcm_issuance_total", `op="issue",kind="secret",outcome="${answer.ok ? "ok" : (answer as { reason: string }).reason}"`), 1);
    assert.equal(sample(body, "wcm_mqtt_preauth_connections"), 0);
    assert.equal(sample(body, "wcm_registry_up"), 1);
    const expiry = sample(body, "wcm_certificate_expiry_timestamp_seconds", 'listener="mqtt",subject="localhost"');
    assert.ok(expiry !== undefined && expiry * 1000 > Date.now(), "the MQTT certificate's expiry is in the future");
    assert.ok(sample(body, "wcm_certificate_expiry_timestamp_seconds", 'listener="radius",subject="radius.localhost"'));
    assert.ok(sample(body, "nodejs_eventloop_lag_seconds") !== undefined, "event-loop lag");
    assert.ok(body.includes("wcm_radius_decisions_total"));
    assert.equal(body.includes("metric-dev-1"), false, "no device id in the metrics");
    await end(client);
  });

  it("metrics_RadiusDecisionsByMethodAndReason_RegistryQueriesByOp", async function () {
    this.timeout(120_000);
    const nasSecret = "metrics-nas-secret-0123456789";
    await t.cloud.services.addNasClient({ name: "ap-metrics", address: "127.0.0.1", secret: nasSecret });
    const s = newSecret();
    await t.cloud.services.registerSecretDevice({ deviceId: "metric-hs-1", secretHex: s.hex });
    await t.cloud.services.createProductCa({ name: "metric-ca" });
    const cert = await t.cloud.services.issueDeviceCertificate({ caName: "metric-ca", deviceId: "metric-tls-1", keyType: "ec" });
    await t.cloud.services.registerCertificateDevice({ deviceId: "metric-tls-1", caName: "metric-ca" });
    const radius = (options: Partial<PeerOptions>) => authenticate((request) => t.cloud.radius!.handle(request, { address: "127.0.0.1", port: 41_001 }), {
      nasSecret, method: "ttls", identity: "", caPem: t.cloud.serverCaPem, serverName: RADIUS_SERVER_NAME, callingStationId: "02-00-00-00-00-09", ...options,
    } as PeerOptions);
    assert.equal((await radius({ identity: "metric-hs-1", password: deriveHotspotPassword(digest, s.bytes, "metric-hs-1") })).ok, true, "TTLS accept");
    const wrong = await radius({ identity: "metric-hs-1", password: deriveHotspotPassword(digest, newSecret().bytes, "metric-hs-1") });
    assert.equal(wrong.reason, "BAD_PROOF");
    assert.equal((await radius({ method: "tls", identity: "metric-tls-1", certPem: cert.certificatePem, keyPem: cert.privateKeyPem })).ok, true, "EAP-TLS accept");
    const body = await (await fetch(`http://127.0.0.1:${t.cloud.opsPort}/metrics`)).text();
    assert.equal(sample(body, "wcm_radius_decisions_total", 'decision="accept",method="ttls",reason=""'), 1);
    assert.equal(sample(body, "wcm_radius_decisions_total", 'decision="reject",method="ttls",reason="BAD_PROOF"'), 1);
    assert.equal(sample(body, "wcm_radius_decisions_total", 'decision="accept",method="tls",reason=""'), 1);
    for (const op of ["get", "run", "probe"]) {
      assert.ok((sample(body, "wcm_registry_query_seconds_count", `op="${op}"`) ?? 0) > 0, `registry queries timed: ${op}`);
    }
    assert.ok(body.includes("# TYPE wcm_mqtt_shed_total counter"), "shed connections");
    assert.equal(body.includes("metric-hs-1") || body.includes("metric-tls-1"), false, "no device id in the metrics");
  });
});
