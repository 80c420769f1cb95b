//! How a backend object is suspended while its owner is paused or moved, and resumed after
//! ([CT-17]–[CT-19]): kro instances by `kro.run/reconcile: suspended`, other backends by Cluster
//! API's paused annotation, with Kany8s's own marker so a suspension someone else made stays.

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use crate::capi::PAUSED_ANNOTATION;
use crate::reconciler::Error;

/// Marks a backend object Kany8s suspended (§2.8).
pub const SUSPENDED_ANNOTATION: &str = "kany8s.io/suspended";
/// kro's suspension annotation.
pub const KRO_RECONCILE_ANNOTATION: &str = "kro.run/reconcile";

/// How a backend is suspended: kro instances by `kro.run/reconcile: suspended`, other
/// backends by Cluster API's paused annotation; writes carry the controller's field manager.
#[derive(Clone, Copy, Debug)]
pub struct Suspension {
    pub kro: bool,
    pub field_manager: &'static str,
}

impl Suspension {
    /// Merge and JSON patches of backend objects carry the controller's field manager ([CP-48]).
    fn params(&self) -> PatchParams {
        PatchParams {
            field_manager: Some(self.field_manager.to_string()),
            ..PatchParams::default()
        }
    }

    /// [CT-19] step 2: lift Kany8s's suspension of `object` (a backend just read or applied).
    /// A `kro.run/reconcile` without Kany8s's marker was set by someone else and stays.
    pub async fn resume(&self, backend: &Api<DynamicObject>, object: &Value) -> Result<(), Error> {
        if object["metadata"]["annotations"][SUSPENDED_ANNOTATION] != "true" {
            return Ok(());
        }
        let mut patch = json!({SUSPENDED_ANNOTATION: null});
        if self.kro {
            patch[KRO_RECONCILE_ANNOTATION] = Value::Null;
        } else {
            patch[PAUSED_ANNOTATION] = Value::Null;
        }
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        backend
            .patch(
                name,
                &self.params(),
                &Patch::Merge(json!({"metadata": {"annotations": patch}})),
            )
            .await?;
        Ok(())
    }

    /// [CT-17]: suspends `object` and removes the ownerReferences of `detach` (uids), guarded
    /// by its resourceVersion so a concurrent writer is never overwritten.
    pub async fn suspend(
        &self,
        backend: &Api<DynamicObject>,
        object: &Value,
        detach: &[String],
    ) -> Result<(), Error> {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let annotations = if self.kro {
            json!({KRO_RECONCILE_ANNOTATION: "suspended", SUSPENDED_ANNOTATION: "true"})
        } else {
            json!({PAUSED_ANNOTATION: "", SUSPENDED_ANNOTATION: "true"})
        };
        let current = &object["metadata"]["annotations"];
        let annotated = annotations
            .as_object()
            .is_some_and(|a| a.iter().all(|(k, v)| current.get(k) == Some(v)));
        if !annotated {
            backend
                .patch(
                    &name,
                    &self.params(),
                    &Patch::Merge(json!({"metadata": {"annotations": annotations}})),
                )
                .await?;
        }
        let fresh = serde_json::to_value(backend.get(&name).await?)?;
        let references = fresh["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut operations = vec![
            json!({"op": "test", "path": "/metadata/resourceVersion", "value": fresh["metadata"]["resourceVersion"]}),
        ];
        for (index, reference) in references.iter().enumerate().rev() {
            if detach.iter().any(|uid| reference["uid"] == uid.as_str()) {
                operations.push(
                    json!({"op": "remove", "path": format!("/metadata/ownerReferences/{index}")}),
                );
            }
        }
        if operations.len() > 1 {
            let patch: json_patch::Patch = serde_json::from_value(Value::Array(operations))?;
            backend
                .patch(&name, &self.params(), &Patch::<()>::Json(patch))
                .await?;
        }
        Ok(())
    }
}
