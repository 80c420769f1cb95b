//! `eks-karpenter`: the eks-karpenter-bootstrapper end to end (provider.md §9.3; the spec gives
//! the scenario no ACC id, so the steps cite [KB-..] and [PLG-..]). An EKS Cluster made by
//! Kany8s from a ClusterClass over the eks-ack RGD (its `vpc-node-subnet-ids` variable patched
//! into the control plane's subnets) opts in with the label `eks.kany8s.io/karpenter: enabled`
//! and `eks.kany8s.io/oidc-thumbprint-auto: enabled`. ACK is played by [`crate::ack`]: the EKS
//! Cluster becomes ACTIVE with an OIDC issuer on loopback (a TLS server with an rcgen root →
//! intermediate → leaf chain) and the VPC of its subnets; every other ACK object is synced and
//! the node SecurityGroup is created in EC2. EC2 is moto in server mode on loopback, started
//! here (`make moto`; missing moto fails when `CI` is set, else the scenario is skipped with a
//! message). The "workload cluster" is the target's own API server, through `<cluster>-kubeconfig`
//! (the rotator's part, covered by `eks-rotator`, is played by the scenario).
//!
//! The bootstrapper runs in this process (the library the `eks-karpenter-bootstrapper` binary
//! runs) with the arguments its chart renders, fixed dummy credentials for moto (no provider
//! chain: nothing but moto is dialled) and leader election; its thumbprint resolver trusts the
//! scenario's root. Checked: the finalizer and label; the ACK iam/ec2/eks objects with their
//! names (AWS names shortened when too long), tags, annotations and owner; the thumbprint of
//! the top intermediate CA; Flux, the NodePool ConfigMap and ClusterResourceSet; the rollout
//! restarts; a steady pass that writes nothing; deletion: Flux suspended, Karpenter stopped in
//! the workload cluster, exactly the tagged instances terminated and the unattached ENIs of the
//! managed SecurityGroup deleted in moto, the finalizer released. On the upstream target the
//! chart is `helm install`ed first, the bootstrapper runs with the arguments of the chart's
//! Deployment as the chart's ServiceAccount (so kube-apiserver's authorizer checks the chart's
//! rules), and `helm uninstall` removes its cluster-wide objects at the end.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kany8s_eks::BOOTSTRAPPER;
use kany8s_eks::bootstrapper::flags::{Flags, LEASE_NAME};
use kany8s_eks::bootstrapper::run::{Options, run as run_bootstrapper};
use kany8s_eks::bootstrapper::thumbprint::{Resolver, sha1_hex};
use kany8s_eks::lease::Election;
use kany8s_eks::manager::{self, Process};
use kany8s_eks::metrics::Metrics;
use kany8s_eks::testing::issuer::{Chain, Issuer};
use kany8s_eks::testing::moto::{self, Moto, Network};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::common::{
    CAPI, Task, annotation, apply_rgds, check_cluster_owner, container_args, event, install_chart,
    object, plugin_process_args, secret_manifest, uninstall_chart, wait_count, wait_event,
    wait_lease_held,
};
use crate::ack::{ACCOUNT, Aws, Published};
use crate::harness::{Failure, Harness, Target, check, check_eq, writers};

/// Long enough that the controller role's AWS name must be shortened ([KB-04]).
const CLUSTER: &str = "karpenter-acceptance-cluster-with-a-long-name";
const REGION: &str = moto::REGION;
const VERSION: &str = "v1.34.2";
const EKS_ACK_RGD: (&str, &str) = ("control-plane/eks-ack.yaml", "eks-ack.kro.run");
const CLASS: &str = "eks-karpenter";
/// The helm release of the chart on the upstream target.
const RELEASE: &str = "eks-karpenter-bootstrapper";
const MANAGED_BY: &str = "eks.kany8s.io/managed-by";
const OIDC_ID: &str = "0123456789ABCDEF0123456789ABCDEF";
/// The fast schedule the chart is given (`args.*`): a missing prerequisite is looked at again
/// after 1 s.
const SCHEDULE: [(&str, &str, &str); 2] = [
    ("args.failureBackoff", "failure-backoff", "1s"),
    ("args.steadyStateRequeue", "steady-state-requeue", "10m"),
];
/// The CRDs this project writes for what the bootstrapper drives (ACK, Flux, Karpenter, and
/// the ClusterResourceSet, which real Cluster API ships).
const CRDS: [&str; 13] = [
    "crds/ack/eks.services.k8s.aws_clusters.yaml",
    "crds/ack/eks.services.k8s.aws_accessentries.yaml",
    "crds/ack/eks.services.k8s.aws_fargateprofiles.yaml",
    "crds/ack/iam.services.k8s.aws_roles.yaml",
    "crds/ack/iam.services.k8s.aws_policies.yaml",
    "crds/ack/iam.services.k8s.aws_openidconnectproviders.yaml",
    "crds/ack/iam.services.k8s.aws_instanceprofiles.yaml",
    "crds/ack/ec2.services.k8s.aws_securitygroups.yaml",
    "crds/flux/source.toolkit.fluxcd.io_ocirepositories.yaml",
    "crds/flux/helm.toolkit.fluxcd.io_helmreleases.yaml",
    "crds/karpenter/karpenter.sh_nodepools.yaml",
    "crds/karpenter/karpenter.sh_nodeclaims.yaml",
    "crds/karpenter/karpenter.k8s.aws_ec2nodeclasses.yaml",
];
const CLUSTER_RESOURCE_SET_CRD: &str = "crds/capi/addons.cluster.x-k8s.io_clusterresourcesets.yaml";
const IAM: &str = "iam.services.k8s.aws/v1alpha1";
const EKS: &str = "eks.services.k8s.aws/v1alpha1";
const EC2: &str = "ec2.services.k8s.aws/v1alpha1";
const OCI: &str = "source.toolkit.fluxcd.io/v1beta2";
const HELM: &str = "helm.toolkit.fluxcd.io/v2";
const CRS: &str = "addons.cluster.x-k8s.io/v1beta2";

