//! The I/O edges of the Kany8sCluster reconcile (provider.md §5): observe the owner Cluster,
//! the RGD and the instance, call the pure decide step, then apply with SSA under one field
//! manager and write status once, only when it changed.

use std::sync::Arc;
use std::time::Duration;

use crate::reconciler::Action;
use kube::ResourceExt;
use kube::api::{Api, ApiResource};
use serde_json::{Map, Value, json};

use super::decide::{self, Decision, Inputs, Mode};
use crate::api::{BackendReference, INFRASTRUCTURE_GROUP, Kany8sCluster, Kany8sClusterStatus};
use crate::backend_status::{self, json_type};
use crate::backends::Deletion;
use crate::capi::{CLUSTER_NAME_LABEL, MANAGED_BY_ANNOTATION};
use crate::owner::{Owner, owner_cluster, paused_message};
use crate::reconciler::conditions::{Event, reasons, waiting_for_deletion};
use crate::reconciler::lifecycle::{self, Dependents};
use crate::reconciler::runtime::Shared;
use crate::reconciler::{Error, now};
use crate::rgd::{self, RgdError};
use crate::suspension::Suspension;

/// Field manager of every write of this controller (§5).
pub const FIELD_MANAGER: &str = "kany8s-infrastructure";
/// The Kany8sCluster finalizer (§2.8).
pub const FINALIZER: &str = "kany8scluster.infrastructure.cluster.x-k8s.io";

const KIND: &str = "Kany8sCluster";

/// Requeue when nothing would trigger ([CP-53]).
const SERVED_RETRY: Duration = Duration::from_secs(30);

/// Kany8sCluster kro instances are suspended with kro's annotation.
const SUSPENSION: Suspension = Suspension {
    kro: true,
    field_manager: FIELD_MANAGER,
};

crate::kany8s_object!(
    Kany8sCluster,
    Kany8sClusterStatus,
    kind: KIND,
    finalizer: FINALIZER,
    field_manager: FIELD_MANAGER,
    block_move: true,
    deleting_also: &[],
    deleting_message: "infrastructure is being deleted",
);

/// The controller's context: nothing beyond what every controller holds.
pub type Context = Shared<Kany8sCluster>;

