//! `Selector::parse` on arbitrary UTF-8: never panics; an accepted selector matches labels
//! without panicking, prints in a form that parses back to the same selector, and the reparsed
//! selector matches exactly the same labels.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scaling::{Labels, Selector};

/// Label sets built from the selector's own words, so that requirements meet keys and values
/// they name (pods without those labels, with empty and numeric values, and pairs of words).
fn label_sets(printed: &str) -> Vec<Labels> {
    let words: Vec<&str> = printed
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')))
        .filter(|w| !w.is_empty())
        .collect();
    let each = |value: &str| -> Labels {
        words
            .iter()
            .map(|w| (w.to_string(), value.to_string()))
            .collect()
    };
    let pairs: Labels = words
        .windows(2)
        .map(|p| (p[0].to_string(), p[1].to_string()))
        .collect();
    vec![Labels::new(), each(""), each("5"), each("-7"), pairs]
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(selector) = Selector::parse(input) else {
        return;
    };
    let printed = selector.to_string();
    let reparsed = Selector::parse(&printed)
        .unwrap_or_else(|e| panic!("{input:?}: printed {printed:?} does not parse: {e}"));
    assert_eq!(reparsed, selector, "{input:?}: via {printed:?}");
    assert_eq!(
        reparsed.to_string(),
        printed,
        "{input:?}: printing is not stable"
    );
    assert_eq!(selector.is_empty(), printed.is_empty(), "{input:?}");
    for labels in label_sets(&printed) {
        assert_eq!(
            selector.matches(&labels),
            reparsed.matches(&labels),
            "{input:?} on {labels:?}"
        );
    }
});
