/*
 * The onboarding sub-machine as a pure step (Node side: tests, fuzzing,
 * benches): `onboardingStep(state, event, ctx)` returns the next state, the
 * effects as values and when to tick next. The machine itself is
 * reduceOnboarding in attach.ts (one firmware module with the attachment that
 * runs it, which carries the effects out as the machine decides them); this
 * module only records them. Not in the firmware: no firmware module imports it.
 */
import {
  onboardingWakeAt, reduceOnboarding,
  type OnboardingContext, type OnboardingEvent, type OnboardingState,
} from "./attach";
import type { OnboardNetwork } from "./device-messages";

export {
  DEFAULT_ONBOARDING_TIMES, INITIAL_ONBOARDING, MAX_FAILED_HANDSHAKES, onboardingWakeAt, reduceOnboarding,
  type LocalRequest, type OnboardingContext, type OnboardingEvent, type OnboardingOutput, type OnboardingState, type OnboardingTimes,
} from "./attach";

/** Effects for the host (OnboardingOutput's calls, as values). */
export type OnboardingEffect =
  | { type: "ap-open"; ssid: string }
  | { type: "ap-close" }
  | { type: "respond"; id: number; status: number; body: Uint8Array }
  | { type: "store"; id: number; networks: OnboardNetwork[] }
  | { type: "log"; level: "info" | "warn"; message: string };

/** What one step returns: the next state, the effects, and when to tick next (undefined: no timer). */
export interface OnboardingStep {
  state: OnboardingState;
  effects: OnboardingEffect[];
  wakeAt?: number;
}

/**
 * One step of the onboarding machine.
 * @example
 *   let s = INITIAL_ONBOARDING;
 *   ({ state: s, effects } = onboardingStep(s, { type: "start", asked: true }, ctx));   // [ap-open wcm-lamp-1]
 */
export function onboardingStep(state: OnboardingState, event: OnboardingEvent, ctx: OnboardingContext): OnboardingStep {
  const effects: OnboardingEffect[] = [];
  const next = reduceOnboarding(state, event, ctx, {
    open: (ssid) => effects.push({ type: "ap-open", ssid }),
    close: () => effects.push({ type: "ap-close" }),
    respond: (id, status, body) => effects.push({ type: "respond", id, status, body }),
    store: (id, networks) => effects.push({ type: "store", id, networks }),
    log: (level, message) => effects.push({ type: "log", level, message }),
  });
  return { state: next, effects, wakeAt: onboardingWakeAt(next) };
}
