/*
 * The onboarding sub-machine's former home: onboardingStep and its types now
 * live in attach.ts (one firmware module with the attachment that runs it).
 * Kept for the Node side (tests, fuzzing, benches, the Node SoftAP host); no
 * firmware module imports it.
 */
export {
  DEFAULT_ONBOARDING_TIMES, INITIAL_ONBOARDING, MAX_FAILED_HANDSHAKES, onboardingStep,
  type LocalRequest, type OnboardingContext, type OnboardingEffect, type OnboardingEvent, type OnboardingState, type OnboardingStep, type OnboardingTimes,
} from "./attach";
