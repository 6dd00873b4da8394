//! Store writes that failed where the caller carries on (the loop, the
//! audit trail): each is logged with its context and counted by what was
//! being written, so a failing database shows in the metrics
//! (`kaizen_store_write_failures_total{what}`) instead of vanishing.

use std::collections::BTreeMap;
use std::fmt::Display;

use parking_lot::Mutex;

/// Failed writes counted by what was written (`improvement`, `finding`,
/// `deployment`, `audit`, ...).
#[derive(Debug, Default)]
pub struct WriteFailures(Mutex<BTreeMap<&'static str, u64>>);

impl WriteFailures {
    /// Pass `result` through; on failure log it with `context`, count it
    /// under `what` and return `None`.
    pub fn check<T>(&self, what: &'static str, context: impl Display, result: super::Result<T>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.count(what, context, e);
                None
            }
        }
    }

    /// Log and count a failed write of `what`.
    pub fn count(&self, what: &'static str, context: impl Display, error: impl Display) {
        tracing::error!(what, "cannot write {what} ({context}): {error}");
        *self.0.lock().entry(what).or_default() += 1;
    }

    /// Failures so far, by what was written.
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.0.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_by_what() {
        let f = WriteFailures::default();
        assert_eq!(f.check("audit", "x", Ok(3)), Some(3));
        assert_eq!(f.check::<()>("audit", "x", Err(super::super::StoreError::Corrupt("no".into()))), None);
        assert_eq!(f.snapshot(), BTreeMap::from([("audit", 1)]));
    }
}
