//! What a debit takes from which lots, decided from what was read, with no I/O.
//!
//! [`crate::loyalty::ledger::debit`] loads the lots a debit may consume (its own lot, the
//! spendable lots oldest first, what the customer already owes), asks [`plan`] what to take,
//! and writes the entry and its consumptions. The rules of consuming live here alone, so they
//! are tested without a database.

use uuid::Uuid;

/// What a debit may consume, with what the ledger holds for it.
#[derive(Debug, Clone, Copy)]
pub enum Lots<'a> {
    /// Spendable lots, oldest first, and what earlier debits still owe. Without `debt`, the
    /// debit needs the balance (spendable less owed) to cover it; with `debt`, what the lots do
    /// not cover is owed.
    Fifo {
        debt: bool,
        owed: i64,
        spendable: &'a [(Uuid, i64)],
    },
    /// This lot first (what remains of it, pending or not), then the spendable lots oldest
    /// first (the lot itself not among them), then a debt.
    LotFirst {
        lot: Uuid,
        open: i64,
        spendable: &'a [(Uuid, i64)],
    },
    /// Exactly what remains of this lot, up to the amount.
    LotOnly { lot: Uuid, open: i64 },
}

/// What to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// (lot, points taken from it), in the order taken.
    pub taken: Vec<(Uuid, i64)>,
    /// The debit's size: the amount, or for [`Lots::LotOnly`] what the lot could give.
    pub total: i64,
    /// What the lots did not cover: the new entry's debt.
    pub unpaid: i64,
}

/// The balance does not cover a debit that may not leave a debt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortfall {
    pub needed: i64,
    /// What can be spent now: spendable points less what is owed, never below zero.
    pub spendable: i64,
}

/// How many spendable points a debit needs the load to reach, so that [`plan`] can decide (the
/// load reads lots oldest first until their remainders reach it, or none are left).
pub fn reach(amount: i64, owed: i64) -> i64 {
    amount.saturating_add(owed.max(0))
}

/// What a debit of `amount` (positive) takes. `Ok(None)` when there is nothing to take and
/// nothing to write (an expiry of a lot already used up).
pub fn plan(amount: i64, lots: Lots<'_>) -> Result<Option<Plan>, Shortfall> {
    match lots {
        Lots::LotOnly { lot, open } => {
            let taken = amount.min(open.max(0));
            if taken <= 0 {
                return Ok(None);
            }
            Ok(Some(Plan {
                taken: vec![(lot, taken)],
                total: taken,
                unpaid: 0,
            }))
        }
        Lots::LotFirst {
            lot,
            open,
            spendable,
        } => {
            let first = open.max(0).min(amount);
            let mut taken = Vec::new();
            if first > 0 {
                taken.push((lot, first));
            }
            let mut wanted = amount - first;
            take_oldest_first(spendable, &mut wanted, &mut taken, Some(lot));
            Ok(Some(Plan {
                taken,
                total: amount,
                unpaid: wanted,
            }))
        }
        Lots::Fifo {
            debt,
            owed,
            spendable,
        } => {
            let owed = if debt { 0 } else { owed.max(0) };
            // The lots must cover what is owed too: those points are already spoken for.
            let available: i64 = spendable.iter().map(|(_, open)| open.max(&0)).sum();
            if !debt && available < reach(amount, owed) {
                return Err(Shortfall {
                    needed: amount,
                    spendable: (available - owed).max(0),
                });
            }
            let mut taken = Vec::new();
            let mut wanted = amount;
            take_oldest_first(spendable, &mut wanted, &mut taken, None);
            Ok(Some(Plan {
                taken,
                total: amount,
                unpaid: wanted,
            }))
        }
    }
}

