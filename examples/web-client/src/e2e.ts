// The end-to-end run CI makes against a live server. It plays the three parties: the operator
// (admin token) sets up a tier, a badge and a catalog option; the merchant's backend (service
// token) registers two shoppers, the second referred by the first, and records an order; the
// shopper's app (a customer token from the backend) reads its account, listens to myRewards,
// and redeems the option. It exits non-zero at the first thing that is not as expected.
//
// TANDEM_URL: the GraphQL endpoint. TANDEM_ADMIN_TOKEN, TANDEM_SERVICE_TOKEN: tokens from
// `tandem token`. TANDEM_JWT_SECRET: the server's signing secret. TANDEM_CURRENCY: the
// program currency (USD when unset).
import { strict as assert } from "node:assert";
import { renderAccount } from "./account.js";
import { customerToken, registerShopper } from "./backend.js";
import type { MyRewardsSubscription } from "./gql/graphql.js";
import {
  Account,
  Catalog,
  CreateBadge,
  CreateRewardOption,
  CreateTier,
  MyRewards,
  Program,
  Tiers,
  RecordOrder,
  Redeem,
} from "./operations.js";
import { Tandem, TandemError } from "./tandem.js";

type RewardEvent = MyRewardsSubscription["myRewards"];

function setting(name: string, fallback?: string): string {
  const value = process.env[name] ?? fallback;
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/** Resolves with the first event `accept` takes, or rejects after `ms`. */
function waitFor(
  events: RewardEvent[],
  accept: (event: RewardEvent) => boolean,
  ms: number,
): Promise<RewardEvent> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const look = () => {
      const found = events.find(accept);
      if (found) return resolve(found);
      if (Date.now() - started > ms) {
        return reject(new Error(`no such myRewards event in ${ms} ms; heard ${JSON.stringify(events)}`));
      }
      setTimeout(look, 50);
    };
    look();
  });
}

