import { createPublicKey, verify } from "node:crypto";

import { WebhookHeaders } from "./verify";

// `publicKey` is "whpk_…"; headers and nowSeconds as in verifyWebhookSignature above.
export function verifyV1a(payload: Buffer, headers: WebhookHeaders, publicKey: string,
                          nowSeconds = Math.floor(Date.now() / 1000)): boolean {
  const { id, timestamp, signature } = headers;
  if (!/^\d+$/.test(timestamp) || Math.abs(nowSeconds - Number(timestamp)) > 300) return false;
  const raw = Buffer.from(publicKey.replace(/^whpk_/, ""), "base64");
  const key = createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") },
    format: "jwk",
  });
  const content = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), payload]);
  return signature.split(" ").some((entry) => {
    const comma = entry.indexOf(",");
    if (comma < 0 || entry.slice(0, comma) !== "v1a") return false;
    try {
      return verify(null, content, key, Buffer.from(entry.slice(comma + 1), "base64"));
    } catch {
      return false;
    }
  });
}
