//! What `tidal calc` does with a document (operator/src/cmd/calc.rs `calc_text`), on arbitrary
//! bytes: read the JSON, read it as a decision input, decide, render the output. Bad input must
//! come back as an error; nothing may panic.
//!
//! calc also falls back to YAML when the text is not JSON; this target reads JSON only, so that
//! the executions go to Tidal's reader and decision rather than to serde_yaml's parser (the
//! decision input is the same `serde_json::Value` either way).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // calc reads its file or standard input as UTF-8 text first.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    let Ok(calc) = scaling::format::parse_input(&doc) else {
        return;
    };
    let update_error = calc.update_error.clone();
    let decision = scaling::decide(&calc.input, |_| match update_error {
        Some(e) => Err(e),
        None => Ok(()),
    });
    // calc prints this; rendering walks every part of the decision.
    let _ = scaling::format::render_output(&decision).to_string();
});
