// Runs the TypeScript verification example of the integration guide over the cases on stdin
// (a JSON list of {secret, headers, body}); prints "accepted" or "rejected" per case.
import { readFileSync } from "node:fs";
import { ReplayGuard, verifyWebhookSignature } from "./verify";

interface Case {
  secret: string;
  headers: Record<string, string>;
  body: string;
}

const cases: Case[] = JSON.parse(readFileSync(0, "utf8"));
const guard = new ReplayGuard();
for (const c of cases) {
  const headers = {
    id: c.headers["webhook-id"] ?? "",
    timestamp: c.headers["webhook-timestamp"] ?? "",
    signature: c.headers["webhook-signature"] ?? "",
  };
  const ok = verifyWebhookSignature(Buffer.from(c.body, "utf8"), headers, c.secret) && guard.firstTime(headers.id);
  console.log(ok ? "accepted" : "rejected");
}
