/*
 * Where a RADIUS request says the device is: the NAS client, the
 * Called-Station-Id ("AA-BB-CC-DD-EE-FF:SSID", RFC 3580 section 3.20) with
 * its SSID, and the Calling-Station-Id (the station's MAC address). Shared by
 * access requests (server.ts) and accounting (accounting.ts).
 */
import { ATTR, attribute, type RadiusPacket } from "./packet";
import { ssidOf, type HotspotPlace } from "./session-store";

/** The place of a request from NAS client `nas`; each text attribute bounded to 253 bytes. */
export function placeOf(packet: RadiusPacket, nas: string): HotspotPlace {
  const text = (type: number) => attribute(packet, type)?.toString("utf8").slice(0, 253);
  const calledStationId = text(ATTR.calledStationId);
  const callingStationId = text(ATTR.callingStationId);
  const ssid = ssidOf(calledStationId);
  return { nas, ...(calledStationId ? { calledStationId } : {}), ...(ssid ? { ssid } : {}), ...(callingStationId ? { callingStationId } : {}) };
}
