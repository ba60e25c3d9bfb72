/*
 * Where a temporary device's temporary secret comes from (temporarySecretPort),
 * for the Node side and the tests: the code is a section of manager.ts (one
 * module in the firmware: each module carries its own import, export and name
 * tables in the release bytecode). Not in the firmware manifest.
 */
export { temporarySecretPort } from "./manager";
