// The merchant's side: its backend holds a service token and Tandem's signing secret. It
// registers the shopper and hands the app a short-lived customer token, as a login would.
import { createHmac } from "node:crypto";
import { Register } from "./operations.js";
import type { Tandem } from "./tandem.js";

/** An HS256 JWT for one customer (`sub` is their externalId), as Tandem verifies it. */
export function customerToken(secret: string, externalId: string, ttlSeconds = 3600): string {
  const now = Math.floor(Date.now() / 1000);
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${part({ alg: "HS256", typ: "JWT" })}.${part({
    sub: externalId,
    role: "customer",
    iat: now,
    exp: now + ttlSeconds,
  })}`;
  const signature = createHmac("sha256", secret).update(unsigned).digest("base64url");
  return `${unsigned}.${signature}`;
}

/** Registers a shopper (repeating it is harmless) and returns Tandem's view of them. */
export async function registerShopper(
  service: Tandem,
  shopper: { externalId: string; email: string; name: string; referralCode?: string },
) {
  const { registerCustomer } = await service.request(Register, {
    input: {
      externalId: shopper.externalId,
      email: shopper.email,
      name: shopper.name,
      referralCode: shopper.referralCode ?? null,
      marketingConsent: true,
    },
  });
  return registerCustomer;
}
