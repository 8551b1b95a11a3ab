import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

import { ReplayGuard, verifyWebhookSignature } from "./verify";

const secret = process.env.HOOKD_WEBHOOK_SECRET ?? ""; // "whsec_…"
const guard = new ReplayGuard();
const queue: { id: string; event: unknown }[] = [];

// The slow part (calling other services, sending mail) runs here, after the answer.
async function processEvents(): Promise<void> {
  for (;;) {
    const job = queue.shift();
    if (job === undefined) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      continue;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000)); // stands for slow work
    console.log(`processed ${job.id}`);
  }
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    // 1. Verify the raw bytes, before parsing anything.
    const body = Buffer.concat(chunks);
    const header = (name: string) => String(req.headers[name] ?? "");
    const headers = {
      id: header("webhook-id"),
      timestamp: header("webhook-timestamp"),
      signature: header("webhook-signature"),
    };
    if (req.method !== "POST" || !verifyWebhookSignature(body, headers, secret)) {
      res.writeHead(400).end("invalid signature");
      return;
    }
    // 2. Deduplicate on webhook-id, and queue the event.
    if (guard.firstTime(headers.id)) {
      queue.push({ id: headers.id, event: JSON.parse(body.toString("utf8")) });
    }
    // 3. Answer at once, a repeat too: it was delivered.
    res.writeHead(204).end();
  });
});
server.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => {
  // PORT=0: a free port, named here.
  console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});

void processEvents();
