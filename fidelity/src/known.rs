//! Known differences: checks where the embedded server and kube-apiserver differ and this
//! change did not make them agree, one row per check (sequence, observation label, the check's
//! path), each with its reason. A row that no longer matches a difference is reported as stale
//! (target/fidelity/differences.md) and should go. docs/fidelity.md lists the open ones;
//! `fidelity/tools/known.py` turns a differences file into candidate rows for review.

use crate::compare::Explain;

/// managedFields details the embedded SSA model (apiserver/src/ssa.rs) does not reproduce.
pub const MANAGED_FIELDS: &str = "managedFields: structured-merge-diff details ssa.rs does not model yet (ObjectReference/OwnerReference maps are atomic in kube-apiserver's schema, ownership moves of forced applies and of mixed Apply/Update managers, subresource entries)";
/// Discovery and OpenAPI of kube-apiserver 1.36 against the embedded 1.32 model.
pub const DISCOVERY: &str = "discovery/OpenAPI: kube-apiserver 1.36's documents differ from the embedded 1.32 model (verb lists, storageVersionHash, subresource entries, descriptions, versions served)";
/// Printer columns and metadata conversions.
pub const TABLES: &str = "Table/PartialObjectMetadata: kube-apiserver's printers (column descriptions and types) and conversions differ in details table.rs does not reproduce yet";
/// kubectl output that follows from API differences listed elsewhere.
pub const KUBECTL: &str = "kubectl output follows API differences listed in the other areas (managedFields, typed lists, event printing, explain text)";
/// Same status code and reason, different text.
pub const ERROR_TEXT: &str = "same code and reason, other text: kube-apiserver 1.36's wording (the embedded server keeps the 1.32 text its spec and tests assert), Go decoders' messages (encoding/json, base64) against serde's, or causes the embedded server leaves out";
/// kubectl 1.36's client-side → server-side apply upgrade.
pub const CSA_UPGRADE: &str = "open: kubectl 1.36's client-side -> server-side apply upgrade does not take on the embedded server (the apply then conflicts with kubectl-client-side-apply on .data.a); kubectl 1.32 (apiserver/tests/it/kubectl_everyday.rs) migrates";
/// A behavioural difference left open.
pub const GAP: &str = "open: a behavioural difference found by the suite and not fixed in this change (docs/fidelity.md, Open differences)";

// The fake-kro differential (`sequences::kro`): fake-kro against kro v0.9.3. What is left is
// the embedded server's model, a design limit of `fake-kro check`, or the environment
// (docs/fidelity.md lists them).

/// The managedFields entry of the CRD kro creates.
pub const KRO_CRD_WRITE: &str = "managedFields (apiserver ssa.rs): for the generated CRD kro creates (an Update entry of manager `kro`, which fake-kro writes the same way) the embedded server also marks the spec and spec.names maps themselves (`f:spec/.`, `f:spec/f:names/.`), kube-apiserver 1.36 does not";
/// The order of an accepted RGD's conditions, which varies in kro.
pub const KRO_CONDITION_ORDER_RACE: &str = "timing (kro v0.9.3): kro orders an RGD's conditions by lastTransitionTime; GraphAccepted comes first when the pass that issued the revision wrote its status, GraphRevisionsResolved first when a later pass found the revision already compiled and set both (seen both ways in runs of this suite); fake-kro writes the first order, so this check usually agrees and the row is reported stale";
/// `fake-kro check`'s verdict without the cluster's kinds.
pub const KRO_CHECK_OFFLINE: &str = "by design (fake-kro check): kro resolves a child's kind against the cluster's OpenAPI v3 document on each pass (and retries the RGD), so whether it accepts an RGD whose child kind no API serves depends on which CRDs the cluster serves then; offline, `fake-kro check` cannot know that and warns (W-GVK-UNKNOWN) where kro rejects";
/// Deployments on the upstream target.
pub const KRO_DEPLOYMENT_CONTROLLER: &str = "environment: the upstream target runs kube-controller-manager's deployment controller (the revision annotation and status writes of `kube-controller-manager`); the embedded side runs no controllers and fake-kro no child simulators";

