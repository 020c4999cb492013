//! Any bytes → the JUnit parser (plain, gzip and UTF-16 paths) must return a report or a
//! located error, never panic, hang or allocate without bound; what it returns must be
//! consistent, and the failure fingerprinting the store applies must not panic either.
#![no_main]

use flakehound::junit;
use flakehound::model::AttemptOutcome;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match junit::parse_bytes(data) {
        Ok(report) => {
            let elements = report.info.testcases;
            // Repeated <testcase>s merge, so there are never more cases than elements,
            // and every element contributes at least one attempt.
            assert!(report.cases.len() as u64 <= elements);
            let attempts: u64 = report.cases.iter().map(|c| c.attempts.len() as u64).sum();
            assert!(attempts >= elements);
            for case in &report.cases {
                let _ = case.identity();
                let _ = case.run_outcome();
                for attempt in &case.attempts {
                    if let Some(f) = &attempt.failure {
                        let n = flakehound::fingerprint::normalize(
                            f.kind.as_deref(),
                            f.message.as_deref(),
                            f.body.as_deref(),
                        );
                        let _ = flakehound::fingerprint::id(&n);
                    }
                    if attempt.outcome == AttemptOutcome::Passed {
                        assert!(attempt.failure.is_none());
                    }
                }
            }
        }
        Err(e) => {
            // The error path rereads the input to turn the offset into line:column.
            let located = junit::located_in(data, &e);
            assert!(located.line >= 1 && located.column >= 1);
        }
    }
});