/// The eks-karpenter ClusterClass: the eks-ack RGD as control plane, the node subnets patched
/// into its subnets, and the variables the bootstrapper reads ([KB-02]).
const CLUSTER_CLASS: &str = r#"
apiVersion: controlplane.cluster.x-k8s.io/v1alpha1
kind: Kany8sControlPlaneTemplate
metadata:
  name: eks-karpenter-control-plane
  namespace: __NAMESPACE__
spec:
  template:
    spec:
      resourceGraphDefinitionRef:
        name: eks-ack.kro.run
      kroSpec:
        region: __REGION__
---
apiVersion: infrastructure.cluster.x-k8s.io/v1alpha1
kind: Kany8sClusterTemplate
metadata:
  name: eks-karpenter-infra
  namespace: __NAMESPACE__
spec:
  template:
    spec: {}
---
apiVersion: cluster.x-k8s.io/v1beta2
kind: ClusterClass
metadata:
  name: eks-karpenter
  namespace: __NAMESPACE__
spec:
  controlPlane:
    templateRef:
      apiVersion: controlplane.cluster.x-k8s.io/v1alpha1
      kind: Kany8sControlPlaneTemplate
      name: eks-karpenter-control-plane
  infrastructure:
    templateRef:
      apiVersion: infrastructure.cluster.x-k8s.io/v1alpha1
      kind: Kany8sClusterTemplate
      name: eks-karpenter-infra
  variables:
  - name: vpc-node-subnet-ids
    required: true
    schema:
      openAPIV3Schema:
        type: array
        items: {type: string}
  - name: vpc-security-group-ids
    required: false
    schema:
      openAPIV3Schema:
        type: array
        items: {type: string}
  - name: vpc-node-security-group-ids
    required: false
    schema:
      openAPIV3Schema:
        type: array
        items: {type: string}
  - name: karpenter-node-role-additional-policy-arns
    required: false
    schema:
      openAPIV3Schema:
        type: array
        items: {type: string}
  patches:
  - name: subnets
    definitions:
    - selector:
        apiVersion: controlplane.cluster.x-k8s.io/v1alpha1
        kind: Kany8sControlPlaneTemplate
        matchResources:
          controlPlane: true
      jsonPatches:
      - op: add
        path: /spec/template/spec/kroSpec/subnetIDs
        valueFrom:
          variable: vpc-node-subnet-ids
"#;

/// What the scenario runs beside the target.
struct World {
    moto: Moto,
    net: Network,
    chain: Chain,
    issuer: Issuer,
}

/// The bootstrapper running in this process.
struct Bootstrapper {
    metrics: Arc<Metrics>,
    /// The chart's objects' name on the upstream target (None elsewhere).
    chart: Option<String>,
    _task: Task,
}

/// [KB-04]: `shorten(name, max)` as the spec writes it: `name[:max-13] + "-" +
/// hex(sha256(name))[:12]` when `name` is longer than `max`.
fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let digest: String = Sha256::digest(name.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}-{}", &name[..max - 13], &digest[..12])
}

/// The arguments the chart renders for the values this scenario sets, in its order (no
/// Karpenter chart version: the bootstrapper's default).
fn expected_args(namespace: &str, moto: &str) -> Vec<String> {
    let mut args = plugin_process_args(namespace);
    args.extend(SCHEDULE.map(|(_, flag, value)| format!("--{flag}={value}")));
    args.push(format!("--aws-endpoint-url={moto}"));
    args
}

fn tag_map(tags: &Value) -> std::collections::BTreeMap<String, String> {
    match tags {
        Value::Array(list) => list
            .iter()
            .filter_map(|t| Some((t["key"].as_str()?.into(), t["value"].as_str()?.into())))
            .collect(),
        Value::Object(map) => map
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect(),
        _ => Default::default(),
    }
}

/// The value of topology variable `name` of a Cluster (its JSON).
fn variable(cluster: &Value, name: &str) -> Value {
    cluster["spec"]["topology"]["variables"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == name))
        .map(|v| v["value"].clone())
        .unwrap_or(Value::Null)
}

