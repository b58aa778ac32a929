// The kit's call envelope: `cancelled` means nothing was written, so only a call's first
// attempt may end that way (src/protocol/store.ts).
import { expect } from "chai";
import { Envelope, lazy } from "../../src/backends/kit.js";
import { signalCaller, throwIfCancelled } from "../../src/protocol/call.js";
import { isDecantError } from "../../src/protocol/errors.js";

const lost = () => Object.assign(new Error("connection reset while the write was in flight"), { code: "ECONNRESET" });

describe("kit envelope and cancellation", function () {
  const envelope = new Envelope({ store: "test", timeoutMs: 5000, isTransient: (err) => (err as { code?: string }).code === "ECONNRESET", retry: { attempts: 3, baseDelayMs: 0, maxDelayMs: 0 } });

  it("a caller gone before the call starts gets cancelled and no attempt runs", async function () {
    let attempts = 0;
    const err = await envelope.run("applyIfNewer", async () => attempts++, true, signalCaller(AbortSignal.abort())).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isDecantError(err, "cancelled")).to.equal(true);
    expect(attempts).to.equal(0);
  });

  it("a retried write whose caller goes during the retry ends with the first attempt's failure, not cancelled", async function () {
    const caller = new AbortController();
    const call = signalCaller(caller.signal);
    let attempts = 0;
    const err = await envelope
      .run(
        "applyIfNewer",
        async () => {
          attempts++;
          if (attempts === 1) throw lost(); // sent, maybe applied, answer lost
          caller.abort(); // the caller leaves while the retry reconnects...
          throwIfCancelled("applyIfNewer", call); // ...and the driver checks before it sends again
          return true;
        },
        true,
        call,
      )
      .then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(attempts).to.equal(2);
    expect(isDecantError(err, "cancelled"), String(err)).to.equal(false);
    expect(isDecantError(err, "unavailable"), String(err)).to.equal(true);
    expect((err as Error).message).to.match(/connection reset/);
  });
});

describe("kit lazy", () => {
  it("makes once for concurrent callers, says when it is made, makes again after a failure or a reset", async () => {
    let made = 0;
    let fail = true;
    const l = lazy(async () => {
      made++;
      if (fail) throw new Error("not yet");
      return made;
    });
    await l.get().catch(() => undefined);
    expect(l.done).to.equal(false);
    fail = false;
    const [a, b] = await Promise.all([l.get(), l.get()]);
    expect([a, b, made, l.done]).to.deep.equal([2, 2, 2, true]);
    l.reset();
    expect(l.done).to.equal(false);
    expect(await l.get()).to.equal(3);
    expect(l.done).to.equal(true);
  });
});
