/*
 * The wall-clock estimate (a lower bound that does not trust the host's clock),
 * for the Node side and the tests: the code is a section of machine.ts (one
 * module in the firmware: each module carries its own import, export and name
 * tables in the release bytecode). Not in the firmware manifest.
 */
export { FLOOR_SAVE_STEP_SECONDS, wallNow, wallObserve, wallStart, type WallState } from "./machine";
