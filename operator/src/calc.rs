//! `tidal calc`: one offline decision in the format of `shared/conformance/FORMAT.md`.

use std::path::Path;
use std::process::ExitCode;

/// Runs `tidal calc` on `file` (standard input when `None` or `-`).
pub fn run(_file: Option<&Path>) -> ExitCode {
    eprintln!("tidal calc: not implemented yet");
    ExitCode::from(1)
}
