//! Fixtures for adapter tests (feature `test-utils`): answers built exactly as the core builds
//! them, so that a renderer is tested against what it will really receive.

use crate::{Answer, Citation, CitedBy, Locator, Notice, Support, Timings};

/// The two answers the core gives without the model, each with the notice that must be shown
/// once: nothing found, and the model unreachable (with the passages it would have used).
pub fn answers_without_the_model() -> [(Answer, Notice); 2] {
    let passage = Citation {
        n: 1,
        document_id: "1".into(),
        title: "Manual".into(),
        locator: Locator::default(),
        snippet: "Hold the reset button for ten seconds.".into(),
        score: 1.0,
        support: Support::NotCited,
        support_score: None,
        cited_by: CitedBy::None,
    };
    [
        (Answer::nothing_found(Timings::default()), Notice::NothingFound),
        (Answer::model_unreachable(vec![passage], Timings::default()), Notice::ModelUnreachable),
    ]
}
