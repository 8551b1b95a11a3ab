import { createHmac, timingSafeEqual } from "node:crypto";

const TOLERANCE_SECONDS = 5 * 60;

export interface WebhookHeaders {
  id: string;        // webhook-id
  timestamp: string; // webhook-timestamp
  signature: string; // webhook-signature
}

/**
 * Returns true when `payload` (the raw request body) was signed by hookd with `secret`
 * ("whsec_…") and the timestamp is within ±5 minutes of `nowSeconds`.
 * The signed content includes the id and the timestamp, so all three headers are needed.
 */
export function verifyWebhookSignature(
  payload: string | Buffer,
  headers: WebhookHeaders,
  secret: string,
  nowSeconds: number = Math.floor(Date.now() / 1000),
): boolean {
  const { id, timestamp, signature } = headers;
  if (!id || !timestamp || !signature) return false;

  // 1. Timestamp: plain digits, within the tolerance in either direction.
  if (!/^\d+$/.test(timestamp)) return false;
  if (Math.abs(nowSeconds - Number(timestamp)) > TOLERANCE_SECONDS) return false;

  // 2. Expected tag: HMAC-SHA256 over `${id}.${timestamp}.${body}` with the decoded secret.
  const key = Buffer.from(secret.startsWith("whsec_") ? secret.slice(6) : secret, "base64");
  const expected = createHmac("sha256", key)
    .update(`${id}.${timestamp}.`)
    .update(payload)
    .digest();

  // 3. Any `v1` entry of the space-separated list may match; compare in constant time.
  let valid = false;
  for (const entry of signature.split(" ")) {
    const comma = entry.indexOf(",");
    if (comma < 0 || entry.slice(0, comma) !== "v1") continue;
    const received = Buffer.from(entry.slice(comma + 1), "base64");
    if (received.length === expected.length && timingSafeEqual(received, expected)) {
      valid = true;
    }
  }
  return valid;
}

/**
 * Remembers the `webhook-id`s already processed, so a replayed (or redelivered) request is
 * recognised. In production keep them in your database, in the same transaction as the work;
 * this in-memory version keeps each id for a day.
 */
export class ReplayGuard {
  private seen = new Map<string, number>();

  /** True the first time `id` is seen, false for a repeat. */
  firstTime(id: string, nowSeconds: number = Math.floor(Date.now() / 1000)): boolean {
    for (const [old, at] of this.seen) {
      if (nowSeconds - at > 24 * 60 * 60) this.seen.delete(old);
    }
    if (this.seen.has(id)) return false;
    this.seen.set(id, nowSeconds);
    return true;
  }
}