/// (sequence, observation label, check path, reason).
pub static KNOWN: &[(&str, &str, &str, &str)] = &[
    (
        r#"cr-schema"#,
        r#"float for integer"#,
        "/body/details",
        ERROR_TEXT,
    ),
    (
        r#"cr-schema"#,
        r#"float for integer"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (
        r#"cr-schema"#,
        r#"maximum and enum"#,
        "/body/details",
        ERROR_TEXT,
    ),
    (
        r#"cr-schema"#,
        r#"maximum and enum"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (
        r#"cr-schema"#,
        r#"pattern and maxLength"#,
        "/body/details",
        ERROR_TEXT,
    ),
    (
        r#"cr-schema"#,
        r#"pattern and maxLength"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (
        r#"cr-schema"#,
        r#"required in list"#,
        "/body/details",
        ERROR_TEXT,
    ),
    (
        r#"cr-schema"#,
        r#"required in list"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (
        r#"cr-schema"#,
        r#"wrong types"#,
        "/body/details",
        ERROR_TEXT,
    ),
    (
        r#"cr-schema"#,
        r#"wrong types"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (r#"crd-invalid"#, r#"bad rule"#, "/body/code", GAP),
    (r#"crd-invalid"#, r#"bad rule"#, "/body/details", ERROR_TEXT),
    (r#"crd-invalid"#, r#"bad rule"#, "/body/message", ERROR_TEXT),
    (r#"crd-invalid"#, r#"bad rule"#, "/body/reason", GAP),
    (r#"crd-invalid"#, r#"bad rule"#, "/status", GAP),
    (r#"crd-invalid"#, r#"bad type"#, "/body", GAP),
    (r#"crd-invalid"#, r#"bad type"#, "/body/code", GAP),
    (r#"crd-invalid"#, r#"bad type"#, "/body/details", ERROR_TEXT),
    (r#"crd-invalid"#, r#"bad type"#, "/body/message", ERROR_TEXT),
    (r#"crd-invalid"#, r#"bad type"#, "/body/reason", GAP),
    (r#"crd-invalid"#, r#"bad type"#, "/body/status", GAP),
    (r#"crd-invalid"#, r#"bad type"#, "/status", GAP),
    (r#"crd-invalid"#, r#"no schema"#, "/body/code", GAP),
    (
        r#"crd-invalid"#,
        r#"no schema"#,
        "/body/details",
        ERROR_TEXT,
    ),
    (
        r#"crd-invalid"#,
        r#"no schema"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (r#"crd-invalid"#, r#"no schema"#, "/body/reason", GAP),
    (r#"crd-invalid"#, r#"no schema"#, "/status", GAP),
    (
        r#"crd-invalid"#,
        r#"no storage version"#,
        "/body/details",
        ERROR_TEXT,
    ),
    (
        r#"crd-invalid"#,
        r#"no storage version"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (
        r#"crd-invalid"#,
        r#"optionalOldSelf misuse"#,
        "/body/code",
        GAP,
    ),
    (
        r#"crd-invalid"#,
        r#"optionalOldSelf misuse"#,
        "/body/details",
        ERROR_TEXT,
    ),
    (
        r#"crd-invalid"#,
        r#"optionalOldSelf misuse"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (
        r#"crd-invalid"#,
        r#"optionalOldSelf misuse"#,
        "/body/reason",
        GAP,
    ),
    (
        r#"crd-invalid"#,
        r#"optionalOldSelf misuse"#,
        "/status",
        GAP,
    ),
    (r#"crd-lifecycle"#, r#"create"#, "/body", GAP),
    (
        r#"crd-lifecycle"#,
        r#"create while terminating"#,
        "/body/code",
        GAP,
    ),
    (
        r#"crd-lifecycle"#,
        r#"create while terminating"#,
        "/body/details",
        ERROR_TEXT,
    ),
    (
        r#"crd-lifecycle"#,
        r#"create while terminating"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (
        r#"crd-lifecycle"#,
        r#"create while terminating"#,
        "/body/reason",
        GAP,
    ),
    (
        r#"crd-lifecycle"#,
        r#"create while terminating"#,
        "/status",
        GAP,
    ),
    (r#"crd-lifecycle"#, r#"delete"#, "/body", GAP),
    (r#"crd-lifecycle"#, r#"established"#, "/body", GAP),
    (
        r#"crd-lifecycle"#,
        r#"instance being deleted"#,
        "/body",
        GAP,
    ),
    (r#"crd-lifecycle"#, r#"release"#, "/body", GAP),
    (r#"crd-lifecycle"#, r#"resource gone"#, "/body", GAP),
    (r#"crd-lifecycle"#, r#"resource gone"#, "/body/code", GAP),
    (
        r#"crd-lifecycle"#,
        r#"resource gone"#,
        "/body/details",
        ERROR_TEXT,
    ),
    (
        r#"crd-lifecycle"#,
        r#"resource gone"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (r#"crd-lifecycle"#, r#"resource gone"#, "/body/reason", GAP),
    (r#"crd-lifecycle"#, r#"resource gone"#, "/body/status", GAP),
    (
        r#"crd-lifecycle"#,
        r#"resource gone"#,
        "/headers/content-type",
        GAP,
    ),
    (r#"crd-lifecycle"#, r#"terminating"#, "/body", GAP),
    (
        r#"crd-multiversion"#,
        r#"create v1 (deprecated)"#,
        "/headers/warning",
        GAP,
    ),
    (r#"crd-multiversion"#, r#"list v1"#, "/headers/warning", GAP),
    (
        r#"crd-multiversion"#,
        r#"wrong apiVersion"#,
        "/headers/warning",
        GAP,
    ),
    (
        r#"crud-configmap"#,
        r#"list bad selector"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (
        r#"crud-generate-name"#,
        r#"invalid prefix"#,
        "/body/details",
        ERROR_TEXT,
    ),
    (
        r#"crud-generate-name"#,
        r#"invalid prefix"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (
        r#"crud-paging"#,
        r#"bad continue"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (
        r#"crud-secret"#,
        r#"bad base64"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (
        r#"del-finalizers"#,
        r#"new finalizer refused"#,
        "/body/details",
        ERROR_TEXT,
    ),
    (r#"del-shapes"#, r#"deletecollection custom"#, "/body", GAP),
    (r#"del-shapes"#, r#"foreground"#, "/body", GAP),
    (r#"del-shapes"#, r#"orphan"#, "/body", GAP),
    (
        r#"disc-aggregated"#,
        r#"/api aggregated"#,
        "/body",
        DISCOVERY,
    ),
    (
        r#"disc-aggregated"#,
        r#"/apis aggregated"#,
        "/body",
        DISCOVERY,
    ),
    (
        r#"disc-aggregated"#,
        r#"v2beta1 only"#,
        "/headers/content-type",
        DISCOVERY,
    ),
    (
        r#"disc-aggregated"#,
        r#"v2beta1 only"#,
        "/status",
        DISCOVERY,
    ),
    (r#"disc-legacy"#, r#"/api/v1"#, "/body", DISCOVERY),
    (r#"disc-legacy"#, r#"/apis"#, "/body", DISCOVERY),
    (r#"disc-legacy"#, r#"/apis/apps/v1"#, "/body", DISCOVERY),
    (
        r#"disc-legacy"#,
        r#"/apis/coordination.k8s.io/v1"#,
        "/body",
        DISCOVERY,
    ),
    (
        r#"disc-legacy"#,
        r#"/apis/events.k8s.io/v1"#,
        "/body",
        DISCOVERY,
    ),
    (r#"disc-legacy"#, r#"crd group version"#, "/body", DISCOVERY),
    (r#"disc-legacy"#, r#"openapi v2"#, "/body", DISCOVERY),
    (r#"disc-legacy"#, r#"openapi v2"#, "/body/code", DISCOVERY),
    (
        r#"disc-legacy"#,
        r#"openapi v2"#,
        "/body/details",
        DISCOVERY,
    ),
    (
        r#"disc-legacy"#,
        r#"openapi v2"#,
        "/body/message",
        DISCOVERY,
    ),
    (r#"disc-legacy"#, r#"openapi v2"#, "/body/reason", DISCOVERY),
    (r#"disc-legacy"#, r#"openapi v2"#, "/body/status", DISCOVERY),
    (r#"disc-legacy"#, r#"openapi v2"#, "/status", DISCOVERY),
    (r#"disc-legacy"#, r#"unknown group"#, "/body", DISCOVERY),
    (
        r#"disc-legacy"#,
        r#"unknown group"#,
        "/body/code",
        DISCOVERY,
    ),
    (
        r#"disc-legacy"#,
        r#"unknown group"#,
        "/body/details",
        DISCOVERY,
    ),
    (
        r#"disc-legacy"#,
        r#"unknown group"#,
        "/body/message",
        DISCOVERY,
    ),
    (
        r#"disc-legacy"#,
        r#"unknown group"#,
        "/body/reason",
        DISCOVERY,
    ),
    (
        r#"disc-legacy"#,
        r#"unknown group"#,
        "/body/status",
        DISCOVERY,
    ),
    (
        r#"disc-legacy"#,
        r#"unknown group"#,
        "/headers/content-type",
        DISCOVERY,
    ),
    (
        r#"disc-openapi"#,
        r#"gv document"#,
        "/patch parameters",
        DISCOVERY,
    ),
    (r#"disc-openapi"#, r#"gv document"#, "/paths", DISCOVERY),
    (r#"disc-openapi"#, r#"gv document"#, "/schema", DISCOVERY),
    (
        r#"events-both-apis"#,
        r#"create (events.k8s.io)"#,
        "/body",
        MANAGED_FIELDS,
    ),
    (
        r#"events-both-apis"#,
        r#"create (v1)"#,
        "/body",
        MANAGED_FIELDS,
    ),
    (
        r#"events-both-apis"#,
        r#"get through events.k8s.io"#,
        "/body",
        MANAGED_FIELDS,
    ),
    (
        r#"events-both-apis"#,
        r#"get through v1"#,
        "/body",
        MANAGED_FIELDS,
    ),
    (
        r#"events-both-apis"#,
        r#"invalid events.k8s.io"#,
        "/body",
        GAP,
    ),
    (
        r#"events-both-apis"#,
        r#"invalid events.k8s.io"#,
        "/body/code",
        GAP,
    ),
    (
        r#"events-both-apis"#,
        r#"invalid events.k8s.io"#,
        "/body/details",
        ERROR_TEXT,
    ),
    (
        r#"events-both-apis"#,
        r#"invalid events.k8s.io"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (
        r#"events-both-apis"#,
        r#"invalid events.k8s.io"#,
        "/body/reason",
        GAP,
    ),
    (
        r#"events-both-apis"#,
        r#"invalid events.k8s.io"#,
        "/body/status",
        GAP,
    ),
    (
        r#"events-both-apis"#,
        r#"invalid events.k8s.io"#,
        "/status",
        GAP,
    ),
    (
        r#"events-both-apis"#,
        r#"list through events.k8s.io"#,
        "/body",
        MANAGED_FIELDS,
    ),
    (
        r#"events-both-apis"#,
        r#"list through v1"#,
        "/body",
        MANAGED_FIELDS,
    ),
    (r#"events-both-apis"#, r#"series"#, "/body", MANAGED_FIELDS),
    (
        r#"events-both-apis"#,
        r#"v1 by involved object"#,
        "/body",
        MANAGED_FIELDS,
    ),
    (
        r#"events-core"#,
        r#"by involved uid"#,
        "/body",
        MANAGED_FIELDS,
    ),
    (r#"events-core"#, r#"by reason"#, "/body", MANAGED_FIELDS),
    (r#"events-core"#, r#"by source"#, "/body", MANAGED_FIELDS),
    (r#"events-core"#, r#"by type"#, "/body", MANAGED_FIELDS),
    (
        r#"fv-builtin"#,
        r#"wrong type"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (r#"fv-custom"#, r#"apply strict"#, "/body/code", GAP),
    (
        r#"fv-custom"#,
        r#"apply strict"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (r#"fv-custom"#, r#"apply strict"#, "/body/reason", GAP),
    (r#"fv-custom"#, r#"apply strict"#, "/status", GAP),
    (r#"fv-custom"#, r#"patch strict"#, "/body/code", GAP),
    (
        r#"fv-custom"#,
        r#"patch strict"#,
        "/body/details",
        ERROR_TEXT,
    ),
    (
        r#"fv-custom"#,
        r#"patch strict"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (r#"fv-custom"#, r#"patch strict"#, "/body/reason", GAP),
    (r#"fv-custom"#, r#"patch strict"#, "/status", GAP),
    (r#"fv-duplicates"#, r#"yaml strict"#, "/body", GAP),
    (r#"fv-duplicates"#, r#"yaml strict"#, "/body/code", GAP),
    (
        r#"fv-duplicates"#,
        r#"yaml strict"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (r#"fv-duplicates"#, r#"yaml strict"#, "/body/reason", GAP),
    (r#"fv-duplicates"#, r#"yaml strict"#, "/body/status", GAP),
    (r#"fv-duplicates"#, r#"yaml strict"#, "/status", GAP),
    (r#"gc-background"#, r#"dependent"#, "/body", MANAGED_FIELDS),
    (
        r#"gc-background"#,
        r#"two controllers"#,
        "/body/details",
        ERROR_TEXT,
    ),
    (
        r#"gc-background"#,
        r#"two controllers"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (
        r#"gc-foreground"#,
        r#"dependent deleting"#,
        "/body",
        MANAGED_FIELDS,
    ),
    (
        r#"gc-orphan"#,
        r#"dependent orphaned"#,
        "/body",
        MANAGED_FIELDS,
    ),
    (r#"kubectl-everyday"#, r#"get yaml"#, "/stdout", KUBECTL),
    (
        r#"kubectl-everyday"#,
        r#"managed fields"#,
        "/stdout",
        CSA_UPGRADE,
    ),
    (
        r#"kubectl-everyday"#,
        r#"ssa migration"#,
        "/exit",
        CSA_UPGRADE,
    ),
    (
        r#"kubectl-everyday"#,
        r#"ssa migration"#,
        "/stderr",
        CSA_UPGRADE,
    ),
    (
        r#"kubectl-everyday"#,
        r#"ssa migration"#,
        "/stdout",
        CSA_UPGRADE,
    ),
    (
        r#"kubectl-sandbox"#,
        r#"describe with events"#,
        "/stdout",
        KUBECTL,
    ),
    (r#"kubectl-sandbox"#, r#"get events"#, "/stdout", KUBECTL),
    (
        r#"kubectl-sandbox"#,
        r#"get several kinds"#,
        "/stdout",
        KUBECTL,
    ),
    (
        r#"kubectl-sandbox"#,
        r#"wait condition"#,
        "/stdout",
        KUBECTL,
    ),
    (r#"kubectl-sandbox"#, r#"wait jsonpath"#, "/stdout", KUBECTL),
    (r#"ns-lifecycle"#, r#"content remaining"#, "/body", GAP),
    (r#"ns-lifecycle"#, r#"delete again"#, "/body", GAP),
    (r#"ns-lifecycle"#, r#"release"#, "/body", GAP),
    (r#"ns-lifecycle"#, r#"update held allowed"#, "/body", GAP),
    (r#"ns-protected"#, r#"list by phase"#, "/body", GAP),
    (r#"ns-protected"#, r#"spec finalizers patch"#, "/body", GAP),
    (r#"ns-protected"#, r#"status patch"#, "/body", GAP),
    (r#"ns-protected"#, r#"status patch"#, "/body/code", GAP),
    (
        r#"ns-protected"#,
        r#"status patch"#,
        "/body/details",
        ERROR_TEXT,
    ),
    (
        r#"ns-protected"#,
        r#"status patch"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (r#"ns-protected"#, r#"status patch"#, "/body/reason", GAP),
    (r#"ns-protected"#, r#"status patch"#, "/body/status", GAP),
    (r#"ns-protected"#, r#"status patch"#, "/status", GAP),
    (
        r#"occ-configmap"#,
        r#"uid mismatch"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (
        r#"partial-metadata"#,
        r#"list asked as single"#,
        "/body/message",
        TABLES,
    ),
    (r#"partial-metadata"#, r#"list widgets"#, "/body", TABLES),
    (
        r#"patch-types"#,
        r#"json bad body"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (
        r#"patch-types"#,
        r#"merge bad json"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (r#"patch-types"#, r#"strategic delete key"#, "/body", GAP),
    (r#"patch-types"#, r#"strategic finalizers"#, "/body", GAP),
    (r#"ssa-builtin"#, r#"apply yaml"#, "/body", GAP),
    (
        r#"ssa-ownership"#,
        r#"shared same value"#,
        "/body",
        MANAGED_FIELDS,
    ),
    (
        r#"ssa-ownership"#,
        r#"update by carol"#,
        "/body",
        MANAGED_FIELDS,
    ),
    (r#"ssa-topology"#, r#"duplicate map key"#, "/body", GAP),
    (r#"ssa-topology"#, r#"duplicate map key"#, "/body/code", GAP),
    (
        r#"ssa-topology"#,
        r#"duplicate map key"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (
        r#"ssa-topology"#,
        r#"duplicate map key"#,
        "/body/status",
        GAP,
    ),
    (r#"ssa-topology"#, r#"duplicate map key"#, "/status", GAP),
    (r#"ssa-topology"#, r#"duplicate set item"#, "/body", GAP),
    (
        r#"ssa-topology"#,
        r#"duplicate set item"#,
        "/body/code",
        GAP,
    ),
    (
        r#"ssa-topology"#,
        r#"duplicate set item"#,
        "/body/message",
        ERROR_TEXT,
    ),
    (
        r#"ssa-topology"#,
        r#"duplicate set item"#,
        "/body/status",
        GAP,
    ),
    (r#"ssa-topology"#, r#"duplicate set item"#, "/status", GAP),
    (r#"sub-scale"#, r#"after scale"#, "/body", MANAGED_FIELDS),
    (r#"tables"#, r#"configmap"#, "/body", TABLES),
    (r#"tables"#, r#"configmaps"#, "/body", TABLES),
    (r#"tables"#, r#"namespace"#, "/body", TABLES),
    (r#"tables"#, r#"not acceptable"#, "/body", TABLES),
    (r#"tables"#, r#"not acceptable"#, "/body/code", TABLES),
    (r#"tables"#, r#"not acceptable"#, "/body/message", TABLES),
    (r#"tables"#, r#"not acceptable"#, "/body/reason", TABLES),
    (r#"tables"#, r#"not acceptable"#, "/body/status", TABLES),
    (r#"tables"#, r#"not acceptable"#, "/status", TABLES),
    (r#"tables"#, r#"secrets"#, "/body", TABLES),
    (r#"tables"#, r#"widgets"#, "/body", TABLES),
    (r#"tables"#, r#"widgets with object"#, "/body", TABLES),
    (r#"watch-expired"#, r#"expired"#, "/events", GAP),
    (r#"watch-expired"#, r#"list too old exact"#, "/body", GAP),
    (
        r#"watch-initial-events"#,
        r#"without match"#,
        "/events",
        GAP,
    ),
    (
        r#"watch-selectors"#,
        r#"field selector"#,
        "/events",
        MANAGED_FIELDS,
    ),
    (
        r#"watch-selectors"#,
        r#"label selector transitions"#,
        "/events",
        MANAGED_FIELDS,
    ),
];

/// The known differences of one observation of one sequence.
pub fn explains(sequence: &str, label: &str) -> Vec<Explain> {
    KNOWN
        .iter()
        .filter(|(s, l, _, _)| *s == sequence && *l == label)
        .map(|(_, _, path, reason)| Explain::new(*path, *reason))
        .collect()
}