/// Reconciles one Kany8sCluster.
pub async fn reconcile(ic: Arc<Kany8sCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = ic.namespace().unwrap_or_default();
    let api: Api<Kany8sCluster> = Api::namespaced(ctx.client.clone(), &namespace);
    let has_finalizer = ic.finalizers().iter().any(|f| f == FINALIZER);
    // [IC-01]: externally managed; only a finalizer left from before is released.
    if ic.annotations().contains_key(MANAGED_BY_ANNOTATION) {
        if ic.metadata.deletion_timestamp.is_some() && has_finalizer {
            lifecycle::own_apply(&api, ic.as_ref(), false, false, None).await?;
        }
        return Ok(Action::await_change());
    }
    let owner = owner_cluster(&ctx.clusters, ic.as_ref()).await;
    if ic.metadata.deletion_timestamp.is_some() {
        return lifecycle::delete(&api, &ctx.recorder, ic.as_ref(), &owner, &now(), || {
            delete_instance(&ctx, &ic)
        })
        .await;
    }
    if let Some(message) = paused_message(KIND, ic.annotations(), &owner) {
        return lifecycle::pause(
            &api,
            ic.as_ref(),
            message,
            &now(),
            suspend_instance(&ctx, &ic, &owner),
        )
        .await;
    }
    lifecycle::ensure_own(&api, ic.as_ref()).await?;

    let mut inputs = inputs_of(&ic);
    let mut requeue = None;
    let previous_ref = ic.status.as_ref().and_then(|s| s.backend_ref.clone());
    match &ic.spec.backend.resource_graph_definition_ref {
        None => {
            // [IC-03]: kro → stub while the old instance still exists and is owned.
            if let Some(old) = previous_ref {
                let uid = ic.uid().unwrap_or_default();
                inputs.backend_changed = ctx.backends.changed(&namespace, &uid, &old, None).await?;
            }
        }
        Some(reference) => {
            inputs.mode = Mode::Kro;
            inputs.rgd_name = reference.name.trim().to_string();
            match instance_spec(&ic) {
                Err(message) => inputs.spec_error = Some(("InvalidKroSpec".into(), message)),
                Ok(spec) => {
                    match kro(&ctx, &ic, &owner, &reference.name, spec, &mut inputs).await {
                        Ok(outcome) => requeue = outcome,
                        // Refused by the API server: said in the status, then backed off.
                        Err(e) if inputs.apply_error.is_some() => {
                            let Decision {
                                status,
                                endpoint,
                                events,
                            } = decide::decide(&inputs);
                            lifecycle::apply_decision(
                                &api,
                                &ctx.recorder,
                                ic.as_ref(),
                                endpoint,
                                status,
                                &events,
                            )
                            .await?;
                            return Err(e);
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
    let Decision {
        status,
        endpoint,
        events,
    } = decide::decide(&inputs);
    lifecycle::apply_decision(&api, &ctx.recorder, ic.as_ref(), endpoint, status, &events).await?;
    // [CP-52]: failed reads are written as a condition, then back off.
    if let Some(Err(e @ RgdError::GetFailed(..))) = &inputs.resolution {
        return Err(Error::Transient(e.to_string()));
    }
    if let (Owner::GetFailed(e), Some(_)) = (&owner, &inputs.waiting_for_owner) {
        return Err(Error::Transient(format!("get owner Cluster: {e}")));
    }
    Ok(match requeue {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

fn inputs_of(ic: &Kany8sCluster) -> Inputs {
    Inputs {
        generation: ic.metadata.generation.unwrap_or(0),
        previous: ic.status.clone().unwrap_or_default(),
        spec_endpoint: ic.spec.control_plane_endpoint.clone(),
        mode: Mode::Stub,
        spec_error: None,
        rgd_name: String::new(),
        resolution: None,
        backend_changed: None,
        apply_error: None,
        waiting_for_owner: None,
        observed: None,
        backend_ref: None,
        now: now(),
    }
}

/// [IC-08]: `spec.kroSpec` as an object (absent → `{}`).
fn instance_spec(ic: &Kany8sCluster) -> Result<Map<String, Value>, String> {
    match ic
        .spec
        .backend
        .kro_spec
        .clone()
        .unwrap_or_else(|| json!({}))
    {
        Value::Object(map) => Ok(map),
        other => Err(format!(
            "spec.kroSpec must be a JSON object, got {}",
            json_type(&other)
        )),
    }
}

/// [IC-07]: the cluster name injected into the instance.
fn cluster_name(ic: &Kany8sCluster, owner: &Owner) -> String {
    if let Some(cluster) = owner.cluster() {
        return cluster.name_any();
    }
    match ic.labels().get(CLUSTER_NAME_LABEL) {
        Some(label) if !label.is_empty() => label.clone(),
        _ => ic.name_any(),
    }
}

/// [IC-05]–[IC-11]: resolve, inject, apply and read the instance; fills `inputs`. Returns a
/// timed requeue when nothing would trigger.
async fn kro(
    ctx: &Context,
    ic: &Kany8sCluster,
    owner: &Owner,
    reference: &str,
    mut spec: Map<String, Value>,
    inputs: &mut Inputs,
) -> Result<Option<Duration>, Error> {
    let namespace = ic.namespace().unwrap_or_default();
    let resolved = match ctx.backends.resolve_rgd(reference).await {
        Ok((kind, rgd)) => match rgd::schema_has_spec_field(&rgd, "clusterUID") {
            Ok(declares_uid) => Ok((kind, declares_uid)),
            Err(message) => Err(RgdError::Invalid(message)),
        },
        Err(e) => Err(e),
    };
    let resolved = match resolved {
        Ok((kind, declares_uid)) => match ctx
            .backends
            .resource_of(&kind.api_version(), &kind.kind)
            .await
        {
            Some(found) => {
                inputs.resolution = Some(Ok(kind));
                Some((found, declares_uid))
            }
            None => {
                inputs.resolution = Some(Err(RgdError::NotServed(
                    kind.group,
                    kind.version,
                    kind.kind,
                )));
                None
            }
        },
        Err(e) => {
            inputs.resolution = Some(Err(e));
            None
        }
    };
    let Some(((resource, namespaced), declares_uid)) = resolved else {
        // [IC-05], [CP-16]: reflect the instance named by status.backendRef, if any.
        if let Some(reference) = ic.status.as_ref().and_then(|s| s.backend_ref.clone())
            && let Some((object, resource, namespaced)) =
                ctx.backends.get(&namespace, &reference).await?
        {
            ctx.watches.ensure(&resource);
            SUSPENSION
                .resume(
                    &ctx.backends.api(&namespace, &resource, namespaced),
                    &object,
                )
                .await?;
            inputs.observed = Some(backend_status::read(&object));
        }
        let not_served = matches!(inputs.resolution, Some(Err(RgdError::NotServed(..))));
        return Ok(not_served.then_some(SERVED_RETRY));
    };
    // [IC-06]
    if declares_uid {
        let waiting = match owner {
            Owner::Found(_) => None,
            Owner::NotSet => Some("waiting for owner Cluster reference to be set".to_string()),
            Owner::NotFound(e) | Owner::GetFailed(e) => {
                Some(format!("waiting for owner Cluster: {e}"))
            }
        };
        if waiting.is_some() {
            inputs.waiting_for_owner = waiting;
            return Ok(None);
        }
    }
    // [IC-03]
    if let Some(old) = ic.status.as_ref().and_then(|s| s.backend_ref.clone()) {
        let uid = ic.uid().unwrap_or_default();
        inputs.backend_changed = ctx
            .backends
            .changed(&namespace, &uid, &old, Some(&resource))
            .await?;
        if inputs.backend_changed.is_some() {
            return Ok(None);
        }
    }
    // [IC-08]
    spec.insert("clusterName".into(), json!(cluster_name(ic, owner)));
    spec.insert("clusterNamespace".into(), json!(namespace));
    if declares_uid && let Some(cluster) = owner.cluster() {
        spec.insert("clusterUID".into(), json!(cluster.uid()));
    }
    let object = match apply_instance(ctx, ic, owner, &resource, namespaced, spec).await {
        Ok(object) => object,
        Err(e) => {
            inputs.apply_error = Some(format!(
                "apply {} {namespace}/{}: {}",
                resource.kind,
                ic.name_any(),
                e.condition_message()
            ));
            return Err(e);
        }
    };
    let backend = ctx.backends.api(&namespace, &resource, namespaced);
    SUSPENSION.resume(&backend, &object).await?;
    inputs.backend_ref = Some(BackendReference {
        api_version: resource.api_version.clone(),
        kind: resource.kind.clone(),
        name: ic.name_any(),
    });
    ctx.watches.ensure(&resource);
    inputs.observed = Some(backend_status::read(&object));
    Ok(None)
}

/// [IC-09]: SSA of the instance; returns the applied object.
async fn apply_instance(
    ctx: &Context,
    ic: &Kany8sCluster,
    owner: &Owner,
    resource: &ApiResource,
    namespaced: bool,
    spec: Map<String, Value>,
) -> Result<Value, Error> {
    ctx.backends
        .apply_backend(
            ic,
            owner.cluster(),
            resource,
            namespaced,
            Value::Object(spec),
            FIELD_MANAGER,
        )
        .await
}

/// [IC-02] with [CT-17]: suspends and detaches the instance `status.backendRef` names.
async fn suspend_instance(ctx: &Context, ic: &Kany8sCluster, owner: &Owner) -> Result<(), Error> {
    if let Some(reference) = ic.status.as_ref().and_then(|s| s.backend_ref.clone()) {
        let detach: Vec<String> = [ic.uid(), owner.cluster().and_then(|c| c.uid())]
            .into_iter()
            .flatten()
            .collect();
        let namespace = ic.namespace().unwrap_or_default();
        ctx.backends
            .suspend_referenced(SUSPENSION, &namespace, &reference, &detach)
            .await?;
    }
    Ok(())
}

/// [IC-02] with [CT-25]–[CT-28]: deletes the owned instance and says where that stands.
async fn delete_instance(ctx: &Context, ic: &Kany8sCluster) -> Result<Dependents, Error> {
    let namespace = ic.namespace().unwrap_or_default();
    let reference = match ic.status.as_ref().and_then(|s| s.backend_ref.clone()) {
        Some(r) => Some(r),
        None => desired_reference(ctx, ic).await,
    };
    let Some(reference) = reference else {
        if ic.spec.backend.resource_graph_definition_ref.is_some() {
            return Ok(Dependents::Unresolvable(Event {
                warning: true,
                reason: reasons::BACKEND_UNRESOLVABLE.into(),
                note: "cannot determine the backend to delete; relying on garbage collection"
                    .into(),
            }));
        }
        return Ok(Dependents::Released);
    };
    let uid = ic.uid().unwrap_or_default();
    let resource = match ctx
        .backends
        .delete_owned(SUSPENSION, &namespace, &reference, &uid)
        .await?
    {
        Deletion::Released => return Ok(Dependents::Released),
        Deletion::Waiting(resource) => resource,
    };
    ctx.watches.ensure(&resource);
    let waiting = waiting_for_deletion(
        reasons::WAITING_FOR_BACKEND_DELETION,
        &reference.kind,
        &namespace,
        &reference.name,
    );
    let requeue = (!ctx.watches.is_running(&resource)).then_some(SERVED_RETRY);
    Ok(Dependents::Waiting(waiting, requeue))
}

/// The instance the spec would create, when `status.backendRef` is not set.
async fn desired_reference(ctx: &Context, ic: &Kany8sCluster) -> Option<BackendReference> {
    let reference = ic.spec.backend.resource_graph_definition_ref.as_ref()?;
    let (kind, _) = ctx.backends.resolve_rgd(&reference.name).await.ok()?;
    let (resource, _) = ctx
        .backends
        .resource_of(&kind.api_version(), &kind.kind)
        .await?;
    Some(BackendReference {
        api_version: resource.api_version,
        kind: resource.kind,
        name: ic.name_any(),
    })
}

/// Whether a Cluster's `spec.infrastructureRef` names a Kany8sCluster.
pub fn names_kany8s_cluster(group: &str, kind: &str) -> bool {
    group == INFRASTRUCTURE_GROUP && kind == KIND
}
