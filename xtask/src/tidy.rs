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
    #[test]
    fn security_claims_name_existing_tests() {
        let root = crate::util::root();
        let doc = std::fs::read_to_string(root.join("docs/SECURITY.md")).expect("SECURITY.md");
        // Crate directories are `token-*` and `tokenctl`.
        let is_test_file = |p: &str| p.starts_with("token") && p.ends_with(".rs");
        let mut file: Option<String> = None;
        let mut checked = 0;
        for span in doc.split('`').skip(1).step_by(2) {
            let Some((path, name)) = span.rsplit_once("::") else {
                continue;
            };
            let path = if path.is_empty() || path.contains("::") {
                let head = path.split("::").next().unwrap_or_default();
                if is_test_file(head) {
                    Some(head.to_owned())
                } else if head.is_empty() {
                    file.clone()
                } else {
                    None
                }
            } else if is_test_file(path) {
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

    #[test]
    fn layers_are_ordered() {
        assert!(layer("token-core") < layer("token-jwt"));
        assert_eq!(layer("token-jwt"), layer("token-paseto"));
        assert!(layer("token-opaque") < layer("token-policy"));
        assert!(layer("token-policy") < layer("tokenctl"));
    }
}
