//! Structural checks on the workspace, run as ordinary tests by `cargo test`.

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::util::{cargo, output};

    /// The layer of each crate: a crate may depend only on crates of a lower layer.
    /// core ← paseto, jwt, opaque ← policy ← tools.
    fn layer(name: &str) -> u8 {
        match name {
            "token-core" => 0,
            "token-paseto" | "token-jwt" | "token-opaque" => 1,
            "token-policy" => 2,
            // The facade re-exports every crate, the axum integration included.
            "tessera" => 4,
            // Tools: token-axum, tokenctl, and this repository's own (token-bench,
            // token-fuzz, token-faults — the fault-injection checker — and xtask).
            _ => 3,
        }
    }

    #[test]
    fn dependencies_point_down_the_layers() {
        let json = output(cargo().args(["metadata", "--format-version", "1", "--no-deps"]))
            .expect("cargo metadata");
        let meta: Value = serde_json::from_str(&json).expect("metadata JSON");
        let packages = meta["packages"].as_array().expect("packages");
        let names: Vec<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
        for crate_name in [
            "token-core",
            "token-paseto",
            "token-jwt",
            "token-opaque",
            "token-policy",
        ] {
            assert!(
                names.contains(&crate_name),
                "{crate_name} is missing from the workspace"
            );
        }
        let mut violations = Vec::new();
        for p in packages {
            let name = p["name"].as_str().expect("name");
            for dep in p["dependencies"].as_array().expect("dependencies") {
                let dep_name = dep["name"].as_str().expect("dependency name");
                if dep_name == name || !names.contains(&dep_name) {
                    continue;
                }
                if layer(dep_name) >= layer(name) {
                    violations.push(format!("{name} -> {dep_name}"));
                }
            }
        }
        assert!(
            violations.is_empty(),
            "upward or sideways dependencies: {violations:?}"
        );
    }

    #[allow(clippy::case_sensitive_file_extension_comparisons)]
    /// Every test `docs/SECURITY.md` cites exists: `crate/path.rs::name` (a bare
    /// `::name` refers to the last file named before it).
    /// A path under `crates/`: `token-…/…rs` or `tokenctl/…rs`.
    fn is_crate_path(path: &str) -> bool {
        (path.starts_with("token-")
            || path.starts_with("tokenctl/")
            || path.starts_with("tessera/"))
            && path.ends_with(".rs")
    }

    #[test]
    fn security_claims_name_existing_tests() {
        let root = crate::util::root();
        let doc = std::fs::read_to_string(root.join("docs/SECURITY.md")).expect("SECURITY.md");
        // Crate directories are `token-*` and `tokenctl`.
        let mut file: Option<String> = None;
        let mut checked = 0;
        for span in doc.split('`').skip(1).step_by(2) {
            let Some((path, name)) = span.rsplit_once("::") else {
                continue;
            };
            let path = if path.is_empty() || path.contains("::") {
                let head = path.split("::").next().unwrap_or_default();
                if is_crate_path(head) {
                    Some(head.to_owned())
                } else if head.is_empty() {
                    file.clone()
                } else {
                    None
                }
            } else if is_crate_path(path) {
                Some(path.to_owned())
            } else {
                None
            };
            let Some(path) = path else { continue };
            file = Some(path.clone());
            if name == "tests" {
                continue;
            }
            let text = std::fs::read_to_string(root.join("crates").join(&path))
                .unwrap_or_else(|e| panic!("SECURITY.md cites {path}: {e}"));
            assert!(
                text.contains(&format!("fn {name}(")),
                "SECURITY.md cites {path}::{name}, which does not exist"
            );
            checked += 1;
        }
        assert!(checked > 20, "only {checked} citations found");
    }

    /// The crates.io category slugs this workspace uses or may reasonably use: a subset of
    /// crates.io's `src/boot/categories.toml`. Check a new one there before adding it.
    const CATEGORIES: &[&str] = &[
        "asynchronous",
        "authentication",
        "command-line-utilities",
        "cryptography",
        "database",
        "development-tools",
        "development-tools::build-utils",
        "development-tools::profiling",
        "development-tools::testing",
        "encoding",
        "network-programming",
        "parser-implementations",
        "web-programming",
        "web-programming::http-client",
        "web-programming::http-server",
    ];

    /// A keyword crates.io accepts: at most 20 ASCII letters, digits, `_`, `-` or `+`,
    /// starting with a letter or digit.
    fn is_keyword(word: &str) -> bool {
        word.len() <= 20
            && word.starts_with(|c: char| c.is_ascii_alphanumeric())
            && word
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
    }

    fn strings(value: &Value) -> Vec<&str> {
        value
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// Every workspace member says what it is and under which licence, points at its
    /// README, and carries keywords and categories crates.io accepts. A member that is
    /// published ships the licence texts and, if it is a library, builds on docs.rs with
    /// every feature.
    #[test]
    fn every_member_carries_publishing_metadata() {
        let root = crate::util::root();
        let json = output(cargo().args(["metadata", "--format-version", "1", "--no-deps"]))
            .expect("cargo metadata");
        let meta: Value = serde_json::from_str(&json).expect("metadata JSON");
        let mut problems = Vec::new();
        for p in meta["packages"].as_array().expect("packages") {
            let name = p["name"].as_str().expect("name");
            let dir = std::path::Path::new(p["manifest_path"].as_str().expect("manifest path"))
                .parent()
                .expect("package directory")
                .to_path_buf();
            let mut problem = |what: &str| problems.push(format!("{name}: {what}"));

            if p["description"].as_str().is_none_or(str::is_empty) {
                problem("no description");
            }
            if p["license"].as_str() != Some("MIT OR Apache-2.0") {
                problem("license is not \"MIT OR Apache-2.0\"");
            }
            match p["readme"].as_str() {
                Some(readme) if dir.join(readme).is_file() => {}
                Some(readme) => problem(&format!("readme {readme} does not exist")),
                None => problem("no readme"),
            }
            let keywords = strings(&p["keywords"]);
            if keywords.is_empty() || keywords.len() > 5 {
                problem("keywords: between 1 and 5 are needed");
            }
            for word in keywords.iter().filter(|w| !is_keyword(w)) {
                problem(&format!("keyword {word:?} is not one crates.io accepts"));
            }
            let categories = strings(&p["categories"]);
            if categories.is_empty() || categories.len() > 5 {
                problem("categories: between 1 and 5 are needed");
            }
            for slug in categories.iter().filter(|c| !CATEGORIES.contains(c)) {
                problem(&format!("category {slug:?} is not a known crates.io slug"));
            }

            // `publish = false` is an empty registry list; absent means crates.io.
            let published = p["publish"].as_array().is_none_or(|r| !r.is_empty());
            if !published {
                continue;
            }
            for licence in ["LICENSE-MIT", "LICENSE-APACHE"] {
                let shipped = std::fs::read(dir.join(licence)).ok();
                let text = std::fs::read(root.join(licence)).ok();
                if shipped.is_none() || shipped != text {
                    problem(&format!(
                        "{licence} is not the workspace's (link ../../{licence})"
                    ));
                }
            }
            let is_lib = p["targets"].as_array().expect("targets").iter().any(|t| {
                strings(&t["kind"])
                    .iter()
                    .any(|k| matches!(*k, "lib" | "rlib" | "proc-macro"))
            });
            let docs_rs = &p["metadata"]["docs"]["rs"];
            if is_lib
                && (docs_rs["all-features"] != Value::Bool(true)
                    || !strings(&docs_rs["rustdoc-args"]).contains(&"docsrs"))
            {
                problem(
                    "[package.metadata.docs.rs] needs all-features = true and \
                     rustdoc-args = [\"--cfg\", \"docsrs\"]",
                );
            }
        }
        assert!(
            problems.is_empty(),
            "publishing metadata:\n{}",
            problems.join("\n")
        );
    }

    /// The README's crate table names every published member, linked to its directory:
    /// a crate missing from it (token-axum once was) is a crate users do not find.
    #[test]
    fn the_readme_crate_table_names_every_published_member() {
        let root = crate::util::root();
        let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
        let table: Vec<&str> = readme
            .lines()
            .skip_while(|l| *l != "## Crates")
            .take_while(|l| !l.starts_with("Dependencies point one way"))
            .filter(|l| l.starts_with("| [`"))
            .collect();
        let json = output(cargo().args(["metadata", "--format-version", "1", "--no-deps"]))
            .expect("cargo metadata");
        let meta: Value = serde_json::from_str(&json).expect("metadata JSON");
        let mut missing = Vec::new();
        for p in meta["packages"].as_array().expect("packages") {
            let published = p["publish"].as_array().is_none_or(|r| !r.is_empty());
            let name = p["name"].as_str().expect("name");
            let row = format!("| [`{name}`](crates/{name}) |");
            if published && !table.iter().any(|l| l.starts_with(&row)) {
                missing.push(name.to_owned());
            }
        }
        assert!(
            missing.is_empty(),
            "README.md's crate table lacks: {}",
            missing.join(", ")
        );
    }

    /// The licence texts and the changelog live at the root.
    #[test]
    fn licences_and_changelog_exist() {
        let root = crate::util::root();
        let read = |file: &str| {
            std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
        };
        let mit = read("LICENSE-MIT");
        assert!(mit.starts_with("MIT License") && mit.contains("The tessera developers"));
        let apache = read("LICENSE-APACHE");
        assert!(apache.contains("Apache License") && apache.contains("Version 2.0, January 2004"));
        let changelog = read("CHANGELOG.md");
        assert!(
            changelog.contains("keepachangelog.com") && changelog.contains("\n## [Unreleased]\n"),
            "CHANGELOG.md follows Keep a Changelog, with an [Unreleased] section"
        );
    }

    /// The lean builds (`ci::LEAN_BUILDS`: PASETO and SQLite, no JWT, no PostgreSQL, no
    /// Redis, no telemetry) leave out OpenSSL, josekit, sqlx, the Redis client and the
    /// `tracing` and `metrics` crates: a feature that stops being optional, or a
    /// dependency that pulls one of them back in, fails here.
    /// What a lean build must not depend on, by crate name or name prefix (`openssl`
    /// covers `openssl-sys`, `sqlx` covers `sqlx-postgres`, `tracing` covers
    /// `tracing-core`).
    const HEAVY: &[&str] = &["openssl", "josekit", "sqlx", "redis", "tracing", "metrics"];

    #[test]
    fn lean_builds_leave_out_the_heavy_dependencies() {
        use crate::ci::LEAN_BUILDS;
        let mut checked = 0;
        for build in LEAN_BUILDS {
            if !build.exists() {
                println!(
                    "SKIPPED: {} does not exist (yet): `cargo tree {}` not checked",
                    build.manifest,
                    build.describe()
                );
                continue;
            }
            let tree = output(
                cargo()
                    .args([
                        "tree", "-e", "normal", "--prefix", "none", "--format", "{p}",
                    ])
                    .args(build.args()),
            )
            .unwrap_or_else(|e| panic!("cargo tree {}: {e}", build.describe()));
            let mut heavy: Vec<&str> = tree
                .lines()
                .filter_map(|line| line.split_whitespace().next())
                .filter(|name| {
                    HEAVY.iter().any(|h| {
                        *name == *h || name.strip_prefix(h).is_some_and(|r| r.starts_with('-'))
                    })
                })
                .collect();
            heavy.sort_unstable();
            heavy.dedup();
            assert!(
                heavy.is_empty(),
                "`cargo tree -e normal {}` holds {heavy:?}",
                build.describe()
            );
            checked += 1;
        }
        assert!(checked >= 2, "only {checked} lean builds checked");
    }

    #[test]
    fn layers_are_ordered() {
        assert!(layer("token-core") < layer("token-jwt"));
        assert_eq!(layer("token-jwt"), layer("token-paseto"));
        assert!(layer("token-opaque") < layer("token-policy"));
        assert!(layer("token-policy") < layer("tokenctl"));
    }
}