async function main(): Promise<void> {
  const url = setting("TANDEM_URL");
  const secret = setting("TANDEM_JWT_SECRET");
  const currency = setting("TANDEM_CURRENCY", "USD");
  const admin = new Tandem(url, setting("TANDEM_ADMIN_TOKEN"));
  const service = new Tandem(url, setting("TANDEM_SERVICE_TOKEN"));
  // Unique per run, so the script can run twice against one database.
  const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const unique = (Date.now() % 1_000_000) * 10 + Math.floor(Math.random() * 10);

  // The operator's setup.
  const { programSettings } = await admin.request(Program);
  assert.equal(programSettings.pointsPendingDays, 0, "the script expects points to be spendable at once");
  // Tier thresholds are unique; a threshold-1 tier left by an earlier run is as good as ours.
  await admin.request(CreateTier, {
    input: { name: `Silver ${run}`, threshold: 1, perks: ["free shipping"] },
  }).catch((error: unknown) => {
    if (!(error instanceof TandemError && error.code === "CONFLICT")) throw error;
  });
  await admin.request(CreateTier, {
    input: { name: `Gold ${run}`, threshold: 1_000_000_000 - unique, pointsMultiplier: 2 },
  });
  const badge = (await admin.request(CreateBadge, {
    input: { key: `orders-${run}`, name: `Two orders ${run}`, rule: "ORDERS", threshold: 2 },
  })).createBadge;
  const option = (await admin.request(CreateRewardOption, {
    input: { name: `$5 off ${run}`, pointsCost: 50, kind: "FIXED_COUPON", amount: 500 },
  })).createRewardOption;

  // The merchant's backend registers a referrer and a friend who signs up with their code.
  const referrer = await registerShopper(service, {
    externalId: `ada-${run}`,
    email: `ada-${run}@example.com`,
    name: "Ada Lovelace",
  });
  const friend = await registerShopper(service, {
    externalId: `grace-${run}`,
    email: `grace-${run}@example.net`,
    name: "Grace Hopper",
    referralCode: referrer.customer.referralCode,
  });
  assert.ok(friend.referral, "the friend's signup with a code made a referral");

  // The friend's app, with the token the backend issued at login, starts listening.
  const app = new Tandem(url, customerToken(secret, friend.customer.externalId));
  const heard: RewardEvent[] = [];
  const failures: unknown[] = [];
  const stop = app.subscribe(MyRewards, ({ myRewards }) => heard.push(myRewards), (e) => failures.push(e));
  // graphql-ws subscribes once the socket is acknowledged; the first read proves the token works,
  // and a short pause lets the subscription reach the server before the order is written.
  await app.request(Account, { historySize: 5 });
  await new Promise((resolve) => setTimeout(resolve, 500));

  // The friend's first order: points for the friend, and the referral's rewards.
  await service.request(RecordOrder, {
    input: {
      externalId: `order-${run}`,
      customerExternalId: friend.customer.externalId,
      amount: 12_000,
      currency,
    },
  });
  const credited = await waitFor(heard, (e) => e.kind === "POINTS_CREDITED", 10_000);
  assert.ok((credited.points ?? 0) > 0, "the order's points were announced");

  let { me } = await app.request(Account, { historySize: 10 });
  console.log(renderAccount(me));
  assert.ok(me.referralLink.endsWith(`/r/${me.referralCode}`), "the link carries the code");
  assert.equal(me.pointsBalance, 120 * Number(programSettings.pointsPerUnit) + bonusOf(me));
  // The tier metric is lifetime points (the default): the tier is the highest reached.
  const { tiers } = await admin.request(Tiers);
  const reached = tiers.filter((t) => t.threshold <= me.lifetimePoints);
  const above = tiers.filter((t) => t.threshold > me.lifetimePoints);
  assert.ok(reached.length > 0, "one order reaches the threshold-1 tier");
  assert.equal(me.tier?.name, reached[reached.length - 1]!.name, "the highest tier reached");
  assert.equal(me.nextTier?.tier.name, above[0]?.name, "the next tier is the lowest above");
  const onBadge = me.badgeProgress.find((p) => p.badge.key === badge.key);
  assert.deepEqual(
    onBadge && { current: onBadge.current, threshold: onBadge.threshold, achieved: onBadge.achieved },
    { current: 1, threshold: 2, achieved: false },
    "one order of two for the badge",
  );
  assert.ok(me.pointsHistory.edges.some(({ node }) => node.reason === "ORDER"), "the order is in the history");

  // The app lists the catalog and redeems the option; the reward arrives over the socket.
  const { rewardOptions } = await app.request(Catalog);
  assert.ok(rewardOptions.some((o) => o.id === option.id), "the option is offered");
  const balance = me.pointsBalance;
  const { redeemPoints } = await app.request(Redeem, { optionId: option.id });
  assert.ok(redeemPoints.couponCode, "the redemption carries a coupon code");
  const issued = await waitFor(
    heard,
    (e) => e.kind === "REWARD_ISSUED" && e.reward?.id === redeemPoints.id,
    10_000,
  );
  assert.equal(issued.reward?.couponCode, redeemPoints.couponCode);

  ({ me } = await app.request(Account, { historySize: 10 }));
  assert.equal(me.pointsBalance, balance - option.pointsCost, "the option's cost was taken");
  assert.equal(me.pointsHistory.edges[0]?.node.reason, "REDEMPTION", "the newest entry is the redemption");

  // A second redemption the balance cannot pay for is refused with a code the app can show.
  const short = await app.request(Redeem, { optionId: option.id }).then(
    () => undefined,
    (error: unknown) => error,
  );
  if (me.pointsBalance < option.pointsCost) {
    assert.ok(short instanceof TandemError && short.code === "INSUFFICIENT_POINTS", `refused: ${String(short)}`);
  }

  stop();
  await app.close();
  assert.deepEqual(failures, [], "the subscription ended without errors");
  console.log(`\nend-to-end: passed (${heard.length} myRewards events heard)`);
}

/** Points from anything but the order (a referral bonus a campaign may pay the friend). */
function bonusOf(me: { pointsHistory: { edges: { node: { reason: string; delta: number } }[] } }): number {
  return me.pointsHistory.edges
    .filter(({ node }) => node.reason !== "ORDER")
    .reduce((sum, { node }) => sum + node.delta, 0);
}

main().catch((error: unknown) => {
  console.error(error instanceof TandemError ? `Tandem said ${error.code}: ${error.message}` : error);
  process.exit(1);
});
