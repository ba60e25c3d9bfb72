/*
 * nextRetryDelay: equal-jitter exponential back-off, its bounds per failure class,
 * the server floor, and clamping of out-of-range inputs; the "busy" class (CONNACK 3):
 * a linearly widening full-jitter window, never the network's exponential growth.
 */
import assert from "node:assert/strict";
import { DEFAULT_BUSY_RETRY, DEFAULT_LOST_RETRY, DEFAULT_RETRY_POLICY, nextRetryDelay, type FailureClass, type RetryPolicy } from "../modules/retry";

const RANDOMS = [0, 1e-9, 0.25, 0.5, 0.75, 0.999999, 0.9999999999];

/** The capped exponential delay for `attempt` (the upper bound of the jittered delay). */
function capped(failure: FailureClass, attempt: number, policy: RetryPolicy = DEFAULT_RETRY_POLICY): number {
  const base = failure === "auth" ? policy.authBaseMs : policy.networkBaseMs;
  const max = failure === "auth" ? policy.authMaxMs : policy.networkMaxMs;
  return Math.min(max, base * 2 ** (Math.max(attempt, 1) - 1));
}

describe("nextRetryDelay", () => {
  it("DocExample_Network1_Half_750", () => {
    assert.equal(nextRetryDelay("network", 1, 0.5), 750);
  });

  it("Defaults", () => {
    assert.deepEqual(DEFAULT_RETRY_POLICY, { networkBaseMs: 1000, networkMaxMs: 120_000, authBaseMs: 60_000, authMaxMs: 3_600_000 });
  });

  for (const failure of ["network", "server", "auth"] as FailureClass[]) {
    it(`Bounds_${failure}_HalfToFullOfCappedExponential`, () => {
      for (let attempt = 1; attempt <= 40; attempt++) {
        const upper = capped(failure, attempt);
        for (const random of RANDOMS) {
          const delay = nextRetryDelay(failure, attempt, random);
          assert.ok(Number.isInteger(delay), `${failure} ${attempt} ${random}: ${delay} not an integer`);
          assert.ok(delay >= upper / 2, `${failure} attempt ${attempt} random ${random}: ${delay} < ${upper / 2}`);
          assert.ok(delay < upper, `${failure} attempt ${attempt} random ${random}: ${delay} >= ${upper}`);
        }
        assert.equal(nextRetryDelay(failure, attempt, 0), upper / 2, "random 0 gives exactly half");
      }
    });

    it(`NonDecreasingInAttempt_${failure}`, () => {
      for (const random of RANDOMS) {
        let previous = 0;
        for (let attempt = 1; attempt <= 40; attempt++) {
          const delay = nextRetryDelay(failure, attempt, random);
          assert.ok(delay >= previous, `attempt ${attempt}: ${delay} < ${previous}`);
          previous = delay;
        }
      }
    });
  }

  it("Network_DoublesFromOneSecond_CapsAtTwoMinutes", () => {
    const expected = [500, 1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000];
    assert.deepEqual(expected.map((_, i) => nextRetryDelay("network", i + 1, 0)), expected);
    assert.equal(nextRetryDelay("network", 100, 0.999999), 119_999);
  });

  it("Auth_DoublesFromOneMinute_CapsAtOneHour", () => {
    const expected = [30_000, 60_000, 120_000, 240_000, 480_000, 960_000, 1_800_000, 1_800_000];
    assert.deepEqual(expected.map((_, i) => nextRetryDelay("auth", i + 1, 0)), expected);
    assert.ok(nextRetryDelay("auth", 1000, 0.999999) < 3_600_000);
  });

  it("Classes_ServerUsesNetworkBounds_AuthIsSlower", () => {
    for (let attempt = 1; attempt <= 12; attempt++) {
      for (const random of RANDOMS) {
        assert.equal(nextRetryDelay("server", attempt, random), nextRetryDelay("network", attempt, random));
        assert.ok(nextRetryDelay("auth", attempt, random) > nextRetryDelay("network", attempt, random));
      }
    }
    // the first auth retry waits at least 30 s, the first network retry at most 1 s
    assert.ok(nextRetryDelay("auth", 1, 0) >= 30_000);
    assert.ok(nextRetryDelay("network", 1, 0.999999) < 1000);
  });

  it("AttemptBelowOne_TreatedAsOne", () => {
    for (const attempt of [0, -1, -1000]) {
      assert.equal(nextRetryDelay("network", attempt, 0.5), nextRetryDelay("network", 1, 0.5));
      assert.equal(nextRetryDelay("auth", attempt, 0.5), nextRetryDelay("auth", 1, 0.5));
    }
  });

  it("HugeAttempt_StaysFiniteAndCapped", () => {
    for (const attempt of [31, 1000, 1e9, Number.MAX_SAFE_INTEGER]) {
      const delay = nextRetryDelay("network", attempt, 0.5);
      assert.ok(Number.isFinite(delay));
      assert.equal(delay, 90_000);
    }
  });

  it("RandomOutOfRange_Clamped", () => {
    assert.equal(nextRetryDelay("network", 1, -5), 500);
    assert.equal(nextRetryDelay("network", 1, 1), 999);
    assert.equal(nextRetryDelay("network", 1, 42), 999);
    assert.equal(nextRetryDelay("auth", 20, 1), 3_599_998);
  });

  it("RetryAfter_IsAFloor", () => {
    assert.equal(nextRetryDelay("network", 1, 0.5, DEFAULT_RETRY_POLICY, 10_000), 10_000);
    // a smaller retry-after changes nothing
    assert.equal(nextRetryDelay("network", 5, 0.5, DEFAULT_RETRY_POLICY, 100), nextRetryDelay("network", 5, 0.5));
    assert.equal(nextRetryDelay("auth", 1, 0, DEFAULT_RETRY_POLICY, 45_000), 45_000);
  });

  it("RetryAfter_CappedAtClassMaximum", () => {
    assert.equal(nextRetryDelay("network", 1, 0, DEFAULT_RETRY_POLICY, 24 * 3_600_000), 120_000);
    assert.equal(nextRetryDelay("auth", 1, 0, DEFAULT_RETRY_POLICY, 24 * 3_600_000), 3_600_000);
  });

  it("CustomPolicy", () => {
    const policy: RetryPolicy = { networkBaseMs: 10, networkMaxMs: 50, authBaseMs: 100, authMaxMs: 150 };
    assert.deepEqual([1, 2, 3, 4, 5].map((attempt) => nextRetryDelay("network", attempt, 0, policy)), [5, 10, 20, 25, 25]);
    assert.deepEqual([1, 2, 3].map((attempt) => nextRetryDelay("auth", attempt, 0, policy)), [50, 75, 75]);
  });

  describe("busy (CONNACK 3, server unavailable)", () => {
    const table: [attempt: number, random: number, expected: number][] = [
      [1, 0, 500], [1, 0.5, 2500], [1, 0.999999, 4499],
      [2, 0, 500], [2, 0.5, 4500], [2, 0.999999, 8499],
      [3, 0.5, 6500], [5, 0.5, 10_500], [5, 0.999999, 20_499],
      [6, 0.999999, 20_499], [100, 0.5, 10_500], [1e9, 0.25, 5500],
      [0, 0.5, 2500], [-3, 0.5, 2500], [Number.NaN, 0.5, 2500], [1.7, 0.5, 2500],
      [1, Number.NaN, 2500], [1, -1, 500], [1, 2, 4499],
    ];
    for (const [attempt, random, expected] of table) {
      it(`Busy_attempt${attempt}_random${random}_${expected}`, () => {
        assert.equal(nextRetryDelay("busy", attempt, random), expected);
      });
    }

    it("DocExample_Busy1_Half_2500", () => {
      assert.equal(nextRetryDelay("busy", 1, 0.5), 2500);
    });

    it("Defaults", () => {
      assert.deepEqual(DEFAULT_BUSY_RETRY, { busyMinMs: 500, busyWindowMs: 4000, busyWindowMaxMs: 20_000 });
    });

    it("NeverExceedsTheWidestWindow_AndStaysFarBelowNetworkBackOff", () => {
      for (let attempt = 1; attempt <= 40; attempt++) {
        for (const random of RANDOMS) {
          const delay = nextRetryDelay("busy", attempt, random);
          assert.ok(Number.isInteger(delay) && delay >= 500 && delay < 20_500, `attempt ${attempt} random ${random}: ${delay}`);
        }
      }
      // the seventh network failure waits at least 32 s; the seventh busy answer at most 20.5 s
      assert.ok(nextRetryDelay("busy", 7, 0.999999) < nextRetryDelay("network", 7, 0));
    });

    it("FullJitter_SpreadsAFleetOverTheWindow", () => {
      // 1000 devices refused together, uniform randomness: their retries cover the first window evenly
      const buckets = new Array(9).fill(0);
      for (let i = 0; i < 1000; i++) buckets[Math.floor((nextRetryDelay("busy", 1, (i + 0.5) / 1000) - 500) / 500)]++;
      assert.deepEqual(buckets.slice(0, 8), new Array(8).fill(125));
    });

    it("RetryAfter_FloorCappedAtWidestWindow", () => {
      assert.equal(nextRetryDelay("busy", 1, 0, DEFAULT_RETRY_POLICY, 7000), 7000);
      assert.equal(nextRetryDelay("busy", 1, 0, DEFAULT_RETRY_POLICY, 3_600_000), 20_500);
    });

    it("CustomPolicy", () => {
      const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, busyMinMs: 100, busyWindowMs: 1000, busyWindowMaxMs: 2500 };
      assert.deepEqual([1, 2, 3, 4].map((attempt) => nextRetryDelay("busy", attempt, 0.5, policy)), [600, 1100, 1350, 1350]);
    });
  });
  describe("lost (network failures since an ONLINE session ended)", () => {
    const table: [attempt: number, random: number, expected: number][] = [
      [1, 0, 250], [1, 0.5, 750], [1, 0.999999, 1249],
      [2, 0.5, 1250], [8, 0.5, 4250], [8, 0.999999, 8249], [15, 0.999999, 8249],
      [0, 0.5, 750], [Number.NaN, 0.5, 750], [1, Number.NaN, 750], [1, -1, 250],
    ];
    for (const [attempt, random, expected] of table) {
      it(`Lost_attempt${attempt}_random${random}_${expected}`, () => {
        assert.equal(nextRetryDelay("lost", attempt, random), expected);
      });
    }

    it("Defaults", () => {
      assert.deepEqual(DEFAULT_LOST_RETRY, { lostMinMs: 250, lostWindowMs: 1000, lostWindowMaxMs: 8000, lostAttempts: 15 });
    });

    it("AfterItsWindowAttempts_ContinuesAsTheNetworksFourthStep", () => {
      for (const random of [0, 0.3, 0.999999]) {
        assert.equal(nextRetryDelay("lost", 16, random), nextRetryDelay("network", 4, random));
        assert.equal(nextRetryDelay("lost", 20, random), nextRetryDelay("network", 8, random));
        assert.equal(nextRetryDelay("lost", 1000, random), nextRetryDelay("network", 1000, random));
      }
    });

    it("LostAttemptsZero_BacksOffExactlyAsANetworkFailure", () => {
      const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, lostAttempts: 0 };
      for (const attempt of [1, 2, 5, 9]) for (const random of [0, 0.5, 0.999999]) {
        assert.equal(nextRetryDelay("lost", attempt, random, policy), nextRetryDelay("network", attempt, random));
      }
    });

    it("CustomPolicy_AndRetryAfterFloor", () => {
      const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, lostMinMs: 0, lostWindowMs: 100, lostWindowMaxMs: 300, lostAttempts: 2 };
      assert.deepEqual([1, 2, 3].map((attempt) => nextRetryDelay("lost", attempt, 0.5, policy)), [50, 100, nextRetryDelay("network", 4, 0.5, policy)]);
      assert.equal(nextRetryDelay("lost", 1, 0, DEFAULT_RETRY_POLICY, 5000), 5000);
      assert.equal(nextRetryDelay("lost", 1, 0, DEFAULT_RETRY_POLICY, 3_600_000), 8250, "a retry-after is capped at the widest window");
    });
  });
});
