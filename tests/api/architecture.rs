//! The layering DESIGN.md asks for, checked on the source: the rules (one folder a capability)
//! know no GraphQL, no HTTP and no `AppState`, and the capabilities form a one-way stack.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The capability folders under `src/`: rules only.
const CAPABILITIES: &[&str] = &[
    "campaigns",
    "customers",
    "email",
    "orders",
    "loyalty",
    "rewards",
    "referrals",
    "carts",
    "metrics",
    "rollups",
    "live",
    "delivery",
    "effects",
];

/// What a rules file must not name.
const FORBIDDEN: &[&str] = &[
    "async_graphql",
    "crate::graphql",
    "crate::state",
    "AppState",
    "crate::http",
    "crate::server",
    "crate::jobs",
    "crate::reactions",
    "actix_web",
];

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_rules_file_imports_graphql_http_or_the_app_state() {
    let mut offences = Vec::new();
    for capability in CAPABILITIES {
        for file in rust_files(&source_root().join(capability)) {
            let text = std::fs::read_to_string(&file).unwrap();
            for (number, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for name in FORBIDDEN {
                    if code.contains(name) {
                        offences.push(format!("{}:{}: {name}", file.display(), number + 1));
                    }
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "rules must not know these layers:\n{}",
        offences.join("\n")
    );
}

/// The capabilities each capability's files name as `crate::<capability>`.
fn dependencies() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let mut graph = BTreeMap::new();
    for &capability in CAPABILITIES {
        let mut uses = BTreeSet::new();
        for file in rust_files(&source_root().join(capability)) {
            let text = std::fs::read_to_string(&file).unwrap();
            for &other in CAPABILITIES {
                if other != capability
                    && (text.contains(&format!("crate::{other}::"))
                        || text.contains(&format!("crate::{other};"))
                        || text.contains(&format!("crate::{other}}}")))
                {
                    uses.insert(other);
                }
            }
        }
        graph.insert(capability, uses);
    }
    graph
}

fn find_cycle(
    graph: &BTreeMap<&'static str, BTreeSet<&'static str>>,
    node: &'static str,
    path: &mut Vec<&'static str>,
    done: &mut BTreeSet<&'static str>,
) -> Option<Vec<&'static str>> {
    if let Some(start) = path.iter().position(|n| *n == node) {
        let mut cycle = path[start..].to_vec();
        cycle.push(node);
        return Some(cycle);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node);
    for &next in &graph[node] {
        if let Some(cycle) = find_cycle(graph, next, path, done) {
            return Some(cycle);
        }
    }
    path.pop();
    done.insert(node);
    None
}

#[test]
fn the_capabilities_form_a_one_way_stack() {
    let graph = dependencies();
    let mut done = BTreeSet::new();
    for &capability in CAPABILITIES {
        if let Some(cycle) = find_cycle(&graph, capability, &mut Vec::new(), &mut done) {
            panic!(
                "capabilities call each other in a circle: {}\n(the whole graph: {graph:?})",
                cycle.join(" -> ")
            );
        }
    }
}

#[test]
fn the_check_sees_a_circle_when_there_is_one() {
    let graph = BTreeMap::from([
        ("orders", BTreeSet::from(["carts"])),
        ("carts", BTreeSet::from(["orders"])),
    ]);
    let cycle = find_cycle(&graph, "orders", &mut Vec::new(), &mut BTreeSet::new());
    assert_eq!(cycle, Some(vec!["orders", "carts", "orders"]));
}