/// How many reconciles the bootstrapper has finished (every result).
fn reconciles(metrics: &Metrics) -> f64 {
    let prefix = format!("controller_runtime_reconcile_total{{controller=\"{BOOTSTRAPPER}\"");
    metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub(super) async fn run(h: &Harness) -> Result<(), Failure> {
    let Some(world) = a_world_prepared(h).await? else {
        return Ok(());
    };
    let bootstrapper = b_bootstrapper_started(h, &world).await?;
    let eks = c_cluster_opts_in_and_waits_for_ack(h, &world).await?;
    let _ack = d_objects_written(h, &world, &eks).await?;
    e_steady_pass_writes_nothing(h, &bootstrapper).await?;
    f_deletion_cleans_up(h, &world, &eks).await?;
    g_chart_uninstalled(h, bootstrapper).await
}

/// The values the chart is installed with: this namespace, only its Clusters, the fast
/// schedule, EC2 at moto.
fn chart_values(namespace: &str, fullname: &str, moto: &str) -> Vec<(&'static str, String)> {
    let mut values = vec![
        ("fullnameOverride", fullname.to_string()),
        ("namespace", namespace.to_string()),
        ("createNamespace", "false".to_string()),
        ("args.watchNamespace", namespace.to_string()),
        ("aws.endpointUrl", moto.to_string()),
    ];
    values.extend(SCHEDULE.map(|(key, _, value)| (key, value.to_string())));
    values
}

/// The bootstrapper stops; on the upstream target `helm uninstall` removes the chart's
/// cluster-wide objects.
async fn g_chart_uninstalled(h: &Harness, bootstrapper: Bootstrapper) -> Result<(), Failure> {
    let Some(fullname) = bootstrapper.chart.clone() else {
        return Ok(());
    };
    drop(bootstrapper);
    h.step(
        "G",
        "helm uninstall removes the chart's ClusterRole and binding",
    );
    uninstall_chart(h, RELEASE, &fullname).await
}

/// Moto with a VPC (two private subnets behind a NAT gateway), the OIDC issuer, the CRDs, the
/// eks-ack RGD, the ClusterClass, and the workload side: Deployments `kube-system/coredns` and
/// `karpenter/karpenter`, and `<cluster>-kubeconfig` pointing at the target. `None` (after a
/// message) when moto is not installed and `CI` is not set.
async fn a_world_prepared(h: &Harness) -> Result<Option<World>, Failure> {
    h.step(
        "A",
        "moto and a VPC, a TLS OIDC issuer on loopback, the CRDs, the eks-ack RGD, the eks-karpenter ClusterClass, the workload cluster",
    );
    let Some(moto) = Moto::start().await else {
        println!(
            "[{}] skipped: moto_server not found (run `make moto`)",
            h.scenario
        );
        return Ok(None);
    };
    let net = moto::network(&moto.ec2(), "10.20.0.0/16").await;
    let chain = Chain::new(1, std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let issuer = Issuer::start(&chain).await;
    for crd in CRDS {
        h.apply_fixture(crd, &[]).await?;
    }
    // Real Cluster API ships the ClusterResourceSet; the embedded target's core does not.
    if h.target != Target::Upstream {
        h.apply_fixture(CLUSTER_RESOURCE_SET_CRD, &[]).await?;
    }
    h.apply_fixture("rbac/eks-ack-role.yaml", &[]).await?;
    for (api_version, kind) in [
        (EKS, "Cluster"),
        (IAM, "OpenIDConnectProvider"),
        (EC2, "SecurityGroup"),
        (HELM, "HelmRelease"),
        (CRS, "ClusterResourceSet"),
        ("karpenter.sh/v1", "NodePool"),
    ] {
        h.wait(&format!("the {kind} API to be served"), || async {
            Ok(h.api(api_version, kind).await.map(|_| ()).map_err(|e| e.0))
        })
        .await?;
    }
    apply_rgds(h, &[EKS_ACK_RGD]).await?;
    h.apply(CLUSTER_CLASS, &[("REGION", REGION)]).await?;
    for (namespace, name) in [("kube-system", "coredns"), ("karpenter", "karpenter")] {
        let namespaces: Api<Namespace> = Api::all(h.client.clone());
        if namespaces.get_opt(namespace).await?.is_none() {
            namespaces
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(json!({"metadata": {"name": namespace}}))?,
                )
                .await?;
        }
        let deployments: Api<Deployment> = Api::namespaced(h.client.clone(), namespace);
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": name, "image": "registry.kany8s.test/x:1"}]}}}});
        deployments
            .patch(
                name,
                &PatchParams::apply("acceptance").force(),
                &Patch::Apply(&deployment),
            )
            .await?;
    }
    let workload = match h.target {
        Target::Upstream => h.workload_kubeconfig("karpenter").await?,
        _ => std::fs::read_to_string(&h.kubeconfig)
            .map_err(|e| Failure(format!("{}: {e}", h.kubeconfig.display())))?,
    };
    h.apply(
        &secret_manifest(
            &format!("{CLUSTER}-kubeconfig"),
            &h.namespace,
            Some(CLUSTER),
            &workload,
        ),
        &[],
    )
    .await?;
    Ok(Some(World {
        moto,
        net,
        chain,
        issuer,
    }))
}

/// [KB-01]: the bootstrapper starts with the chart's arguments and holds its Lease.
async fn b_bootstrapper_started(h: &Harness, world: &World) -> Result<Bootstrapper, Failure> {
    h.step(
        "B",
        "the bootstrapper starts with the chart's arguments (EC2: moto) and holds its Lease",
    );
    let expected = expected_args(&h.namespace, &world.moto.endpoint);
    let (args, client, chart) = if h.target == Target::Upstream {
        let fullname = format!("{}-karpenter", h.namespace);
        let installed = install_chart(
            h,
            "eks-karpenter-bootstrapper",
            RELEASE,
            &fullname,
            &chart_values(&h.namespace, &fullname, &world.moto.endpoint),
        )
        .await?;
        let args = container_args(&installed.deployment);
        (args, installed.client, Some(fullname))
    } else {
        (expected.clone(), h.client.clone(), None)
    };
    check_eq("the bootstrapper's arguments", &args, &expected)?;
    let flags = Flags::parse_args(std::iter::once(BOOTSTRAPPER.to_string()).chain(args))
        .map_err(|e| Failure(format!("the chart's arguments: {e}")))?;
    let settings = flags.settings().map_err(Failure)?;
    check_eq(
        "--aws-endpoint-url",
        settings.aws_endpoint_url.as_deref(),
        Some(world.moto.endpoint.as_str()),
    )?;
    let identity = format!("{}-acceptance", h.namespace);
    let election = settings
        .process
        .leader_elect
        .then(|| Election::new(LEASE_NAME, &h.namespace, &identity));
    let metrics = Arc::new(Metrics::new(
        BOOTSTRAPPER,
        1,
        election.as_ref().map(|e| e.name.as_str()),
    ));
    let options = Options {
        namespace: settings.process.watch_namespace.clone(),
        timing: settings.timing,
        chart_version: settings.chart_version.clone(),
        instance: Some(identity),
        metrics: metrics.clone(),
        thumbprints: Resolver::with_roots([&world.chain.root])
            .map_err(|e| Failure(format!("the issuer's root: {e:?}")))?,
        ..Options::default()
    };
    // moto's endpoint (the flag) and fixed dummy credentials: no provider chain, so nothing
    // else is dialled.
    let ec2 = world.moto.ec2();
    let process = Process {
        name: BOOTSTRAPPER,
        metrics: metrics.clone(),
        election,
        // No kubelet probes this process, and nothing scrapes it: no listener.
        health_address: None,
        metrics_address: None,
    };
    let task = tokio::spawn(async move {
        let bootstrapper = run_bootstrapper(client.clone(), options, ec2);
        if let Err(error) =
            manager::serve(client, process, bootstrapper, std::future::pending(), None).await
        {
            tracing::error!(%error, "eks-karpenter-bootstrapper stopped");
        }
    });
    wait_lease_held(h, LEASE_NAME, "bootstrapper").await?;
    Ok(Bootstrapper {
        metrics,
        chart,
        _task: Task(task),
    })
}

/// [KB-02], [KB-03]: the topology Cluster opts in; Cluster API generates its control plane
/// (whose name is the EKS name, [PLG-02]) and kro renders the ACK Cluster; the bootstrapper adds
/// its finalizer and label and waits for ACK (`ACKClusterNotReady`), writing nothing. The
/// FargateProfiles the class would provision are created (ACK makes them ACTIVE later).
/// Returns the EKS name.
async fn c_cluster_opts_in_and_waits_for_ack(
    h: &Harness,
    world: &World,
) -> Result<String, Failure> {
    h.step(
        "C",
        "an opted-in topology Cluster: finalizer and label; the ACK Cluster is not ready, nothing is written",
    );
    let cluster = json!({"apiVersion": CAPI, "kind": "Cluster",
        "metadata": {"name": CLUSTER, "namespace": h.namespace,
            "labels": {"eks.kany8s.io/karpenter": "enabled"},
            "annotations": {"eks.kany8s.io/oidc-thumbprint-auto": "enabled"}},
        "spec": {"topology": {"classRef": {"name": CLASS}, "version": VERSION,
            "variables": [{"name": "vpc-node-subnet-ids", "value": world.net.private}]}}});
    h.apply(&serde_json::to_string(&cluster)?, &[]).await?;
    let cluster = h
        .wait_object(
            CAPI,
            "Cluster",
            CLUSTER,
            "its control plane generated",
            |o| o["spec"]["controlPlaneRef"]["name"].is_string(),
        )
        .await?;
    let eks = cluster["spec"]["controlPlaneRef"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ack = h
        .wait_object(EKS, "Cluster", &eks, "rendered by kro", |_| true)
        .await?;
    check_eq(
        "ACK subnets (the topology variable)",
        &ack["spec"]["resourcesVPCConfig"]["subnetIDs"],
        &json!(world.net.private),
    )?;
    h.wait_object(CAPI, "Cluster", CLUSTER, "finalizer and label", |o| {
        o["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == "eks.kany8s.io/karpenter-cleanup"))
            && o["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"] == CLUSTER
    })
    .await?;
    h.wait("the bootstrapper waiting for the ACK Cluster", || async {
        Ok(match event(h, CLUSTER, "ACKClusterNotReady").await? {
            Some((kind, note)) if note.contains(&eks) => Ok((kind, note)),
            other => Err(format!("{other:?}")),
        })
    })
    .await
    .and_then(|(kind, _)| check_eq("ACKClusterNotReady type", kind.as_str(), "Normal"))?;
    for (api_version, kind, name) in [
        (EC2, "SecurityGroup", format!("{CLUSTER}-karpenter-node-sg")),
        (
            IAM,
            "OpenIDConnectProvider",
            format!("{CLUSTER}-oidc-provider"),
        ),
    ] {
        check(h.get(api_version, kind, &name).await?.is_none(), || {
            format!("{kind} {name} was written before the ACK Cluster was ready")
        })?;
    }
    for suffix in ["karpenter", "coredns"] {
        let profile = json!({"apiVersion": EKS, "kind": "FargateProfile",
            "metadata": {"name": format!("{CLUSTER}-{suffix}"), "namespace": h.namespace,
                "annotations": {"services.k8s.aws/region": REGION}},
            "spec": {"name": format!("{CLUSTER}-{suffix}"), "clusterName": eks,
                "subnets": world.net.private}});
        h.apply(&serde_json::to_string(&profile)?, &[]).await?;
    }
    Ok(eks)
}

/// [KB-04]: a managed object: the bootstrapper's annotation, the cluster-name label, a
/// non-controller owner (the Cluster) and, for ACK objects, the region and the standard tags.
fn check_managed(object: &Value, cluster: &Value, eks: &str, ack: bool) -> Result<(), Failure> {
    let name = format!(
        "{} {}",
        object["kind"].as_str().unwrap_or_default(),
        object["metadata"]["name"].as_str().unwrap_or_default()
    );
    check_eq(
        &format!("{name} managed-by"),
        annotation(object, MANAGED_BY),
        BOOTSTRAPPER,
    )?;
    check_eq(
        &format!("{name} cluster-name label"),
        &object["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"],
        &json!(CLUSTER),
    )?;
    check_cluster_owner(object, cluster, &name)?;
    if ack {
        check_eq(
            &format!("{name} region"),
            annotation(object, "services.k8s.aws/region"),
            REGION,
        )?;
        let tags = tag_map(&object["spec"]["tags"]);
        for (key, value) in [
            ("kany8s.io/managed-by", BOOTSTRAPPER),
            ("kany8s.io/cluster-name", CLUSTER),
            ("kany8s.io/cluster-namespace", h_namespace(object)),
            ("kany8s.io/eks-cluster-name", eks),
        ] {
            check_eq(
                &format!("{name} tag {key}"),
                tags.get(key).map(String::as_str),
                Some(value),
            )?;
        }
    }
    Ok(())
}

fn h_namespace(object: &Value) -> &str {
    object["metadata"]["namespace"].as_str().unwrap_or_default()
}

/// Waits until ACK reports `kind/name` synced ([`crate::ack::synced_status`]).
async fn synced(h: &Harness, api_version: &str, kind: &str, name: &str) -> Result<Value, Failure> {
    h.wait_object(api_version, kind, name, "synced by ACK", |o| {
        o["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "ACK.ResourceSynced" && c["status"] == "True")
        })
    })
    .await
}

/// [KB-03]–[KB-05], [KB-07]: ACK reports the EKS Cluster ACTIVE (issuer on loopback, VPC from
/// moto): the node SecurityGroup (created in moto by ACK; its id patched into the variables),
/// the IAM/EKS objects, the thumbprint, Flux, the NodePool ConfigMap and ClusterResourceSet,
/// the rollout restarts, `BootstrapperReconciled`. Returns the running ACK actor.
async fn d_objects_written(h: &Harness, world: &World, eks: &str) -> Result<Task, Failure> {
    h.step(
        "D",
        "ACK reports ACTIVE: the node SG in EC2 and the variables, the ACK IAM/EKS objects with the thumbprint, Flux, the NodePool ConfigMap and ClusterResourceSet, the rollout restarts",
    );
    let endpoint = "https://eks.kany8s.test".to_string();
    let issuer = format!("{}/id/{OIDC_ID}", world.issuer.base);
    let actor = Task(tokio::spawn(crate::ack::run_with_aws(
        h.client.clone(),
        h.namespace.clone(),
        Published {
            endpoint: endpoint.clone(),
            certificate_authority: String::new(),
        },
        Aws {
            issuer: issuer.clone(),
            ec2: world.moto.ec2(),
        },
    )));
    let cluster = object(h, CAPI, "Cluster", CLUSTER).await?;
    // [KB-03]: region and EKS name persisted on the Cluster.
    h.wait_object(
        CAPI,
        "Cluster",
        CLUSTER,
        "region and EKS name annotations",
        |o| {
            annotation(o, "eks.kany8s.io/region") == REGION
                && annotation(o, "eks.kany8s.io/cluster-name") == eks
        },
    )
    .await?;

    // [KB-04]: the node SecurityGroup, created in EC2 by ACK, its id in the variables.
    let sg_name = format!("{CLUSTER}-karpenter-node-sg");
    let sg = synced(h, EC2, "SecurityGroup", &sg_name).await?;
    check_managed(&sg, &cluster, eks, true)?;
    check_eq("SG vpcID", &sg["spec"]["vpcID"], &json!(world.net.vpc))?;
    check_eq(
        "SG AWS name",
        &sg["spec"]["name"],
        &json!(shorten(&format!("{eks}-karpenter-node"), 255)),
    )?;
    check_eq(
        "SG ingress (the VPC CIDR)",
        &sg["spec"]["ingressRules"][0]["ipRanges"][0]["cidrIP"],
        &json!("10.20.0.0/16"),
    )?;
    let sg_tags = tag_map(&sg["spec"]["tags"]);
    check_eq(
        "SG discovery tag",
        sg_tags.get("karpenter.sh/discovery").map(String::as_str),
        Some(eks),
    )?;
    let sg_id = sg["status"]["id"].as_str().unwrap_or_default().to_string();
    check(sg_id.starts_with("sg-"), || {
        format!("SG status.id {sg_id:?}")
    })?;
    h.wait_object(
        CAPI,
        "Cluster",
        CLUSTER,
        "the SG id in the variables",
        |o| {
            variable(o, "vpc-node-security-group-ids") == json!([sg_id])
                && variable(o, "vpc-security-group-ids") == json!([sg_id])
        },
    )
    .await?;
    wait_event(h, CLUSTER, "TopologyVariablePatched").await?;

    // [KB-04]: the IAM and EKS objects, synced by ACK.
    let controller_role = shorten(&format!("{eks}-karpenter-controller"), 64);
    check(
        controller_role.len() == 64 && controller_role != format!("{eks}-karpenter-controller"),
        || format!("the controller role's AWS name {controller_role} was expected shortened"),
    )?;
    let node_role = shorten(&format!("{eks}-node"), 64);
    let oidc = synced(
        h,
        IAM,
        "OpenIDConnectProvider",
        &format!("{CLUSTER}-oidc-provider"),
    )
    .await?;
    check_eq("OIDC url", &oidc["spec"]["url"], &json!(issuer))?;
    check_eq(
        "OIDC clientIDs",
        &oidc["spec"]["clientIDs"],
        &json!(["sts.amazonaws.com"]),
    )?;
    check_eq(
        "OIDC thumbprints (the top intermediate CA)",
        &oidc["spec"]["thumbprints"],
        &json!([sha1_hex(&world.chain.intermediates[0])]),
    )?;
    let policy = synced(
        h,
        IAM,
        "Policy",
        &format!("{CLUSTER}-karpenter-controller-policy"),
    )
    .await?;
    check_eq(
        "policy AWS name",
        &policy["spec"]["name"],
        &json!(shorten(&format!("{eks}-karpenter-controller"), 128)),
    )?;
    let controller = synced(h, IAM, "Role", &format!("{CLUSTER}-karpenter-controller")).await?;
    check_eq(
        "controller role AWS name (shortened)",
        &controller["spec"]["name"],
        &json!(controller_role),
    )?;
    let trust: Value = serde_json::from_str(
        controller["spec"]["assumeRolePolicyDocument"]
            .as_str()
            .unwrap_or_default(),
    )?;
    let host_path = issuer.trim_start_matches("https://");
    check_eq(
        "IRSA trust principal",
        &trust["Statement"][0]["Principal"]["Federated"],
        &json!(format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{host_path}")),
    )?;
    check_eq(
        "IRSA trust subject",
        &trust["Statement"][0]["Condition"]["StringEquals"][format!("{host_path}:sub")],
        &json!("system:serviceaccount:karpenter:karpenter"),
    )?;
    let node = synced(h, IAM, "Role", &format!("{CLUSTER}-karpenter-node")).await?;
    check_eq(
        "node role AWS name",
        &node["spec"]["name"],
        &json!(node_role),
    )?;
    let profile = synced(
        h,
        IAM,
        "InstanceProfile",
        &format!("{CLUSTER}-karpenter-node-instance-profile"),
    )
    .await?;
    check_eq(
        "instance profile AWS name",
        &profile["spec"]["name"],
        &json!(shorten(&format!("{eks}-node"), 128)),
    )?;
    let entry = synced(h, EKS, "AccessEntry", &format!("{CLUSTER}-karpenter-node")).await?;
    check_eq(
        "access entry principal",
        &entry["spec"]["principalARN"],
        &json!(format!("arn:aws:iam::{ACCOUNT}:role/{node_role}")),
    )?;
    check_eq(
        "access entry type",
        &entry["spec"]["type"],
        &json!("EC2_LINUX"),
    )?;
    for object in [&oidc, &policy, &controller, &node, &profile, &entry] {
        check_managed(object, &cluster, eks, true)?;
    }

    // [KB-05]: Flux, the NodePool ConfigMap and the ClusterResourceSet.
    let flux = format!("{CLUSTER}-karpenter");
    let oci = h
        .wait_object(OCI, "OCIRepository", &flux, "written", |_| true)
        .await?;
    check_eq(
        "OCIRepository url",
        &oci["spec"]["url"],
        &json!("oci://public.ecr.aws/karpenter/karpenter"),
    )?;
    check_eq(
        "OCIRepository tag",
        &oci["spec"]["ref"]["tag"],
        &json!("1.0.8"),
    )?;
    let release = h
        .wait_object(HELM, "HelmRelease", &flux, "written", |_| true)
        .await?;
    let spec = &release["spec"];
    check_eq(
        "HelmRelease kubeConfig",
        &spec["kubeConfig"]["secretRef"]["name"],
        &json!(format!("{CLUSTER}-kubeconfig")),
    )?;
    check_eq(
        "HelmRelease target namespace",
        &spec["targetNamespace"],
        &json!("karpenter"),
    )?;
    check_eq(
        "HelmRelease settings.clusterName",
        &spec["values"]["settings"]["clusterName"],
        &json!(eks),
    )?;
    check_eq(
        "HelmRelease settings.clusterEndpoint",
        &spec["values"]["settings"]["clusterEndpoint"],
        &json!(endpoint),
    )?;
    check_eq(
        "HelmRelease role ARN",
        &spec["values"]["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"],
        &json!(format!("arn:aws:iam::{ACCOUNT}:role/{controller_role}")),
    )?;
    let nodepool = format!("{CLUSTER}-karpenter-nodepool");
    let config_map = h
        .wait_object("v1", "ConfigMap", &nodepool, "written", |_| true)
        .await?;
    let resources = config_map["data"]["resources.yaml"]
        .as_str()
        .unwrap_or_default();
    for wanted in [
        sg_id.as_str(),
        world.net.private[0].as_str(),
        world.net.private[1].as_str(),
        &shorten(&format!("{eks}-node"), 128),
    ] {
        check(resources.contains(wanted), || {
            format!("the NodePool YAML lacks {wanted}: {resources}")
        })?;
    }
    let crs = h
        .wait_object(CRS, "ClusterResourceSet", &nodepool, "written", |_| true)
        .await?;
    check_eq(
        "CRS strategy",
        &crs["spec"]["strategy"],
        &json!("Reconcile"),
    )?;
    check_eq(
        "CRS resources",
        &crs["spec"]["resources"],
        &json!([{"kind": "ConfigMap", "name": nodepool}]),
    )?;
    for object in [&oci, &release, &config_map, &crs] {
        check_managed(object, &cluster, eks, false)?;
    }

    // [KB-05]: the one-shot rollout restarts, recorded on the Cluster; [KB-07] steady.
    h.wait_object(
        CAPI,
        "Cluster",
        CLUSTER,
        "both rollout restarts recorded",
        |o| {
            !annotation(
                o,
                "eks.kany8s.io/karpenter-bootstrapper.coredns-restarted-at",
            )
            .is_empty()
                && !annotation(
                    o,
                    "eks.kany8s.io/karpenter-bootstrapper.karpenter-restarted-at",
                )
                .is_empty()
        },
    )
    .await?;
    for (namespace, name) in [("kube-system", "coredns"), ("karpenter", "karpenter")] {
        let deployment = Api::<Deployment>::namespaced(h.client.clone(), namespace)
            .get(name)
            .await?;
        let restarted = deployment
            .spec
            .and_then(|s| s.template.metadata)
            .and_then(|m| m.annotations)
            .is_some_and(|a| a.contains_key("kubectl.kubernetes.io/restartedAt"));
        check(restarted, || {
            format!("{namespace}/{name} was not restarted")
        })?;
    }
    let (kind, note) = wait_event(h, CLUSTER, "BootstrapperReconciled").await?;
    check_eq(
        "BootstrapperReconciled",
        (kind.as_str(), note.as_str()),
        ("Normal", "karpenter bootstrap resources reconciled"),
    )?;
    check(
        event(h, CLUSTER, "OIDCThumbprintSkipped").await?.is_none(),
        || "the thumbprint was reported skipped".into(),
    )?;
    Ok(actor)
}

/// Every object the bootstrapper manages for `CLUSTER`, as (api version, kind, name).
fn managed() -> Vec<(&'static str, &'static str, String)> {
    vec![
        (EC2, "SecurityGroup", format!("{CLUSTER}-karpenter-node-sg")),
        (
            IAM,
            "OpenIDConnectProvider",
            format!("{CLUSTER}-oidc-provider"),
        ),
        (
            IAM,
            "Policy",
            format!("{CLUSTER}-karpenter-controller-policy"),
        ),
        (IAM, "Role", format!("{CLUSTER}-karpenter-controller")),
        (IAM, "Role", format!("{CLUSTER}-karpenter-node")),
        (
            IAM,
            "InstanceProfile",
            format!("{CLUSTER}-karpenter-node-instance-profile"),
        ),
        (EKS, "AccessEntry", format!("{CLUSTER}-karpenter-node")),
        (OCI, "OCIRepository", format!("{CLUSTER}-karpenter")),
        (HELM, "HelmRelease", format!("{CLUSTER}-karpenter")),
        ("v1", "ConfigMap", format!("{CLUSTER}-karpenter-nodepool")),
        (
            CRS,
            "ClusterResourceSet",
            format!("{CLUSTER}-karpenter-nodepool"),
        ),
    ]
}

/// [KB-07]: in the steady state another pass (a Cluster annotation change, which the
/// bootstrapper watches; its reconcile counter is the proof it ran) writes none of the managed
/// objects.
async fn e_steady_pass_writes_nothing(
    h: &Harness,
    bootstrapper: &Bootstrapper,
) -> Result<(), Failure> {
    h.step(
        "E",
        "steady state: another pass of the bootstrapper writes nothing",
    );
    let mut before = Vec::new();
    for (api_version, kind, name) in managed() {
        before.push(object(h, api_version, kind, &name).await?);
    }
    // `BootstrapperReconciled` (step D) is only posted by a pass that found everything in place.
    let counted = reconciles(&bootstrapper.metrics);
    super::common::merge_patch(
        h,
        super::common::CLUSTERS,
        CLUSTER,
        r#"{"metadata":{"annotations":{"kany8s.test/steady-pass":"1"}}}"#,
    )
    .await?;
    wait_count(
        h,
        "a pass of the bootstrapper over the changed Cluster (reconciles counted)",
        || reconciles(&bootstrapper.metrics),
        counted + 1.0,
    )
    .await?;
    for ((api_version, kind, name), old) in managed().into_iter().zip(&before) {
        let new = object(h, api_version, kind, &name).await?;
        check(
            new["metadata"]["resourceVersion"] == old["metadata"]["resourceVersion"],
            || {
                format!(
                    "{kind} {name} was written in the steady state: {}",
                    writers(old, &new)
                )
            },
        )?;
    }
    Ok(())
}

/// [KB-06]: deleting the Cluster suspends Flux, stops Karpenter in the workload cluster
/// (scaled to 0, its NodePools, NodeClaims and EC2NodeClasses deleted), terminates exactly the
/// instances tagged for this EKS cluster and deletes exactly the unattached CNI ENIs of the
/// managed SecurityGroup in moto, then releases the finalizer.
async fn f_deletion_cleans_up(h: &Harness, world: &World, eks: &str) -> Result<(), Failure> {
    h.step(
        "F",
        "delete the Cluster: Flux suspended, Karpenter stopped, the tagged instances terminated and the orphan ENIs deleted in moto, the finalizer released",
    );
    // Real Cluster API's ClusterResourceSet controller applies the NodePool ConfigMap to the
    // workload cluster (this target) on its own time; once it has, the Reconcile strategy only
    // re-applies when the ConfigMap changes, so the cleanup's deletions are not undone.
    if h.target == Target::Upstream {
        h.wait_object(
            CRS,
            "ClusterResourceSetBinding",
            CLUSTER,
            "the NodePool ConfigMap applied to the workload cluster",
            |binding| {
                binding["spec"]["bindings"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|b| b["resources"].as_array().into_iter().flatten())
                    .any(|r| r["applied"] == true)
            },
        )
        .await?;
    }
    for (api_version, kind) in [
        ("karpenter.sh/v1", "NodePool"),
        ("karpenter.sh/v1", "NodeClaim"),
        ("karpenter.k8s.aws/v1", "EC2NodeClass"),
    ] {
        let manifest = json!({"apiVersion": api_version, "kind": kind,
            "metadata": {"name": "default"}, "spec": {}});
        h.apply(&serde_json::to_string(&manifest)?, &[]).await?;
    }
    let ec2 = world.moto.ec2();
    let net = &world.net;
    let sg = object(
        h,
        EC2,
        "SecurityGroup",
        &format!("{CLUSTER}-karpenter-node-sg"),
    )
    .await?;
    let sg_id = sg["status"]["id"].as_str().unwrap_or_default().to_string();
    let tagged = moto::instances(&ec2, &net.private[0], 3, Some(eks)).await;
    let other = moto::instances(&ec2, &net.private[1], 1, Some("another-cluster")).await;
    let orphan = moto::eni(&ec2, &net.private[0], &sg_id, true).await;
    let attached = moto::eni(&ec2, &net.private[0], &sg_id, true).await;
    let not_cni = moto::eni(&ec2, &net.private[1], &sg_id, false).await;
    moto::attach(&ec2, &attached, &other[0]).await;
    let mut before = vec![orphan.clone(), attached.clone(), not_cni.clone()];
    before.sort();
    check_eq(
        "the SG's ENIs before",
        moto::enis(&ec2, &sg_id).await,
        before,
    )?;
    let release = h
        .observe(HELM, "HelmRelease", &format!("{CLUSTER}-karpenter"))
        .await?;

    h.kubectl(
        &[
            "delete",
            "clusters.cluster.x-k8s.io",
            CLUSTER,
            "-n",
            &h.namespace,
            "--wait=false",
        ],
        None,
    )
    .await?;
    let (kind, note) = wait_event(h, CLUSTER, "FluxSuspendedForDeletion").await?;
    check_eq(
        "FluxSuspendedForDeletion",
        (kind.as_str(), note.as_str()),
        (
            "Normal",
            "suspended Flux OCIRepository/HelmRelease for cluster deletion",
        ),
    )?;
    h.wait_gone(CAPI, "Cluster", CLUSTER).await?;
    check(release.saw(|r| r["spec"]["suspend"] == true), || {
        "the HelmRelease was never seen suspended".into()
    })?;
    let karpenter = Api::<Deployment>::namespaced(h.client.clone(), "karpenter")
        .get("karpenter")
        .await?;
    check_eq(
        "karpenter replicas",
        karpenter.spec.and_then(|s| s.replicas),
        Some(0),
    )?;
    for (api_version, kind) in [
        ("karpenter.sh/v1", "NodePool"),
        ("karpenter.sh/v1", "NodeClaim"),
        ("karpenter.k8s.aws/v1", "EC2NodeClass"),
    ] {
        h.wait_gone(api_version, kind, "default").await?;
    }
    let states = moto::states(&ec2, &tagged).await;
    check(states.iter().all(|s| s == "terminated"), || {
        format!("the tagged instances: {states:?}")
    })?;
    check_eq(
        "the other cluster's instance",
        moto::states(&ec2, &other).await,
        vec!["running".to_string()],
    )?;
    let mut left = vec![attached.clone(), not_cni.clone()];
    left.sort();
    check_eq("the SG's ENIs left", moto::enis(&ec2, &sg_id).await, left)?;
    // The managed objects go with their owner (the bootstrapper has no delete verb).
    for (api_version, kind, name) in managed() {
        h.wait_gone(api_version, kind, &name).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// [KB-04]: the spec's rule, checked on the lengths the scenario relies on.
    #[test]
    fn shorten_keeps_short_names_and_hashes_long_ones() {
        assert_eq!(shorten("demo-node", 64), "demo-node");
        let long = format!("{CLUSTER}-abcde-karpenter-controller");
        let short = shorten(&long, 64);
        assert_eq!(short.len(), 64);
        assert!(short.starts_with(&long[..51]));
        assert_eq!(&short[51..52], "-");
        assert!(short[52..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn the_chart_arguments_parse() {
        let args = expected_args("ns", "http://127.0.0.1:5000");
        let flags =
            Flags::parse_args(std::iter::once(BOOTSTRAPPER.to_string()).chain(args)).unwrap();
        let settings = flags.settings().unwrap();
        assert_eq!(
            settings.timing.failure_backoff,
            std::time::Duration::from_secs(1)
        );
        assert_eq!(settings.chart_version, "1.0.8");
        assert_eq!(settings.process.watch_namespace.as_deref(), Some("ns"));
    }
}
