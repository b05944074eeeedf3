// The operations this app sends. Codegen reads them and types each one against
// ../../schema.graphql: a field the schema drops or renames fails the build.
import { graphql } from "./gql/index.js";

export const Account = graphql(`
  query Account($historySize: Int!) {
    me {
      name
      referralCode
      referralLink
      pointsBalance
      pendingPoints
      lifetimePoints
      tier {
        name
        perks
      }
      nextTier {
        tier {
          name
        }
        remaining
        progress
      }
      badgeProgress {
        badge {
          key
          name
        }
        current
        threshold
        achieved
      }
      pointsHistory(first: $historySize) {
        edges {
          node {
            delta
            reason
            description
            createdAt
          }
        }
      }
    }
  }
`);

export const Catalog = graphql(`
  query Catalog {
    rewardOptions {
      id
      name
      pointsCost
      kind
      amount
      minTier {
        name
      }
    }
  }
`);

export const Redeem = graphql(`
  mutation Redeem($optionId: ID!) {
    redeemPoints(optionId: $optionId) {
      id
      kind
      amount
      couponCode
      status
    }
  }
`);

export const MyRewards = graphql(`
  subscription MyRewards {
    myRewards {
      kind
      points
      at
      reward {
        id
        kind
        amount
        couponCode
      }
    }
  }
`);

// What the merchant's backend sends with its service token.
export const Register = graphql(`
  mutation Register($input: RegisterCustomerInput!) {
    registerCustomer(input: $input) {
      customer {
        id
        externalId
        referralCode
      }
      referral {
        status
      }
    }
  }
`);

export const RecordOrder = graphql(`
  mutation RecordOrder($input: OrderInput!) {
    recordOrder(input: $input) {
      id
      externalId
      amount
    }
  }
`);

// What an operator sets up with an admin token (the end-to-end script does it first).
export const CreateTier = graphql(`
  mutation CreateTier($input: TierInput!) {
    createTier(input: $input) {
      id
      name
    }
  }
`);

export const CreateBadge = graphql(`
  mutation CreateBadge($input: BadgeInput!) {
    createBadge(input: $input) {
      id
      key
    }
  }
`);

export const CreateRewardOption = graphql(`
  mutation CreateRewardOption($input: RewardOptionInput!) {
    createRewardOption(input: $input) {
      id
      name
      pointsCost
    }
  }
`);

export const Program = graphql(`
  query Program {
    programSettings {
      pointsPerUnit
      pointsPendingDays
    }
  }
`);

export const Tiers = graphql(`
  query Tiers {
    tiers {
      name
      threshold
    }
  }
`);
