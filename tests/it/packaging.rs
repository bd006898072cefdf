//! Files generated from config.toml stay in step with it, and the packaging pieces agree with
//! each other: packaging/hearth.toml (the Debian package's /etc/hearth/config.toml), the
//! configuration reference in docs/operations.md, the systemd unit and the package metadata.
//!
//! A stale generated file fails with the fix: `UPDATE_GENERATED=1 cargo test --test it packaging::`
//! rewrites it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Compares a generated file with what it should be, or rewrites it when asked to.
fn check_generated(path: &str, expected: &str) {
    let actual = read(path);
    if actual == expected {
        return;
    }
    if std::env::var_os("UPDATE_GENERATED").is_some() {
        std::fs::write(repo(path), expected).unwrap();
        return;
    }
    panic!(
        "{path} is out of step with config.toml; run `UPDATE_GENERATED=1 cargo test --test \
         it packaging::` to regenerate it"
    );
}

const PACKAGED_HEADER: &str = "\
# /etc/hearth/config.toml: the configuration of the hearth service (hearth.service), installed
# by the Debian package. Change it, then `sudo systemctl restart hearth`. It is the repository's
# config.toml with two keys changed: `bind` listens on every interface, so that phones and
# laptops on your network can reach hearth (use 127.0.0.1:7878 behind a reverse proxy on this
# machine), and `data_dir` is /var/lib/hearth, the service's state directory. It is readable
# by the hearth account only, as it may hold OAuth client secrets.
#
";

/// packaging/hearth.toml as it must be.
fn packaged_config() -> String {
    let source = read("config.toml");
    let mut out = String::from(PACKAGED_HEADER);
    let mut replaced = 0;
    for line in source.lines() {
        let line = match line {
            "bind = \"127.0.0.1:7878\"" => {
                replaced += 1;
                "bind = \"0.0.0.0:7878\""
            }
            "data_dir = \"hearth-data\"" => {
                replaced += 1;
                "data_dir = \"/var/lib/hearth\""
            }
            other => other,
        };
        out.push_str(line);
        out.push('\n');
    }
    assert_eq!(
        replaced, 2,
        "config.toml's bind and data_dir lines changed shape"
    );
    out
}

#[test]
fn packaged_config_is_config_toml_for_the_service() {
    let expected = packaged_config();
    check_generated("packaging/hearth.toml", &expected);
    // And hearth reads it: every key known, every value of the right type.
    let config: hearth::Config = toml::from_str(&expected).expect("packaging/hearth.toml parses");
    assert_eq!(config.data_dir, Path::new("/var/lib/hearth"));
    assert_eq!(config.bind.to_string(), "0.0.0.0:7878");
}

/// One documented key of config.toml.
struct Key {
    name: String,
    default: String,
    about: String,
}

/// The keys of config.toml in order, each with the comment lines just above it. Commented-out
/// examples (`# key = ...` lines) are not keys.
fn keys_of(config: &str) -> Vec<Key> {
    let mut keys = Vec::new();
    let mut section = String::new();
    let mut comment: Vec<String> = Vec::new();
    for line in config.lines() {
        let line = line.trim_end();
        if let Some(text) = line.strip_prefix('#') {
            comment.push(text.trim().to_string());
        } else if line.starts_with('[') {
            section = line.trim_matches(['[', ']']).to_string();
            comment.clear();
        } else if let Some((key, value)) = line.split_once(" = ") {
            let name = if section.is_empty() {
                key.to_string()
            } else {
                format!("{section}.{key}")
            };
            keys.push(Key {
                name,
                default: value.to_string(),
                about: comment.join(" "),
            });
            comment.clear();
        } else {
            comment.clear();
        }
    }
    keys
}

fn reference_table(config: &str) -> String {
    let mut out =
        String::from("| key | default | environment variable | meaning |\n|---|---|---|---|\n");
    for key in keys_of(config) {
        let env = format!(
            "HEARTH_{}",
            key.name.replace('.', "__").to_ascii_uppercase()
        );
        let cell = |text: &str| text.replace('|', "\\|");
        out.push_str(&format!(
            "| `{}` | `{}` | `{env}` | {} |\n",
            key.name,
            cell(&key.default),
            cell(&key.about)
        ));
    }
    out
}

const START: &str =
    "<!-- config-reference:start (generated from config.toml by tests/it/packaging.rs) -->\n";
const END: &str = "<!-- config-reference:end -->";

#[test]
fn operations_md_config_reference_is_generated_from_config_toml() {
    let doc = read("docs/operations.md");
    let start = doc
        .find(START)
        .expect("docs/operations.md has the reference's start marker");
    let end = doc
        .find(END)
        .expect("docs/operations.md has the reference's end marker");
    let expected = format!(
        "{}{START}{}{}",
        &doc[..start],
        reference_table(&read("config.toml")),
        &doc[end..]
    );
    check_generated("docs/operations.md", &expected);
    // Every key of the built-in configuration is in the table.
    let defaults: toml::Table = toml::from_str(&hearth::Config::default().to_toml()).unwrap();
    fn walk(prefix: &str, table: &toml::Table, doc: &str) {
        for (key, value) in table {
            let name = format!("{prefix}{key}");
            match value.as_table() {
                Some(inner) => walk(&format!("{name}."), inner, doc),
                None => assert!(doc.contains(&format!("| `{name}` |")), "{name} is missing"),
            }
        }
    }
    walk("", &defaults, &expected);
}

fn unit_value<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|line| line.strip_prefix(&format!("{key}=")))
        .collect()
}

#[test]
fn the_unit_the_package_and_the_packaged_config_agree() {
    let unit = read("packaging/hearth.service");
    let manifest: toml::Table = toml::from_str(&read("Cargo.toml")).unwrap();
    let deb = &manifest["package"]["metadata"]["deb"];
    let assets: Vec<(String, String)> = deb["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a[0].as_str().unwrap().to_string(),
                a[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(assets.contains(&("target/release/hearth".into(), "usr/bin/".into())));
    // Which build that names: the fully optimised one.
    assert_eq!(deb["profile"].as_str(), Some("dist"));
    assert!(assets.contains(&(
        "packaging/hearth.toml".into(),
        "etc/hearth/config.toml".into()
    )));
    assert_eq!(
        unit_value(&unit, "ExecStart"),
        ["/usr/bin/hearth serve --config /etc/hearth/config.toml"]
    );
    // The state directory is the data directory, and the only writable path.
    assert_eq!(unit_value(&unit, "StateDirectory"), ["hearth"]);
    assert_eq!(unit_value(&unit, "WorkingDirectory"), ["/var/lib/hearth"]);
    assert_eq!(unit_value(&unit, "ProtectSystem"), ["strict"]);
    assert_eq!(unit_value(&unit, "NoNewPrivileges"), ["yes"]);
    assert!(unit_value(&unit, "ReadWritePaths").is_empty());
    let config: hearth::Config = toml::from_str(&read("packaging/hearth.toml")).unwrap();
    assert_eq!(config.data_dir, Path::new("/var/lib/hearth"));
    // The account the unit runs as is the one the package creates.
    assert_eq!(unit_value(&unit, "User"), ["hearth"]);
    let postinst = read("packaging/debian/postinst");
    assert!(postinst.contains("adduser --system --group --home /var/lib/hearth"));
    assert!(postinst.contains("#DEBHELPER#"));
}
