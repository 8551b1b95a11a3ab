// Runs the TypeScript verification examples of the integration guide over the cases on stdin
// (a JSON list of {secret, headers, body}); prints "accepted" or "rejected" per case. With the
// argument `v1a`, the ed25519 example; either way with the guide's replay guard.
import { readFileSync } from "node:fs";
import { ReplayGuard, verifyWebhookSignature } from "./verify";
import { verifyV1a } from "./verify_v1a";

interface Case {
  secret: string;
  headers: Record<string, string>;
  body: string;
}

const cases: Case[] = JSON.parse(readFileSync(0, "utf8"));
const v1a = process.argv[2] === "v1a";
const guard = new ReplayGuard();
for (const c of cases) {
  const headers = {
    id: c.headers["webhook-id"] ?? "",
    timestamp: c.headers["webhook-timestamp"] ?? "",
    signature: c.headers["webhook-signature"] ?? "",
  };
  const body = Buffer.from(c.body, "utf8");
  const verified = v1a ? verifyV1a(body, headers, c.secret) : verifyWebhookSignature(body, headers, c.secret);
  const ok = verified && guard.firstTime(headers.id);
  console.log(ok ? "accepted" : "rejected");
}
