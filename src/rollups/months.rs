//! The calendar months (UTC) in which a customer has an order that was not wholly refunded, kept
//! as runs of consecutive months: `customer_rollups.order_months` holds them as text,
//! `first-last` pairs of month numbers (`year * 12 + month`, as `migration::rollups` numbers
//! them) in ascending order, comma-separated. The text grows by one pair per gap between
//! ordering months, not by order, and the longest run is the streak a badge measures.

use std::fmt;

use chrono::{DateTime, Datelike, Utc};

/// `year * 12 + month` (1 to 12) of a moment in UTC.
pub fn month_of(at: DateTime<Utc>) -> i64 {
    i64::from(at.year()) * 12 + i64::from(at.month())
}

/// Ascending, disjoint, non-adjacent runs of months.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonthRuns(Vec<(i64, i64)>);

impl MonthRuns {
    /// Reads the kept text; runs given out of order, overlapping or adjacent are merged, so any
    /// text a rebuild or a writer wrote reads the same.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut runs = Vec::new();
        for pair in text.split(',').filter(|pair| !pair.trim().is_empty()) {
            let (first, last) = pair
                .split_once('-')
                .ok_or_else(|| format!("'{pair}' is not a run of months"))?;
            let number = |s: &str| {
                s.trim()
                    .parse::<i64>()
                    .map_err(|_| format!("'{pair}' is not a run of months"))
            };
            let (first, last) = (number(first)?, number(last)?);
            if first > last {
                return Err(format!("'{pair}' ends before it starts"));
            }
            runs.push((first, last));
        }
        runs.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(runs.len());
        for (first, last) in runs {
            match merged.last_mut() {
                Some(previous) if first <= previous.1 + 1 => previous.1 = previous.1.max(last),
                _ => merged.push((first, last)),
            }
        }
        Ok(Self(merged))
    }

    /// Whether `month` is in a run.
    pub fn contains(&self, month: i64) -> bool {
        self.0
            .iter()
            .any(|&(first, last)| (first..=last).contains(&month))
    }

    /// Adds `month`; returns whether it was missing.
    pub fn insert(&mut self, month: i64) -> bool {
        if self.contains(month) {
            return false;
        }
        let at = self.0.partition_point(|&(first, _)| first < month);
        let joins_previous = at > 0 && self.0[at - 1].1 + 1 == month;
        let joins_next = at < self.0.len() && self.0[at].0 == month + 1;
        match (joins_previous, joins_next) {
            (true, true) => {
                self.0[at - 1].1 = self.0[at].1;
                self.0.remove(at);
            }
            (true, false) => self.0[at - 1].1 = month,
            (false, true) => self.0[at].0 = month,
            (false, false) => self.0.insert(at, (month, month)),
        }
        true
    }

    /// Takes `month` out, splitting its run; returns whether it was there.
    pub fn remove(&mut self, month: i64) -> bool {
        let Some(at) = self
            .0
            .iter()
            .position(|&(first, last)| (first..=last).contains(&month))
        else {
            return false;
        };
        let (first, last) = self.0[at];
        match (first == month, last == month) {
            (true, true) => {
                self.0.remove(at);
            }
            (true, false) => self.0[at].0 = month + 1,
            (false, true) => self.0[at].1 = month - 1,
            (false, false) => {
                self.0[at].1 = month - 1;
                self.0.insert(at + 1, (month + 1, last));
            }
        }
        true
    }

    /// The most consecutive months in one run.
    pub fn longest(&self) -> i64 {
        self.0
            .iter()
            .map(|&(first, last)| last - first + 1)
            .max()
            .unwrap_or(0)
    }
}

impl fmt::Display for MonthRuns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (first, last)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{first}-{last}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn month(y: i32, m: u32) -> i64 {
        month_of(Utc.with_ymd_and_hms(y, m, 15, 12, 0, 0).unwrap())
    }

    #[test]
    fn a_streak_counts_consecutive_months_across_a_new_year() {
        let mut runs = MonthRuns::default();
        for m in [
            month(2025, 11),
            month(2025, 12),
            month(2025, 12),
            month(2026, 1),
            month(2026, 3),
        ] {
            runs.insert(m);
        }
        assert_eq!(runs.longest(), 3);
        assert_eq!(MonthRuns::default().longest(), 0);
        assert_eq!(
            runs.to_string(),
            format!(
                "{}-{},{}-{}",
                month(2025, 11),
                month(2026, 1),
                month(2026, 3),
                month(2026, 3)
            )
        );
    }

    #[test]
    fn a_month_filling_a_gap_joins_its_neighbours_and_removing_it_splits_them_again() {
        let mut runs = MonthRuns::parse("10-12,14-15").unwrap();
        assert!(runs.insert(13));
        assert_eq!(runs.to_string(), "10-15");
        assert!(!runs.insert(13), "a month already there");
        assert!(runs.remove(13));
        assert_eq!(runs.to_string(), "10-12,14-15");
        assert!(runs.remove(10) && runs.remove(15));
        assert_eq!(runs.to_string(), "11-12,14-14");
        assert!(runs.remove(14));
        assert!(!runs.remove(14), "a month not there");
        assert_eq!(runs.to_string(), "11-12");
        assert!(runs.insert(9) && runs.insert(20));
        assert_eq!(runs.to_string(), "9-9,11-12,20-20");
    }

    #[test]
    fn any_order_of_runs_reads_as_the_canonical_text() {
        let runs = MonthRuns::parse("20-21, 5-5,6-8,7-9").unwrap();
        assert_eq!(runs.to_string(), "5-9,20-21");
        assert_eq!(MonthRuns::parse("").unwrap(), MonthRuns::default());
        assert!(MonthRuns::parse("3").is_err());
        assert!(MonthRuns::parse("4-3").is_err());
        assert!(MonthRuns::parse("a-b").is_err());
    }

    #[test]
    fn inserting_and_removing_agree_with_a_set_of_months() {
        // A small deterministic walk over months 0..40 against a plain set.
        let mut runs = MonthRuns::default();
        let mut set = std::collections::BTreeSet::new();
        let mut x: u64 = 7;
        for _ in 0..2_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let month = ((x >> 33) % 40) as i64;
            if (x >> 20) & 1 == 0 {
                assert_eq!(runs.insert(month), set.insert(month));
            } else {
                assert_eq!(runs.remove(month), set.remove(&month));
            }
            let text = runs.to_string();
            assert_eq!(MonthRuns::parse(&text).unwrap(), runs, "{text}");
            let months: Vec<i64> = set.iter().copied().collect();
            let mut longest = 0;
            let mut run = 0;
            for (i, m) in months.iter().enumerate() {
                run = if i > 0 && months[i - 1] + 1 == *m {
                    run + 1
                } else {
                    1
                };
                longest = longest.max(run);
            }
            assert_eq!(runs.longest(), longest);
        }
    }
}
