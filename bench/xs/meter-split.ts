/*
 * Splits one xsnap crank's meter between the device and everything else.
 *
 * A bench step runs the device together with what surrounds it on a real board
 * (the fake cloud, the simulated radio, the test clock) and with what a device
 * computes in native code (Moddable's Digest, ECDH, AES). Only the device's own
 * JavaScript is the device's XS compute. xsnap's resetMeter(limit, index)
 * returns the meter index of the running crank and sets it, so reading it at
 * every crossing between "device" and "other" code attributes each step to one
 * side: `device(fn)` counts, `other(fn)` does not, and they nest. What is not
 * wrapped counts as whatever encloses it; the step itself starts as "other".
 */
declare function currentMeterLimit(): number;
declare function resetMeter(limit: number, index: number): number;

function meterNow(): number {
  const limit = currentMeterLimit();
  const now = resetMeter(limit, 0);
  resetMeter(limit, now);
  return now;
}

let deviceSteps = 0;
let inDevice = false;
let since = 0;

function enter<T>(device: boolean, run: () => T): T {
  const now = meterNow();
  if (inDevice) deviceSteps += now - since;
  const outer = inDevice;
  inDevice = device;
  since = now;
  try {
    return run();
  } finally {
    const end = meterNow();
    if (inDevice) deviceSteps += end - since;
    inDevice = outer;
    since = end;
  }
}

/** Runs `run` as device code: its steps count. */
export function device<T>(run: () => T): T {
  return enter(true, run);
}

/** Runs `run` as code that is not the device's XS compute (cloud, radio, native). */
export function other<T>(run: () => T): T {
  return enter(false, run);
}

/** Starts a new count; returns the steps counted since the last reset. */
export function resetDeviceSteps(): number {
  const counted = deviceSteps;
  deviceSteps = 0;
  inDevice = false;
  return counted;
}
