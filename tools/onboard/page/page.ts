/*
 * The reference page's script (bundled by esbuild into page.js: tools/onboard/page-server.ts).
 * Browser only: fetch to the device's local service, crypto.getRandomValues, and the portable
 * client (modules/onboarding/client.ts) with pure-JS P-256 and AES-GCM (a page on the SoftAP's
 * plain http:// origin is no secure context, so WebCrypto's subtle API is not there).
 */
import { jsSeal } from "../../../modules/js-seal";
import { nobleDigest } from "../../../modules/noble-digest";
import { OnboardingClient, OnboardError } from "../../../modules/onboarding/client";

// The few browser APIs used, typed here: the repository's tsconfig has Node's types, not the DOM's.
/* eslint-disable @typescript-eslint/no-explicit-any */
type El = any;
declare const document: { getElementById(id: string): El; querySelector(selector: string): El; createElement(tag: string): El };
declare const location: { search: string };
declare const crypto: { getRandomValues<T extends Uint8Array>(array: T): T };

const params = new URLSearchParams(location.search);
const base = params.get("device") ?? "http://192.168.4.1";
const $ = (id: string): El => document.getElementById(id);
const status = (text: string, kind = "", detail = "") => {
  $("status").textContent = text;
  $("status").className = kind;
  $("detail").textContent = detail;
};

const client = new OnboardingClient(
  async (method, path, body) => {
    const answer = await fetch(`${base}${path}`, { method, ...(body ? { body, headers: { "content-type": "text/plain" } } : {}) });
    return { status: answer.status, body: new Uint8Array(await answer.arrayBuffer()) };
  },
  { digest: nobleDigest, seal: jsSeal, random: (n) => crypto.getRandomValues(new Uint8Array(n)) },
);

function explain(error: unknown): string {
  if (error instanceof OnboardError) {
    if (error.code === "CODE_INVALID") return "That code has a typo: check it against the label.";
    if (error.code === "AUTH_FAILED") return "Wrong setup code, or this is not your device.";
    if (error.code === "LOCKED") return "Too many wrong codes: press the device's button, then try again.";
    return error.message;
  }
  return "Cannot reach the device: is the phone on its Wi-Fi?";
}

async function connect(): Promise<void> {
  $("connect").disabled = true;
  status("Connecting…");
  try {
    const info = await client.info();
    const id = params.get("id") ?? info.id;
    await client.authenticate(id, $("code").value);
    const networks = (await client.scan()).filter((n) => n.security !== "enterprise");
    $("networks").replaceChildren(...networks.map((n, i) => {
      const li = document.createElement("li");
      const label = document.createElement("label");
      const radio = document.createElement("input");
      radio.type = "radio";
      radio.name = "ssid";
      radio.value = n.ssid;
      radio.checked = i === 0;
      label.append(radio, `${n.ssid} `, Object.assign(document.createElement("span"), { className: "muted", textContent: `${n.security === "open" ? "open" : "secured"} · ${n.rssi} dBm` }));
      li.append(label);
      return li;
    }));
    $("device").textContent = `Device ${id}`;
    $("step-code").hidden = true;
    $("step-network").hidden = false;
    status("Connected", "", "pick your network");
  } catch (error) {
    status("Not connected", "error", explain(error));
    $("connect").disabled = false;
  }
}

async function join(): Promise<void> {
  const picked = document.querySelector("input[name=ssid]:checked");
  if (!picked) return status("Pick a network", "error");
  $("join").disabled = true;
  status("Joining…", "", picked.value);
  try {
    await client.sendNetworks([{ ssid: picked.value, password: $("password").value, priority: 50 }]);
    const result = await client.waitForResult((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    if (result.state === "JOINED") status("JOINED", "JOINED", `${result.ssid}: the device is online${result.online ? "" : " soon"}`);
    else status("FAILED", "FAILED", `${result.ssid}: ${result.reason === "INCORRECT-PASSWORD" ? "wrong password" : result.reason ?? ""}`);
  } catch (error) {
    status("FAILED", "error", explain(error));
  }
  $("join").disabled = false;
}

$("softap").textContent = params.get("softap") ?? "wcm-…";
$("connect").addEventListener("click", () => void connect());
$("join").addEventListener("click", () => void join());
