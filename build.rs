//! Bundles GraphiQL into the binary, so the playground works on a machine with no internet: the
//! pinned npm packages in `assets/graphiql` (installed here with `npm ci` when missing) give
//! their browser builds and licences, which are copied to `OUT_DIR` and embedded with
//! `include_bytes!`. Without npm the build still succeeds; the page then says how to get the
//! assets.

use std::path::{Path, PathBuf};
use std::process::Command;

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

fn main() {
    println!("cargo:rerun-if-changed=assets/graphiql/package.json");
    println!("cargo:rerun-if-changed=assets/graphiql/package-lock.json");
    println!("cargo:rustc-check-cfg=cfg(graphiql_missing)");
    let assets = Path::new("assets/graphiql");
    let modules = assets.join("node_modules");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("graphiql");
    std::fs::create_dir_all(&out).expect("OUT_DIR is writable");

    let installed = || FILES.iter().all(|(_, from)| modules.join(from).exists());
    if !installed() {
        let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
        let status = Command::new(npm)
            .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
            .current_dir(assets)
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
            std::fs::write(out.join(name), b"").expect("OUT_DIR is writable");
        }
        std::fs::write(out.join("LICENSES.txt"), b"").expect("OUT_DIR is writable");
        return;
    }
    for (name, from) in FILES {
        std::fs::copy(modules.join(from), out.join(name)).expect("copying a GraphiQL asset");
    }
    let mut licences = String::new();
    for (package, from) in LICENCES {
        let text = std::fs::read_to_string(modules.join(from)).unwrap_or_default();
        licences.push_str(&format!("== {package}\n\n{text}\n\n"));
    }
    std::fs::write(out.join("LICENSES.txt"), licences).expect("OUT_DIR is writable");
}
