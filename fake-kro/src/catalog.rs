//! The kinds a check resolves templates against, as kro's schema resolver and REST mapper would:
//! every built-in kind of the targeted Kubernetes version, plus CRDs (read from files with
//! `--crds`, or from the API server in `run` mode). A closed catalog serves only its CRDs, as
//! kro's unit-test world does; a served-only catalog is all a cluster serves, so a kind outside
//! it is kro's error as on that cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::kinds;

/// A kind's schema and scope.
#[derive(Clone, Debug, PartialEq)]
pub struct KindSchema {
    /// The whole object's OpenAPI schema, `metadata` as the API server publishes it.
    pub schema: Value,
    pub namespaced: bool,
}

/// Why CRDs could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not YAML: {message}")]
    Yaml { path: PathBuf, message: String },
}

/// Built-in kinds (unless closed) and CRDs by (apiVersion, kind).
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    crds: BTreeMap<(String, String), KindSchema>,
    closed: bool,
    served_only: bool,
}

impl Catalog {
    /// A catalog that serves only the CRDs added to it (no built-in kinds), where a kind
    /// without a schema is an error rather than a warning: kro's unit-test world.
    pub fn closed() -> Self {
        Self {
            crds: BTreeMap::new(),
            closed: true,
            served_only: false,
        }
    }

    /// Whether a kind this catalog does not know is an error in kro's unit-test words.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// This catalog as everything a cluster serves (`fake-kro check --served-only`): a kind
    /// outside it is refused in the words kro's schema resolver uses on a cluster.
    pub fn served_only(mut self) -> Self {
        self.served_only = true;
        self
    }

    /// Whether this catalog is everything a cluster serves.
    pub fn is_served_only(&self) -> bool {
        self.served_only
    }

    /// Whether any kind of a group version is served (a CRD's or, unless closed, a built-in
    /// one).
    pub fn serves_api_version(&self, api_version: &str) -> bool {
        self.crds.keys().any(|(served, _)| served == api_version)
            || (!self.closed && kinds::serves_api_version(api_version))
    }

    /// Adds one CRD object (every served version); how many kinds it added. Anything that is
    /// not a CRD is ignored.
    pub fn add_crd(&mut self, crd: &Value) -> usize {
        if crd.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition") {
            return 0;
        }
        let Some(spec) = crd.get("spec") else {
            return 0;
        };
        let group = spec
            .get("group")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(kind) = spec.pointer("/names/kind").and_then(Value::as_str) else {
            return 0;
        };
        let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
        let mut added = 0;
        for version in spec
            .get("versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if version.get("served").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let Some(name) = version.get("name").and_then(Value::as_str) else {
                continue;
            };
            let api_version = if group.is_empty() {
                name.to_string()
            } else {
                format!("{group}/{name}")
            };
            let schema = version
                .pointer("/schema/openAPIV3Schema")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"}));
            self.crds.insert(
                (api_version, kind.to_string()),
                KindSchema {
                    schema: published(schema),
                    namespaced,
                },
            );
            added += 1;
        }
        added
    }

    /// Adds every CRD of a YAML text: several documents, `kind: List` (`kubectl get crd -o
    /// yaml`) or single objects.
    pub fn add_yaml(&mut self, text: &str) -> Result<usize, String> {
        let mut added = 0;
        for document in yaml_serde::Deserializer::from_str(text) {
            let value: Value =
                serde::Deserialize::deserialize(document).map_err(|e| e.to_string())?;
            added += self.add_value(&value);
        }
        Ok(added)
    }

    fn add_value(&mut self, value: &Value) -> usize {
        match value.get("items").and_then(Value::as_array) {
            Some(items)
                if value.get("kind").and_then(Value::as_str)
                    != Some("CustomResourceDefinition") =>
            {
                items.iter().map(|item| self.add_value(item)).sum()
            }
            _ => self.add_crd(value),
        }
    }

    /// Adds the CRDs of a file, or of every `.yaml`/`.yml`/`.json` file under a folder.
    pub fn load(&mut self, path: &Path) -> Result<usize, CatalogError> {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| CatalogError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            let mut added = 0;
            for child in paths {
                let is_document = child
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
                if child.is_dir() || is_document {
                    added += self.load(&child)?;
                }
            }
            return Ok(added);
        }
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.add_yaml(&text).map_err(|message| CatalogError::Yaml {
            path: path.to_path_buf(),
            message,
        })
    }

    /// The schema and scope of a kind: a CRD first, then (unless closed) a built-in kind.
    pub fn resolve(&self, api_version: &str, kind: &str) -> Option<KindSchema> {
        if let Some(found) = self.crds.get(&(api_version.to_string(), kind.to_string())) {
            return Some(found.clone());
        }
        if self.closed {
            return None;
        }
        Some(KindSchema {
            schema: kinds::schema(api_version, kind)?,
            namespaced: kinds::namespaced(api_version, kind)?,
        })
    }
}

/// kro's words for a child kind the cluster does not serve (k8s.io/apiserver's discovery
/// schema resolver looks the group version up first, then the kind within it, and says which
/// one it missed), after `failed to build resource "<id>": `.
pub fn unserved_kind(
    id: &str,
    api_version: &str,
    kind: &str,
    group_version_served: bool,
) -> String {
    let missed = if group_version_served {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        format!("cannot resolve group version kind \"{group}/{version}, Kind={kind}\"")
    } else {
        format!("cannot resolve group version \"{api_version}\"")
    };
    format!("failed to get schema for resource {id}: {missed}: schema not found")
}

/// A CRD's schema as the API server publishes it: full ObjectMeta, `apiVersion` and `kind`.
fn published(mut schema: Value) -> Value {
    if let Some(object) = schema.as_object_mut() {
        object.entry("type").or_insert(json!("object"));
        let properties = object.entry("properties").or_insert(json!({}));
        if let Some(properties) = properties.as_object_mut() {
            properties.insert("metadata".into(), kinds::object_meta());
            properties
                .entry("apiVersion")
                .or_insert(json!({"type": "string"}));
            properties
                .entry("kind")
                .or_insert(json!({"type": "string"}));
        }
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRDS: &str = "
apiVersion: v1
kind: List
items:
- apiVersion: apiextensions.k8s.io/v1
  kind: CustomResourceDefinition
  metadata: {name: widgets.example.com}
  spec:
    group: example.com
    names: {kind: Widget, plural: widgets}
    scope: Cluster
    versions:
    - name: v1
      served: true
      schema:
        openAPIV3Schema: {type: object, properties: {spec: {type: object, properties: {size: {type: integer}}}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: not-a-crd}
";

    #[test]
    fn lists_and_documents() {
        let mut catalog = Catalog::default();
        assert_eq!(catalog.add_yaml(CRDS).unwrap(), 1);
        let widget = catalog.resolve("example.com/v1", "Widget").unwrap();
        assert!(!widget.namespaced);
        assert_eq!(
            widget.schema["properties"]["metadata"]["properties"]["name"]["type"],
            "string"
        );
        assert!(catalog.resolve("v1", "Pod").is_some());
        let mut closed = Catalog::closed();
        closed.add_yaml(CRDS).unwrap();
        assert!(closed.resolve("v1", "Pod").is_none());
        assert!(closed.resolve("example.com/v1", "Widget").is_some());
    }
}
