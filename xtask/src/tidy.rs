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

    #[test]
    fn layers_are_ordered() {
        assert!(layer("token-core") < layer("token-jwt"));
        assert_eq!(layer("token-jwt"), layer("token-paseto"));
        assert!(layer("token-opaque") < layer("token-policy"));
        assert!(layer("token-policy") < layer("tokenctl"));
    }
}
