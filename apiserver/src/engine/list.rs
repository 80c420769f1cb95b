//! Reads: GET of one object, and LIST with label and field selectors, `limit` and `continue`
//! tokens over a stable resourceVersion.

use base64::Engine as _;
use serde_json::{Value, json};

use super::{Engine, ListOptions, Target};
use crate::registry::{Kind, ResourceType};
use crate::selector::{FieldSelector, LabelSelector, SelectableFields, labels_of};
use crate::status::ApiError;

impl Engine {
    /// GET: one object, as a client of the target's version sees it.
    pub fn get(&self, target: &Target) -> Result<Value, ApiError> {
        let state = self.lock();
        let name = target.name.as_deref().unwrap_or_default();
        let object = state
            .store
            .get(&target.key(name))
            .ok_or_else(|| ApiError::not_found(&target.resource.name(), name))?;
        Ok(Self::present(&target.resource, &target.version, object))
    }

    /// A list of the objects matching the selectors, paginated with `limit`/`continue`.
    pub fn list(&self, target: &Target, options: &ListOptions) -> Result<Value, ApiError> {
        let state = self.lock();
        let current = state.store.resource_version();
        let (start_after, snapshot_rv) = match &options.continue_token {
            Some(token) => decode_continue(token)?,
            None => (String::new(), current),
        };
        let labels = LabelSelector::parse(options.label_selector.as_deref().unwrap_or(""))?;
        let fields = parse_field_selector(
            &target.resource,
            options.field_selector.as_deref().unwrap_or(""),
        )?;
        let namespace = if target.resource.namespaced {
            target.namespace.as_deref()
        } else {
            None
        };
        let limit = if options.resource_version.as_deref() == Some("0") {
            None
        } else {
            options.limit.filter(|l| *l > 0)
        };
        let mut items = Vec::new();
        let mut remaining = 0u64;
        let mut next = None;
        for (key, object) in state.store.list(
            crate::events::storage_group(&target.resource),
            &target.resource.plural,
            namespace,
        ) {
            let position = format!("{}/{}", key.namespace, key.name);
            if !start_after.is_empty() && position <= start_after {
                continue;
            }
            if !labels.matches(&labels_of(object))
                || !fields.matches(&|f| field_value(&target.resource, object, f))
            {
                continue;
            }
            if let Some(limit) = limit {
                if items.len() as u64 >= limit {
                    remaining += 1;
                    continue;
                }
                if items.len() as u64 + 1 == limit {
                    next = Some(position.clone());
                }
            }
            let mut item = Self::present(&target.resource, &target.version, object);
            // kube-apiserver's lists of built-in kinds are typed: their items carry no
            // apiVersion and kind (custom resources' items do).
            if target.resource.kind != crate::registry::Kind::Custom
                && let Some(fields) = item.as_object_mut()
            {
                fields.remove("apiVersion");
                fields.remove("kind");
            }
            items.push(item);
        }
        let mut metadata = json!({"resourceVersion": snapshot_rv.to_string()});
        if remaining > 0
            && let Some(position) = next
        {
            metadata["continue"] = json!(encode_continue(&position, snapshot_rv));
            metadata["remainingItemCount"] = json!(remaining);
        } else if target.resource.kind == crate::registry::Kind::Custom {
            // kube-apiserver's unstructured lists always carry the (empty) continue token.
            metadata["continue"] = json!("");
        }
        Ok(json!({
            "apiVersion": target.api_version(),
            "kind": target.resource.list_kind,
            "metadata": metadata,
            "items": items,
        }))
    }
}

fn encode_continue(position: &str, rv: u64) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{position}\u{0}")});
    base64::engine::general_purpose::STANDARD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(String, u64), ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| invalid())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let start = value
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(invalid)?;
    let rv = value
        .get("rv")
        .and_then(Value::as_u64)
        .ok_or_else(invalid)?;
    Ok((start.trim_end_matches('\u{0}').to_string(), rv))
}

/// Field-selector support per resource (§6.4).
pub fn parse_field_selector(
    resource: &ResourceType,
    selector: &str,
) -> Result<FieldSelector, ApiError> {
    let supported = |field: &str| -> bool {
        if matches!(field, "metadata.name" | "metadata.namespace") {
            return true;
        }
        match resource.kind {
            Kind::Secret => field == "type",
            Kind::Namespace => field == "status.phase",
            Kind::Event => {
                field.starts_with("involvedObject.")
                    || matches!(
                        field,
                        "reason"
                            | "reportingComponent"
                            | "source"
                            | "type"
                            | "regarding.name"
                            | "regarding.namespace"
                            | "regarding.kind"
                            | "regarding.uid"
                    )
            }
            Kind::Custom => resource.versions.iter().any(|v| {
                v.selectable_fields
                    .iter()
                    .any(|f| f.trim_start_matches('.') == field)
            }),
            _ => false,
        }
    };
    // Kinds kube-apiserver gives their own field label conversion (§6.4) word an unsupported
    // field differently from the default conversion every other kind uses.
    let own_conversion = matches!(
        resource.kind,
        Kind::Secret | Kind::Namespace | Kind::Event | Kind::Custom | Kind::ReplicaSet | Kind::Job
    );
    FieldSelector::parse(
        selector,
        SelectableFields {
            supported: &supported,
            metadata_only: !own_conversion,
        },
    )
}

/// The value of a selectable field of an object.
pub fn field_value(resource: &ResourceType, object: &Value, field: &str) -> Option<String> {
    let pointer = match field {
        "metadata.name" => "/metadata/name".to_string(),
        "metadata.namespace" => "/metadata/namespace".to_string(),
        "source" => "/source/component".to_string(),
        other => format!("/{}", other.replace('.', "/")),
    };
    let _ = resource;
    match object.pointer(&pointer) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => Some(String::new()),
        Some(other) => Some(other.to_string()),
    }
}
