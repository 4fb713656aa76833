//! `Quantity::parse` on arbitrary UTF-8: never panics, and what it accepts keeps the properties
//! the controller relies on (canonical strings re-parse to the same milli-value; sign symmetry).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scaling::quantity::{Format, Quantity, format_milli, format_milli_binary};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(q) = Quantity::parse(input) else {
        return;
    };
    let milli = q.milli_value();
    let approx = q.as_approximate_f64();

    // A zero milli-value comes only from a zero number (sub-milli values round away from zero),
    // and the float keeps the sign. NaN is possible and upstream's too: `0e400` is 0 × Pow10(400).
    match milli.signum() {
        0 => assert!(
            approx == 0.0 || approx.is_nan(),
            "{input:?}: milli 0, approx {approx}"
        ),
        1 => assert!(approx > 0.0, "{input:?}: milli {milli}, approx {approx}"),
        _ => assert!(approx < 0.0, "{input:?}: milli {milli}, approx {approx}"),
    }

    // The status and `tidal calc` print milli-values with these; reading them back must give the
    // same number, or a value would change on its way through the status.
    for (text, want_format) in [
        (format_milli(milli), Some(Format::DecimalSI)),
        (format_milli_binary(milli), None),
    ] {
        let back = Quantity::parse(&text)
            .unwrap_or_else(|e| panic!("{input:?}: canonical {text:?} does not parse: {e}"));
        assert_eq!(back.milli_value(), milli, "{input:?}: via {text:?}");
        if let Some(f) = want_format {
            assert_eq!(back.format(), f, "{input:?}: via {text:?}");
        }
    }

    // Negation mirrors the value (both parse paths round away from zero). At i64::MAX the value
    // may be exact (`9223372036854775807m`, negated -MAX) or saturated (`1e100`, negated MIN).
    let magnitude = input.strip_prefix('+').unwrap_or(input);
    if !magnitude.starts_with('-') {
        let negated = format!("-{magnitude}");
        let neg = Quantity::parse(&negated)
            .unwrap_or_else(|e| panic!("{input:?}: {negated:?} does not parse: {e}"));
        let got = neg.milli_value();
        let mirrored = got == -milli || (milli == i64::MAX && got == i64::MIN);
        assert!(mirrored, "{input:?} is {milli}, negated {got}");
    }
});
