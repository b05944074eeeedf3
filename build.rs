//! Two things go into the binary at build time:
//!
//! - every file under `templates/`, so a new email is one new template folder (no list to keep
//!   in step);
//! - GraphiQL, so the playground works on a machine with no internet: the pinned npm packages in
//!   `assets/graphiql` (installed here with `npm ci` when missing) give their browser builds and
//!   licences, which are copied to `OUT_DIR` and embedded with `include_bytes!`. Without npm the
//!   build still succeeds; the page then says how to get the assets.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

fn main() {
    embed_templates();
    bundle_graphiql();
}

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

fn embed_templates() {
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

/// Where each embedded file comes from, under `assets/graphiql/node_modules`.
const FILES: &[(&str, &str)] = &[
    ("graphiql.min.js", "graphiql/graphiql.min.js"),
    ("graphiql.min.css", "graphiql/graphiql.min.css"),
    (
        "react.production.min.js",
        "react/umd/react.production.min.js",
    ),
    (
        "react-dom.production.min.js",
        "react-dom/umd/react-dom.production.min.js",
    ),
];
const LICENCES: &[(&str, &str)] = &[
    ("graphiql", "graphiql/LICENSE"),
    ("react", "react/LICENSE"),
    ("react-dom", "react-dom/LICENSE"),
];

fn bundle_graphiql() {
    println!("cargo:rerun-if-changed=assets/graphiql/package.json");
    println!("cargo:rerun-if-changed=assets/graphiql/package-lock.json");
    println!("cargo:rustc-check-cfg=cfg(graphiql_missing)");
    let root =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let assets = root.join("assets/graphiql");
    let modules = assets.join("node_modules");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("graphiql");
    fs::create_dir_all(&out).expect("OUT_DIR is writable");

    let installed = || FILES.iter().all(|(_, from)| modules.join(from).exists());
    if !installed() {
        let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
        let status = Command::new(npm)
            .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
            .current_dir(&assets)
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            println!(
                "cargo:warning=GraphiQL is not bundled: `npm ci` in assets/graphiql failed ({status:?}); install Node.js and npm, then rebuild"
            );
        }
    }
    if !installed() {
        println!("cargo:rustc-cfg=graphiql_missing");
        for (name, _) in FILES {
            fs::write(out.join(name), b"").expect("OUT_DIR is writable");
        }
        fs::write(out.join("LICENSES.txt"), b"").expect("OUT_DIR is writable");
        return;
    }
    for (name, from) in FILES {
        fs::copy(modules.join(from), out.join(name)).expect("copying a GraphiQL asset");
    }
    let mut licences = String::new();
    for (package, from) in LICENCES {
        let text = fs::read_to_string(modules.join(from)).unwrap_or_default();
        licences.push_str(&format!("== {package}\n\n{text}\n\n"));
    }
    fs::write(out.join("LICENSES.txt"), licences).expect("OUT_DIR is writable");
}
