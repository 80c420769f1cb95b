//! Generates the five Kany8s CRDs from the Rust types plus the facts the types cannot carry:
//! the served `v1beta2` alias, contract and provider labels, printer columns and CEL rules.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceConversion, CustomResourceDefinition,
    CustomResourceDefinitionNames, CustomResourceDefinitionSpec, CustomResourceDefinitionVersion,
    CustomResourceSubresourceStatus, CustomResourceSubresources, CustomResourceValidation,
    JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::api::{
    ALIAS_VERSION, Kany8sCluster, Kany8sClusterSpec, Kany8sClusterStatus, Kany8sClusterTemplate,
    Kany8sClusterTemplateSpec, Kany8sControlPlane, Kany8sControlPlaneSpec,
    Kany8sControlPlaneStatus, Kany8sControlPlaneTemplate, Kany8sControlPlaneTemplateSpec,
    Kany8sKubeadmControlPlane, Kany8sKubeadmControlPlaneSpec, Kany8sKubeadmControlPlaneStatus,
    STORAGE_VERSION,
};

/// Contract label: the v1beta2 Cluster API contract is served by our `v1alpha1` ([CRD-04]).
pub const CONTRACT_LABEL: &str = "cluster.x-k8s.io/v1beta2";
/// Provider label of every CRD ([CRD-04]).
pub const PROVIDER_LABEL: &str = "cluster.x-k8s.io/provider";
/// Provider name of the control-plane kinds.
pub const CONTROL_PLANE_PROVIDER: &str = "control-plane-kany8s";
/// Provider name of the infrastructure kinds.
pub const INFRASTRUCTURE_PROVIDER: &str = "infrastructure-kany8s";

/// [CEL-01] exactly one backend.
pub const RULE_EXACTLY_ONE_BACKEND: &str = "(has(self.resourceGraphDefinitionRef) ? 1 : 0) + (has(self.kubeadm) ? 1 : 0) + (has(self.externalBackend) ? 1 : 0) == 1";
/// [CEL-02] the backend type cannot change once exactly one is selected.
pub const RULE_BACKEND_TYPE_IMMUTABLE: &str = "((has(oldSelf.resourceGraphDefinitionRef) ? 1 : 0) + (has(oldSelf.kubeadm) ? 1 : 0) + (has(oldSelf.externalBackend) ? 1 : 0) != 1) || (has(self.resourceGraphDefinitionRef) == has(oldSelf.resourceGraphDefinitionRef) && has(self.kubeadm) == has(oldSelf.kubeadm) && has(self.externalBackend) == has(oldSelf.externalBackend))";

/// The CEL expression naming the backend type of `var` (`self` or `oldSelf`).
fn backend_type_name(var: &str) -> String {
    format!(
        "(has({var}.resourceGraphDefinitionRef) ? 'kro' : (has({var}.kubeadm) ? 'kubeadm' : (has({var}.externalBackend) ? 'external' : 'none')))"
    )
}

/// The backend-selection rules of a control-plane spec ([CEL-01], [CEL-02]).
fn backend_selection_rules() -> Value {
    json!([
        {
            "rule": RULE_EXACTLY_ONE_BACKEND,
            "message": "exactly one backend must be selected",
            "reason": "FieldValueInvalid"
        },
        {
            "rule": RULE_BACKEND_TYPE_IMMUTABLE,
            "messageExpression": format!(
                "'backend type is immutable (from \"' + {} + '\" to \"' + {} + '\")'",
                backend_type_name("oldSelf"),
                backend_type_name("self")
            ),
            "reason": "FieldValueForbidden"
        }
    ])
}

/// Where in a kind's schema the backend-selection rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BackendRules {
    None,
    OnSpec,
    OnTemplateSpec,
}

/// Everything about one CRD that is not derived from the Rust types.
struct CrdShape {
    kind: String,
    group: String,
    plural: String,
    provider: &'static str,
    spec: Value,
    status: Option<Value>,
    printer_columns: Vec<CustomResourceColumnDefinition>,
    backend_rules: BackendRules,
}

fn column(name: &str, type_: &str, json_path: &str) -> CustomResourceColumnDefinition {
    CustomResourceColumnDefinition {
        name: name.into(),
        type_: type_.into(),
        json_path: json_path.into(),
        ..Default::default()
    }
}

/// Printer columns of the two control-plane kinds ([CRD-12], [CRD-15]).
fn control_plane_columns() -> Vec<CustomResourceColumnDefinition> {
    vec![
        column(
            "CLUSTER",
            "string",
            r".metadata.labels['cluster\.x-k8s\.io/cluster-name']",
        ),
        column(
            "INITIALIZED",
            "boolean",
            ".status.initialization.controlPlaneInitialized",
        ),
        column(
            "READY",
            "string",
            r#".status.conditions[?(@.type=="Ready")].status"#,
        ),
        column(
            "AVAILABLE",
            "string",
            r#".status.conditions[?(@.type=="Available")].status"#,
        ),
        column("ENDPOINT", "string", ".spec.controlPlaneEndpoint.host"),
        column("VERSION", "string", ".status.version"),
        column("AGE", "date", ".metadata.creationTimestamp"),
    ]
}

