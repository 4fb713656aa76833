//! README's Layout table matches the tree: every path it names exists, and every top-level
//! folder of the repository (and every module folder of the operator and the core) is named.
//! A newcomer reads that table first; a stale row sends them to a file that is not there.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the operator crate sits in the repository")
        .to_path_buf()
}

/// The first-column paths of the table under `## Layout`, as written (`scaling/`, `.ci/run`).
fn layout_paths(readme: &str) -> Vec<String> {
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Layout"))
        .expect("README.md has a `## Layout` section");
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`').map(|(path, _)| path.to_string()))
        .collect()
}

/// Folders directly under `dir` that hold something git would see (not hidden, not generated).
fn folders(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| !name.starts_with('.') && name != "target")
        .collect()
}

#[test]
fn every_path_in_the_layout_table_exists() {
    let root = repo();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let paths = layout_paths(&readme);
    assert!(paths.len() >= 10, "the Layout table looks empty: {paths:?}");
    let missing: Vec<&String> = paths
        .iter()
        .filter(|p| !root.join(p.trim_end_matches('/')).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "README's Layout names paths that do not exist: {missing:?}"
    );
}

#[test]
fn every_top_level_and_module_folder_is_in_the_layout_table() {
    let root = repo();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let named: BTreeSet<String> = layout_paths(&readme)
        .into_iter()
        .map(|p| p.trim_end_matches('/').to_string())
        .collect();
    let mut expected: Vec<String> = folders(&root).into_iter().collect();
    for dir in ["operator/src", "scaling/src", "e2e"] {
        expected.extend(
            folders(&root.join(dir))
                .into_iter()
                .filter(|f| {
                    !matches!(
                        f.as_str(),
                        "src" | "tests" | "artifacts" | "traces" | "examples"
                    )
                })
                .map(|f| format!("{dir}/{f}")),
        );
    }
    let unlisted: Vec<&String> = expected
        .iter()
        .filter(|f| !named.contains(f.as_str()))
        .collect();
    assert!(
        unlisted.is_empty(),
        "folders missing from README's Layout table: {unlisted:?}"
    );
}
