/*
 * The simulated radio of the Node host: put access points on a SimulatedAir,
 * give a SimulatedRadio to createNodeDevice({ radio }), script faults on the
 * access points, read their event logs.
 */
export { SimulatedAir, type SimulatedAirOptions } from "./air";
export {
  SimulatedAccessPoint, type AccessPointConfig, type AccessPointEvent, type AccessPointFaults, type InternetMode, type RadiusClientConfig,
} from "./access-point";
export { SimulatedRadio, type RadioEvent, type SimulatedRadioOptions } from "./radio";
export { EapPeer, type EapPeerCredentials, type EapPeerStep } from "./eap-peer";
