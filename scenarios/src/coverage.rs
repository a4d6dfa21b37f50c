//! Coverage marks across a sweep: each run reports how often it reached each named rare path
//! (`sim::mark`, `RunReport::marks`); a [`Coverage`] sums them over the runs of a sweep and
//! names the declared marks ([`crate::Family::with_marks`]) that no run reached, so a sweep
//! that never exercises a path says so instead of passing quietly.

use std::collections::BTreeMap;

/// Marks summed over a sweep's runs.
#[derive(Clone, Debug, Default)]
pub struct Coverage {
    declared: Vec<(&'static str, &'static str)>,
    /// Per mark: times reached over all runs, and runs that reached it.
    counts: BTreeMap<&'static str, (u64, u64)>,
    runs: u64,
}

impl Coverage {
    /// An empty tally for a sweep whose families declare `declared` (name, meaning).
    pub fn new(declared: Vec<(&'static str, &'static str)>) -> Coverage {
        Coverage { declared, ..Coverage::default() }
    }

    /// Adds one run's marks.
    pub fn add(&mut self, marks: &[(&'static str, u64)]) {
        self.runs += 1;
        for &(name, n) in marks {
            let c = self.counts.entry(name).or_insert((0, 0));
            c.0 += n;
            c.1 += 1;
        }
    }

    /// Runs added.
    pub fn runs(&self) -> u64 {
        self.runs
    }

    /// Times `mark` was reached over all runs, and in how many runs.
    pub fn count(&self, mark: &str) -> (u64, u64) {
        self.counts.get(mark).copied().unwrap_or((0, 0))
    }

    /// Declared marks no run reached, in declaration order.
    pub fn never_reached(&self) -> Vec<&'static str> {
        self.declared.iter().map(|d| d.0).filter(|m| self.count(m).0 == 0).collect()
    }

    /// The report: a line per mark — declared ones in their order, then any other mark a run
    /// set — with its count and the runs that reached it, then the marks never reached.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!("coverage over {} runs (mark: times reached, runs reaching it):", self.runs)];
        let width =
            self.declared.iter().map(|d| d.0.len()).chain(self.counts.keys().map(|k| k.len())).max().unwrap_or(0);
        for (name, meaning) in &self.declared {
            let (n, runs) = self.count(name);
            out.push(format!("  {name:width$}  {n:>9} in {runs:>6} runs  ({meaning})"));
        }
        for (name, &(n, runs)) in &self.counts {
            if !self.declared.iter().any(|d| d.0 == *name) {
                out.push(format!("  {name:width$}  {n:>9} in {runs:>6} runs  (undeclared)"));
            }
        }
        let never = self.never_reached();
        if self.declared.is_empty() {
            out.push("the selected families declare no marks, so none can be missed".into());
        } else if never.is_empty() {
            out.push("every declared mark was reached".into());
        } else {
            out.push(format!("never reached ({}): {}", never.len(), never.join(", ")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_summed_and_the_unreached_named() {
        let mut c = Coverage::new(vec![("a", "first"), ("b", "second")]);
        c.add(&[("a", 2), ("x", 1)]);
        c.add(&[("a", 3)]);
        assert_eq!(c.count("a"), (5, 2));
        assert_eq!(c.never_reached(), vec!["b"]);
        let text = c.lines().join("\n");
        assert!(text.contains("never reached (1): b"), "{text}");
        assert!(text.contains("(undeclared)"), "{text}");
        c.add(&[("b", 1)]);
        assert!(c.never_reached().is_empty());
        assert_eq!(c.lines().last().unwrap(), "every declared mark was reached");
        // Nothing declared: nothing can be missed, and the report does not claim otherwise.
        let mut none = Coverage::new(Vec::new());
        none.add(&[("x", 1)]);
        assert_eq!(none.lines().last().unwrap(), "the selected families declare no marks, so none can be missed");
    }
}
