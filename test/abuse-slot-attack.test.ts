/*
 * Issue 8 item 3 as an attacker does it: 16 source addresses x 64 sockets that
 * never send a ClientHello or trickle one byte a second, re-opened as soon as
 * they are dropped, while genuine devices connect over and over. Every
 * genuine connect must succeed, the unauthenticated connections stay within
 * the cap, and memory stays bounded. 8 s here; `npm run bench:slot-attack`
 * runs 30 s and prints the figures.
 */
import { strict as assert } from "node:assert";
import { runSlotAttack, slotReport } from "../bench/slot-attack";

describe("abuse: sockets holding the pre-CONNECT slots (issue 8 item 3)", function () {
  this.timeout(60_000);

  it("slotFlood_16SourcesX64IdleOrTrickling_GenuineDevicesAllConnect_CapsAndMemoryBounded", async function () {
    const f = await runSlotAttack(8, 3);
    const text = slotReport(f);
    assert.ok(f.attempts >= 6, `the devices connected during the flood\n${text}`);
    assert.equal(f.successes, f.attempts, `every genuine connect succeeded\n${text}`);
    assert.ok(f.hold.dropped > 0 && f.evictions > 0, `the flood held the slots and was evicted\n${text}`);
    assert.ok(f.unauthenticatedMax <= 256, text);
    assert.ok(f.rssMb.peak - f.rssMb.start < 150, `memory bounded\n${text}`);
  });
});
