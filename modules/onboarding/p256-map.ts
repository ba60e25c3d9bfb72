/*
 * The P-256 field arithmetic of the onboarding PAKE (encode_to_curve and the
 * x-only lift) now lives in cpace.ts, one firmware module with its only user.
 * Kept for the Node side's imports; not in the firmware manifest.
 */
export { encodeToP256, liftX } from "./cpace";
