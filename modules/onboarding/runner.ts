/*
 * The onboarding runner's former home: OnboardingRunner and the OnboardingPort
 * it drives now live in attach.ts (one firmware module with the manager's
 * attachment). Kept for the Node side (tests, simulator host) and the manager's
 * type import; not in the firmware manifest.
 */
export { OnboardingRunner, type OnboardingHost, type OnboardingPort } from "./attach";