/// Printer columns of `Kany8sCluster` ([CRD-17]).
fn cluster_columns() -> Vec<CustomResourceColumnDefinition> {
    vec![
        column(
            "CLUSTER",
            "string",
            r".metadata.labels['cluster\.x-k8s\.io/cluster-name']",
        ),
        column(
            "PROVISIONED",
            "boolean",
            ".status.initialization.provisioned",
        ),
        column(
            "READY",
            "string",
            r#".status.conditions[?(@.type=="Ready")].status"#,
        ),
        column("AGE", "date", ".metadata.creationTimestamp"),
    ]
}

fn shape<K: Resource<DynamicType = ()>>(
    provider: &'static str,
    spec: Value,
    status: Option<Value>,
    printer_columns: Vec<CustomResourceColumnDefinition>,
    backend_rules: BackendRules,
) -> CrdShape {
    CrdShape {
        kind: K::kind(&()).into_owned(),
        group: K::group(&()).into_owned(),
        plural: K::plural(&()).into_owned(),
        provider,
        spec,
        status,
        printer_columns,
        backend_rules,
    }
}

fn shapes() -> Vec<CrdShape> {
    vec![
        shape::<Kany8sControlPlane>(
            CONTROL_PLANE_PROVIDER,
            schema_of::<Kany8sControlPlaneSpec>(),
            Some(schema_of::<Kany8sControlPlaneStatus>()),
            control_plane_columns(),
            BackendRules::OnSpec,
        ),
        shape::<Kany8sControlPlaneTemplate>(
            CONTROL_PLANE_PROVIDER,
            schema_of::<Kany8sControlPlaneTemplateSpec>(),
            None,
            Vec::new(),
            BackendRules::OnTemplateSpec,
        ),
        shape::<Kany8sKubeadmControlPlane>(
            CONTROL_PLANE_PROVIDER,
            schema_of::<Kany8sKubeadmControlPlaneSpec>(),
            Some(schema_of::<Kany8sKubeadmControlPlaneStatus>()),
            control_plane_columns(),
            BackendRules::None,
        ),
        shape::<Kany8sCluster>(
            INFRASTRUCTURE_PROVIDER,
            schema_of::<Kany8sClusterSpec>(),
            Some(schema_of::<Kany8sClusterStatus>()),
            cluster_columns(),
            BackendRules::None,
        ),
        shape::<Kany8sClusterTemplate>(
            INFRASTRUCTURE_PROVIDER,
            schema_of::<Kany8sClusterTemplateSpec>(),
            None,
            Vec::new(),
            BackendRules::None,
        ),
    ]
}

/// The JSON schema schemars derives for `T`, rewritten into a Kubernetes structural schema.
fn schema_of<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|settings| {
            settings.inline_subschemas = true;
            settings.meta_schema = None;
        })
        .into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    make_structural(&mut schema);
    schema
}

/// Rewrites what schemars emits for JSON Schema into what Kubernetes accepts: `Option<T>` is
/// "may be absent", not "may be null" (a null is then pruned, [CRD-09]); titles and
/// definitions have no place in a CRD.
fn make_structural(value: &mut Value) {
    let Value::Object(object) = value else { return };
    object.remove("$schema");
    object.remove("$defs");
    object.remove("title");
    if let Some(Value::Array(types)) = object.get("type") {
        let non_null: Vec<Value> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .cloned()
            .collect();
        if let [only] = non_null.as_slice() {
            object.insert("type".into(), only.clone());
        }
    }
    if let Some(Value::Array(variants)) = object.get("anyOf") {
        let non_null: Vec<Value> = variants
            .iter()
            .filter(|v| v.get("type").and_then(Value::as_str) != Some("null"))
            .cloned()
            .collect();
        if let [Value::Object(only)] = non_null.as_slice() {
            let only = only.clone();
            object.remove("anyOf");
            for (key, inner) in only {
                object.entry(key).or_insert(inner);
            }
        }
    }
    if object.get("default").is_some_and(Value::is_null) {
        object.remove("default");
    }
    for (key, child) in object.iter_mut() {
        match key.as_str() {
            // Literal values: never rewrite them.
            "enum" | "default" | "x-kubernetes-validations" | "x-kubernetes-list-map-keys" => {}
            "properties" => {
                if let Value::Object(properties) = child {
                    properties.values_mut().for_each(make_structural);
                }
            }
            _ => make_structural(child),
        }
    }
}

/// Adds CEL rules to the object schema at `path` (a chain of property names).
fn add_rules(schema: &mut Value, path: &[&str], rules: Value) {
    let mut target = schema;
    for segment in path {
        target = &mut target["properties"][*segment];
    }
    let Value::Array(rules) = rules else { return };
    match target.get_mut("x-kubernetes-validations") {
        Some(Value::Array(existing)) => existing.extend(rules),
        _ => target["x-kubernetes-validations"] = Value::Array(rules),
    }
}

