// The shopper's app, in a terminal: `npm start` shows the account, `npm start catalog` the
// options, `npm start redeem <optionId>` buys one, `npm start listen` prints rewards as they come.
// TANDEM_URL is the GraphQL endpoint; TANDEM_TOKEN is the customer token the merchant issued.
import { renderAccount } from "./account.js";
import { Account, Catalog, MyRewards, Redeem } from "./operations.js";
import { Tandem, TandemError } from "./tandem.js";

function setting(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

async function main(): Promise<void> {
  const tandem = new Tandem(setting("TANDEM_URL"), setting("TANDEM_TOKEN"));
  const [command = "account", argument] = process.argv.slice(2);
  switch (command) {
    case "account": {
      const { me } = await tandem.request(Account, { historySize: 10 });
      console.log(renderAccount(me));
      return;
    }
    case "catalog": {
      const { rewardOptions } = await tandem.request(Catalog);
      for (const option of rewardOptions) {
        const tier = option.minTier ? ` (${option.minTier.name} and up)` : "";
        console.log(`${option.id}  ${option.name}: ${option.pointsCost} points${tier}`);
      }
      return;
    }
    case "redeem": {
      if (!argument) throw new Error("usage: redeem <optionId>");
      const { redeemPoints } = await tandem.request(Redeem, { optionId: argument });
      console.log(`Your coupon: ${redeemPoints.couponCode ?? "(none)"} (${redeemPoints.status})`);
      return;
    }
    case "listen": {
      console.log("Listening for rewards; Ctrl-C stops.");
      await new Promise<void>((_, reject) => {
        tandem.subscribe(
          MyRewards,
          ({ myRewards }) => {
            const what = myRewards.reward
              ? `${myRewards.reward.kind} ${myRewards.reward.amount} ${myRewards.reward.couponCode ?? ""}`
              : `${myRewards.points} points`;
            console.log(`${myRewards.at}  ${myRewards.kind}  ${what}`);
          },
          reject,
        );
      });
      return;
    }
    default:
      throw new Error(`unknown command '${command}': account, catalog, redeem <optionId> or listen`);
  }
}

main().catch((error: unknown) => {
  if (error instanceof TandemError) {
    console.error(`Tandem said ${error.code}: ${error.message}`);
  } else {
    console.error(error);
  }
  process.exit(1);
});
