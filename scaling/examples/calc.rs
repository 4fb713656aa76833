//! Minimal `tidal calc` without the operator: one JSON input on stdin, the
//! decision JSON on stdout (exit 2 on malformed input). Handy when working on
//! this crate alone; the product command is `tidal calc`.

use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut text = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut text) {
        eprintln!("calc: cannot read standard input: {e}");
        return ExitCode::from(2);
    }
    let doc: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("calc: invalid input: not JSON: {e}");
            return ExitCode::from(2);
        }
    };
    match scaling::format::parse_input(&doc) {
        Ok(calc) => {
            let update_error = calc.update_error.clone();
            let d = scaling::decide(&calc.input, |_| update_error.map_or(Ok(()), Err));
            println!("{}", scaling::format::render_output(&d));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("calc: invalid input: {e}");
            ExitCode::from(2)
        }
    }
}