fn take_oldest_first(
    spendable: &[(Uuid, i64)],
    wanted: &mut i64,
    taken: &mut Vec<(Uuid, i64)>,
    except: Option<Uuid>,
) {
    for (lot, open) in spendable {
        if *wanted <= 0 {
            break;
        }
        if Some(*lot) == except {
            continue;
        }
        let take = (*open).min(*wanted);
        if take > 0 {
            taken.push((*lot, take));
            *wanted -= take;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lots(n: u128) -> Vec<Uuid> {
        (1..=n).map(Uuid::from_u128).collect()
    }

    #[test]
    fn a_purchase_takes_the_oldest_lots_first_and_splits_the_last() {
        let id = lots(3);
        let spendable = [(id[0], 30), (id[1], 50), (id[2], 40)];
        let plan = plan(
            60,
            Lots::Fifo {
                debt: false,
                owed: 0,
                spendable: &spendable,
            },
        );
        assert_eq!(
            plan,
            Ok(Some(Plan {
                taken: vec![(id[0], 30), (id[1], 30)],
                total: 60,
                unpaid: 0,
            }))
        );
    }

    #[test]
    fn a_purchase_beyond_the_balance_less_what_is_owed_is_refused() {
        let id = lots(2);
        let spendable = [(id[0], 30), (id[1], 50)];
        // 80 spendable, 40 owed: 40 can be spent.
        let refused = plan(
            50,
            Lots::Fifo {
                debt: false,
                owed: 40,
                spendable: &spendable,
            },
        );
        assert_eq!(
            refused,
            Err(Shortfall {
                needed: 50,
                spendable: 40
            })
        );
        let fits = plan(
            40,
            Lots::Fifo {
                debt: false,
                owed: 40,
                spendable: &spendable,
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(fits.taken, vec![(id[0], 30), (id[1], 10)]);
        assert_eq!(fits.unpaid, 0);
    }

    #[test]
    fn an_owed_balance_larger_than_the_lots_reads_as_nothing_to_spend() {
        let id = lots(1);
        let refused = plan(
            1,
            Lots::Fifo {
                debt: false,
                owed: 500,
                spendable: &[(id[0], 20)],
            },
        );
        assert_eq!(
            refused,
            Err(Shortfall {
                needed: 1,
                spendable: 0
            })
        );
    }

    #[test]
    fn a_debit_that_may_owe_takes_what_there_is_and_owes_the_rest() {
        let id = lots(1);
        let plan = plan(
            100,
            Lots::Fifo {
                debt: true,
                owed: 999,
                spendable: &[(id[0], 30)],
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(plan.taken, vec![(id[0], 30)]);
        assert_eq!((plan.total, plan.unpaid), (100, 70));
        let nothing = super::plan(
            25,
            Lots::Fifo {
                debt: true,
                owed: 0,
                spendable: &[],
            },
        )
        .unwrap()
        .unwrap();
        assert!(nothing.taken.is_empty());
        assert_eq!(nothing.unpaid, 25);
    }

    #[test]
    fn a_refund_takes_its_own_lot_first_then_the_oldest_then_owes() {
        let id = lots(3);
        let own = id[2];
        // The order's own lot is pending (not among the spendable ones), with 40 left.
        let spendable = [(id[0], 10), (id[1], 5)];
        let plan = plan(
            70,
            Lots::LotFirst {
                lot: own,
                open: 40,
                spendable: &spendable,
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(plan.taken, vec![(own, 40), (id[0], 10), (id[1], 5)]);
        assert_eq!((plan.total, plan.unpaid), (70, 15));
    }

    #[test]
    fn a_refund_does_not_take_its_own_lot_twice_when_it_is_spendable_too() {
        let id = lots(2);
        let spendable = [(id[0], 40), (id[1], 40)];
        let plan = plan(
            60,
            Lots::LotFirst {
                lot: id[0],
                open: 40,
                spendable: &spendable,
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(plan.taken, vec![(id[0], 40), (id[1], 20)]);
        assert_eq!(plan.unpaid, 0);
    }

    #[test]
    fn an_expiry_takes_what_remains_of_its_lot_and_nothing_of_a_spent_one() {
        let id = lots(1);
        let plan = plan(
            100,
            Lots::LotOnly {
                lot: id[0],
                open: 35,
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(plan.taken, vec![(id[0], 35)]);
        assert_eq!((plan.total, plan.unpaid), (35, 0));
        assert_eq!(
            super::plan(
                100,
                Lots::LotOnly {
                    lot: id[0],
                    open: 0
                }
            ),
            Ok(None)
        );
    }
}
