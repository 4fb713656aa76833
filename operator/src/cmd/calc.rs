//! `tidal calc`: one offline decision in the format of `shared/conformance/FORMAT.md`.
//!
//! The input (JSON or YAML, a file or standard input) is read into the pure
//! decision core of the `scaling` crate; the decision is printed as one JSON
//! object. Malformed input exits with status 2, prints nothing on standard
//! output and one line on standard error that names the offending field.

use std::path::Path;
use std::process::ExitCode;

/// Why `tidal calc` could not produce a decision, as the text after `tidal calc: `.
///
/// A plain string on purpose: the operator crate has one error enum
/// (`crate::Error`) for the controller; calc only ever prints its failure.
type CalcError = String;

/// Runs `tidal calc` on `file` (standard input when `None` or `-`).
pub fn run(file: Option<&Path>) -> ExitCode {
    match calc(file) {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            // One line, whatever the error text contains.
            let line = e.replace('\n', " ");
            eprintln!("tidal calc: {line}");
            ExitCode::from(2)
        }
    }
}

/// Parses JSON first (exact numbers, precise errors), then YAML.
fn parse_document(text: &str) -> Result<serde_json::Value, CalcError> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => Ok(v),
        Err(json_err) => {
            let looks_like_json = text.trim_start().starts_with(['{', '[']);
            match serde_yaml::from_str::<serde_json::Value>(text) {
                Ok(v) => Ok(v),
                Err(_) if looks_like_json => Err(syntax(&json_err.to_string())),
                Err(yaml_err) => Err(syntax(&yaml_err.to_string())),
            }
        }
    }
}

fn syntax(detail: &str) -> CalcError {
    format!("invalid input: not a JSON or YAML document: {detail}")
}

/// Computes the output JSON for an input document.
pub fn calc_text(text: &str) -> Result<String, CalcError> {
    let doc = parse_document(text)?;
    let calc = scaling::format::parse_input(&doc).map_err(|e| format!("invalid input: {e}"))?;
    let update_error = calc.update_error.clone();
    let decision = scaling::decide(&calc.input, |_| match update_error {
        Some(e) => Err(e),
        None => Ok(()),
    });
    Ok(scaling::format::render_output(&decision).to_string())
}

fn calc(file: Option<&Path>) -> Result<String, CalcError> {
    calc_text(&super::input::read(file)?.1)
}