fn root_schema(shape: &CrdShape) -> Result<JSONSchemaProps, serde_json::Error> {
    let mut spec = shape.spec.clone();
    let description = spec.as_object_mut().and_then(|s| s.remove("description"));
    let mut properties = Map::new();
    properties.insert(
        "apiVersion".into(),
        json!({"type": "string", "description": "The versioned schema of this representation of an object."}),
    );
    properties.insert(
        "kind".into(),
        json!({"type": "string", "description": "The REST resource this object represents."}),
    );
    properties.insert("metadata".into(), json!({"type": "object"}));
    spec["description"] = json!("The desired state.");
    properties.insert("spec".into(), spec);
    if let Some(status) = &shape.status {
        let mut status = status.clone();
        status["description"] = json!("The observed state.");
        properties.insert("status".into(), status);
    }
    let mut root = json!({
        "type": "object",
        "required": ["spec"],
        "properties": properties,
    });
    if let Some(description) = description {
        root["description"] = description;
    }
    match shape.backend_rules {
        BackendRules::None => {}
        BackendRules::OnSpec => add_rules(&mut root, &["spec"], backend_selection_rules()),
        BackendRules::OnTemplateSpec => add_rules(
            &mut root,
            &["spec", "template", "spec"],
            backend_selection_rules(),
        ),
    }
    serde_json::from_value(root)
}

fn crd(shape: &CrdShape) -> Result<CustomResourceDefinition, serde_json::Error> {
    let schema = root_schema(shape)?;
    let subresources = shape.status.as_ref().map(|_| CustomResourceSubresources {
        status: Some(CustomResourceSubresourceStatus(json!({}))),
        scale: None,
    });
    let version = |name: &str, storage: bool| CustomResourceDefinitionVersion {
        name: name.into(),
        served: true,
        storage,
        schema: Some(CustomResourceValidation {
            open_api_v3_schema: Some(schema.clone()),
        }),
        subresources: subresources.clone(),
        additional_printer_columns: (!shape.printer_columns.is_empty())
            .then(|| shape.printer_columns.clone()),
        ..Default::default()
    };
    Ok(CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(format!("{}.{}", shape.plural, shape.group)),
            labels: Some(BTreeMap::from([
                (CONTRACT_LABEL.to_string(), STORAGE_VERSION.to_string()),
                (PROVIDER_LABEL.to_string(), shape.provider.to_string()),
            ])),
            ..Default::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: shape.group.clone(),
            names: CustomResourceDefinitionNames {
                kind: shape.kind.clone(),
                list_kind: Some(format!("{}List", shape.kind)),
                plural: shape.plural.clone(),
                singular: Some(shape.kind.to_lowercase()),
                categories: Some(vec!["cluster-api".into()]),
                short_names: None,
            },
            scope: "Namespaced".into(),
            versions: vec![
                version(STORAGE_VERSION, true),
                version(ALIAS_VERSION, false),
            ],
            conversion: Some(CustomResourceConversion {
                strategy: "None".into(),
                webhook: None,
            }),
            preserve_unknown_fields: None,
        },
        status: None,
    })
}

/// Errors while generating or rendering CRDs.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    #[error("the schema derived for {kind} is not a valid CRD schema: {source}")]
    Schema {
        kind: String,
        source: serde_json::Error,
    },
    #[error("rendering the {name} CRD as YAML: {source}")]
    Render {
        name: String,
        source: yaml_serde::Error,
    },
}

/// All five Kany8s CRDs, control-plane kinds first.
pub fn all() -> Result<Vec<CustomResourceDefinition>, CrdError> {
    shapes()
        .iter()
        .map(|shape| {
            crd(shape).map_err(|source| CrdError::Schema {
                kind: shape.kind.clone(),
                source,
            })
        })
        .collect()
}

/// File name of a CRD under `config/crd/bases/`, as kubebuilder names them.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// One CRD as a YAML document (without the `---` separator).
pub fn render(crd: &CustomResourceDefinition) -> Result<String, CrdError> {
    let mut document = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": crd.metadata,
        "spec": crd.spec,
    });
    integral_numbers_as_integers(&mut document);
    yaml_serde::to_string(&document).map_err(|source| CrdError::Render {
        name: crd.metadata.name.clone().unwrap_or_default(),
        source,
    })
}

/// JSONSchemaProps keeps bounds as floats; write `maximum: 65535`, not `65535.0`, as every
/// Kubernetes tool does.
fn integral_numbers_as_integers(value: &mut Value) {
    match value {
        Value::Number(number) => {
            if let Some(float) = number
                .as_f64()
                .filter(|f| number.is_f64() && f.fract() == 0.0)
            {
                // Bounds in our schemas are far below 2^53, so the conversion is exact.
                #[allow(clippy::cast_possible_truncation)]
                let integer = float as i64;
                *value = Value::from(integer);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers_as_integers),
        Value::Object(object) => object.values_mut().for_each(integral_numbers_as_integers),
        _ => {}
    }
}

/// All CRDs as one multi-document YAML stream, as `kany8s crds` prints it.
pub fn render_all() -> Result<String, CrdError> {
    let mut out = String::new();
    for crd in all()? {
        out.push_str("---\n");
        out.push_str(&render(&crd)?);
    }
    Ok(out)
}
