/*
 * Local onboarding through the connection manager (test/support/onboarding-scenarios.ts,
 * the same scenarios test/xs-core.test.ts runs inside XS): started by the manager after
 * onboardAfterMs with no network, the hand-off stored in the nets record, JOINED and
 * FAILED told to the owner, never while ONLINE unless startOnboarding() asks. Manual time.
 */
import { nobleDigest } from "../modules/noble-digest";
import { ONBOARDING_SCENARIOS } from "./support/onboarding-scenarios";

describe("onboarding through the manager (portable scenarios)", () => {
  for (const [name, run] of Object.entries(ONBOARDING_SCENARIOS)) it(name, () => void run(nobleDigest));
});
