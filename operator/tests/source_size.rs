//! Every Rust file of the operator, the decision core and the metrics client stays readable in
//! one sitting: at most 600 lines before its test module (issue #12's rooms).

use std::path::{Path, PathBuf};

const LIMIT: usize = 600;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// Lines before the first `#[cfg(test)]`, or all lines when there is none.
fn lines_before_tests(text: &str) -> usize {
    text.lines()
        .position(|l| l.trim_start().starts_with("#[cfg(test)]"))
        .unwrap_or_else(|| text.lines().count())
}

#[test]
fn no_source_file_has_more_than_600_lines_before_its_tests() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["operator/src", "scaling/src", "metrics-client/src"] {
        rust_files(&repo.join(dir), &mut files);
    }
    assert!(files.len() > 30, "found only {} files", files.len());
    let long: Vec<(String, usize)> = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).expect("source file");
            (f.display().to_string(), lines_before_tests(&text))
        })
        .filter(|(_, n)| *n > LIMIT)
        .collect();
    assert!(
        long.is_empty(),
        "over {LIMIT} lines before the tests: {long:?}"
    );
}

#[test]
fn the_count_stops_at_the_test_module() {
    assert_eq!(lines_before_tests("a\nb\n#[cfg(test)]\nmod tests {}\n"), 2);
    assert_eq!(lines_before_tests("a\nb\nc\n"), 3);
}
