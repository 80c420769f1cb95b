//! Instance deletion (kro.md §5.8): each pass deletes the last existing child in topological
//! order; when none is left, kro's finalizer goes. A script may hold the finalizer.

use std::time::Duration;

use kube::ResourceExt;
use kube::api::{Api, DynamicObject, Patch};
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::children::{self, Children};
use super::instance::{InstanceContext, Observation};
use super::status::{StatusParts, write_status};
use super::{SimError, finalizers_without_kro, kro_patch, lock};
use crate::conditions::{Condition, Conditions};
use crate::graph::{Graph, IdentityWalk, InstanceState, ResourcesReady, Visit};

/// What deletion's walk found.
enum Found {
    /// The last existing managed child in topological order.
    Child { id: String, object: Value },
    /// No child is left.
    Nothing,
    /// An includeWhen condition failed: kro stops the deletion with this error.
    Blocked(String),
}

/// One deletion pass of `seen`.
pub(super) async fn delete_pass(
    ctx: &InstanceContext,
    seen: &Observation,
    mut conditions: Conditions,
) -> Result<Action, SimError> {
    conditions.set(&ResourcesReady::under_deletion().condition());
    let graph = Graph::of(&seen.rgd).unwrap_or_default();
    let children = ctx.children(seen);
    let mut walk = IdentityWalk::new(&graph, &seen.instance, ctx.child_namespace(seen));
    let found = last_existing_child(&mut walk, &children).await?;
    let hold = seen.script.deletion_hold(deletion_started(ctx, &seen.uid));
    if let Some(Some(message)) = hold {
        conditions.set(&Condition {
            type_: "InstanceManaged",
            status: "False",
            reason: "ManagementFailed",
            message: &format!("failed removing finalizer: {message}"),
        });
    }
    if let Found::Child { id, object } = &found
        && !children::is_terminating(object)
    {
        children
            .delete(id, object)
            .await
            .map_err(SimError::Invalid)?;
    }
    let author = seen.author(walk.variables());
    let parts = StatusParts {
        authored: seen.authored(walk.variables(), &conditions),
        conditions,
        state: InstanceState::Deleting,
        author,
    };
    let action = write_status(&seen.api, &seen.object, parts, seen.requeue).await?;
    if hold.is_some() {
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    match found {
        Found::Child { .. } => return Ok(action),
        Found::Blocked(why) => {
            tracing::warn!(instance = %seen.name, %why, "deletion blocked");
            return Ok(action);
        }
        Found::Nothing => {}
    }
    remove_finalizer(&seen.api, &seen.name).await?;
    lock(&ctx.shared).instances.remove(&seen.uid);
    Ok(Action::await_change())
}

/// When this instance's deletion started (the first deletion pass).
fn deletion_started(ctx: &InstanceContext, uid: &str) -> Instant {
    let mut shared = lock(&ctx.shared);
    let memory = shared.instances.entry(uid.to_string()).or_default();
    *memory.deletion_started.get_or_insert_with(Instant::now)
}

/// Reads each managed child whose identity resolves, in topological order.
async fn last_existing_child(
    walk: &mut IdentityWalk<'_>,
    children: &Children<'_>,
) -> Result<Found, SimError> {
    let mut found = Found::Nothing;
    loop {
        let Visit {
            node,
            desired,
            item,
        } = match walk.next_visit() {
            Ok(Some(visit)) => visit,
            Ok(None) => return Ok(found),
            Err(why) => return Ok(Found::Blocked(why)),
        };
        let key = children::child_key(&node.id, item, &desired);
        let current = children
            .get(&key, &desired)
            .await
            .map_err(SimError::Invalid)?;
        if let Some(object) = current {
            walk.observed(&node.id, object.clone());
            found = Found::Child { id: key, object };
        }
    }
}

/// Removes kro's finalizer with a resourceVersion precondition on the latest object (§5.1).
async fn remove_finalizer(api: &Api<DynamicObject>, name: &str) -> Result<(), SimError> {
    let Some(current) = api.get_opt(name).await? else {
        return Ok(());
    };
    let patch = json!({"metadata": {
        "resourceVersion": current.resource_version(),
        "finalizers": finalizers_without_kro(&current),
    }});
    match api.patch(name, &kro_patch(), &Patch::Merge(patch)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
