//! Embeds every file under `templates/` into the binary, so a new email is one new template
//! folder: no list to keep in step.

use std::path::{Path, PathBuf};
use std::{env, fs};

fn files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, found);
        } else {
            found.push(path);
        }
    }
}

fn main() {
    let root =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let templates = root.join("templates");
    println!("cargo:rerun-if-changed=templates");
    let mut found = Vec::new();
    files(&templates, &mut found);
    found.sort();
    let mut code = String::from("&[\n");
    for path in found {
        let name = path
            .strip_prefix(&templates)
            .expect("found under templates/")
            .to_string_lossy()
            .replace('\\', "/");
        code.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    code.push_str("]\n");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("templates.rs");
    fs::write(out, code).expect("OUT_DIR is writable");
}
