// Runs every graphql-http server audit against the URL in TANDEM_AUDIT_URL and fails on any
// audit whose status is "error" (a MUST of the GraphQL-over-HTTP spec). Warnings and notices
// are printed; the ones that stay are explained in docs/decisions.md.
import { serverAudits } from 'graphql-http';

const url = process.env.TANDEM_AUDIT_URL;
if (!url) {
  console.error('set TANDEM_AUDIT_URL to the server\'s /graphql URL');
  process.exit(2);
}

const results = await Promise.all(serverAudits({ url }).map(({ fn }) => fn()));
const counts = { ok: 0, warn: 0, notice: 0, error: 0 };
for (const result of results) {
  counts[result.status] = (counts[result.status] ?? 0) + 1;
  if (result.status !== 'ok') {
    console.log(`${result.status.toUpperCase()} ${result.id} ${result.name}: ${result.reason}`);
  }
}
console.log(
  `graphql-http audit: ${counts.ok} ok, ${counts.warn} warn, ${counts.notice} notice, ${counts.error} error`,
);
process.exit(counts.error > 0 ? 1 : 0);
