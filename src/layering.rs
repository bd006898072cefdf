//! The check that dependencies among src/'s top-level modules run one way (lib.rs, "Layout").
//! Every module has a layer; a module may use modules of its own layer or below, never above,
//! and the modules of one layer must not form a cycle. A new top-level module needs a line in
//! [`LAYERS`]. A use is any `crate::module` path in code (comments are not read).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Bottom first.
const LAYERS: &[&[&str]] = &[
    &["clock", "config", "files", "ids", "names"],
    &["store"],
    &["protocol"],
    &["auth", "limits", "sockets", "bots", "rooms"],
    &["http"],
    &["api", "oauth", "ws", "web"],
    &["app", "admin", "backup"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The top-level modules each top-level module uses.
fn uses(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = vec![src.to_path_buf()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                files.push(entry.unwrap().path());
            }
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let relative = path.strip_prefix(src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let module = first.to_str().unwrap().trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" || module == "layering" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let used = graph.entry(module.clone()).or_default();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            for (at, _) in code.match_indices("crate::") {
                let rest = &code[at + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    used.insert(name);
                }
            }
        }
    }
    graph
}

/// A cycle among `modules` in `graph`, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>, modules: &[&str]) -> Option<Vec<String>> {
    fn visit(
        graph: &BTreeMap<String, BTreeSet<String>>,
        modules: &[&str],
        at: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == at) {
            let mut found = path[start..].to_vec();
            found.push(at.to_string());
            return Some(found);
        }
        if done.contains(at) {
            return None;
        }
        path.push(at.to_string());
        for next in graph.get(at).into_iter().flatten() {
            if modules.contains(&next.as_str()) {
                if let Some(found) = visit(graph, modules, next, path, done) {
                    return Some(found);
                }
            }
        }
        path.pop();
        done.insert(at.to_string());
        None
    }
    let mut done = BTreeSet::new();
    modules
        .iter()
        .find_map(|m| visit(graph, modules, m, &mut Vec::new(), &mut done))
}

#[test]
fn dependencies_run_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = uses(&src);
    let mut wrong = Vec::new();
    for (module, used) in &graph {
        let Some(layer) = layer_of(module) else {
            wrong.push(format!("{module} has no layer in src/layering.rs"));
            continue;
        };
        for dependency in used {
            match layer_of(dependency) {
                Some(below) if below <= layer => {}
                Some(_) => wrong.push(format!("{module} uses {dependency}, a layer above it")),
                None => wrong.push(format!("{module} uses {dependency}, which has no layer")),
            }
        }
    }
    for layer in LAYERS {
        if let Some(found) = cycle(&graph, layer) {
            wrong.push(format!("a cycle: {}", found.join(" → ")));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The check reads what it should: the rooms use the protocol, the app uses nearly all.
    assert!(graph["rooms"].contains("protocol"));
    assert!(graph["app"].len() > 8, "{:?}", graph["app"]);
}
