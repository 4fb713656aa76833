//! Reading a command's input document: a file, or standard input when the path is absent or `-`.

use std::io::Read;
use std::path::Path;

/// The text of `file` (standard input when `None` or `-`) and where it came from, for messages.
pub fn read(file: Option<&Path>) -> Result<(String, String), String> {
    match file {
        Some(path) if path != Path::new("-") => std::fs::read_to_string(path)
            .map(|t| (path.display().to_string(), t))
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
        _ => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            Ok(("standard input".into(), text))
        }
    }
}
