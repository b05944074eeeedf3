// What the app shows a shopper: their link, points, tier, badges and recent points.
import type { AccountQuery } from "./gql/graphql.js";

type Me = AccountQuery["me"];

export function renderAccount(me: Me): string {
  const lines = [
    `${me.name ?? "Your account"}`,
    `  Share your link: ${me.referralLink}  (code ${me.referralCode})`,
    `  Points: ${me.pointsBalance} to spend, ${me.pendingPoints} pending, ${me.lifetimePoints} earned in all`,
    `  Tier: ${me.tier ? me.tier.name : "none yet"}${me.tier?.perks.length ? ` (${me.tier.perks.join(", ")})` : ""}`,
  ];
  if (me.nextTier) {
    const percent = Math.round(me.nextTier.progress * 100);
    lines.push(`  Next: ${me.nextTier.tier.name} in ${me.nextTier.remaining} (${percent}%)`);
  }
  lines.push("  Badges:");
  for (const progress of me.badgeProgress) {
    const mark = progress.achieved ? "[x]" : "[ ]";
    lines.push(`    ${mark} ${progress.badge.name}: ${progress.current} / ${progress.threshold}`);
  }
  lines.push("  Points history:");
  for (const { node } of me.pointsHistory.edges) {
    const sign = node.delta > 0 ? "+" : "";
    lines.push(`    ${node.createdAt.slice(0, 10)}  ${sign}${node.delta}  ${node.description}`);
  }
  return lines.join("\n");
}
