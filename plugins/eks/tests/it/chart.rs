//! The Helm charts `charts/eks-kubeconfig-rotator` ([PKG-07], [ROT-10]) and
//! `charts/eks-karpenter-bootstrapper` ([KB-01], [KB-07]): `helm lint` and `helm template` over
//! several values sets, with the rendered objects checked — the RBAC is exactly what the plugin
//! uses, the image split (registry, repository, tag, digest, global registry), the AWS
//! credentials mount (and the bootstrapper's EC2 endpoint), the security context, and container
//! arguments the plugin's own flag parser accepts. helm is the one `make upstream` builds
//! (`$UPSTREAM_BIN/helm`, default `<repo>/.upstream/bin/helm`); without it the tests skip, and
//! fail when `CI` is set.

use std::path::PathBuf;
use std::process::Command;

use kany8s_eks::flags::Flags;
use kany8s_eks::rbac::{self, Rule};
use serde_json::{Value, json};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chart() -> PathBuf {
    chart_named(ROTATOR_CHART)
}

const ROTATOR_CHART: &str = "eks-kubeconfig-rotator";
const BOOTSTRAPPER_CHART: &str = "eks-karpenter-bootstrapper";

fn chart_named(name: &str) -> PathBuf {
    repo().join("charts").join(name)
}

/// The helm binary, or `None` (after saying so) when it is not built and CI is not set.
fn helm() -> Option<PathBuf> {
    let dir = std::env::var_os("UPSTREAM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".upstream/bin"));
    let helm = dir.join("helm");
    if helm.is_file() {
        return Some(helm);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but {} does not exist: run `make upstream` (or set UPSTREAM_BIN)",
        helm.display()
    );
    eprintln!(
        "skipping: {} does not exist (run `make upstream` or set UPSTREAM_BIN)",
        helm.display()
    );
    None
}

fn run(helm: &PathBuf, args: &[&str]) -> String {
    let output = Command::new(helm).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "helm {args:?}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The values sets the tests render, as `--set` arguments.
const VALUES_SETS: &[&[&str]] = &[
    &[],
    &[
        "global.imageRegistry=mirror.example:5000",
        "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ],
    &["image.registry=", "image.tag=v9.9.9"],
    &[
        "aws.credentials.secretName=aws-creds",
        "aws.credentials.secretKey=creds",
        "aws.credentials.profile=ack",
        "aws.region=eu-west-1",
    ],
    &[
        "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::111122223333:role/rotator",
        "args.metricsBindAddress=:8443",
        "args.watchNamespace=tenant-a",
        "args.refreshBefore=90s",
    ],
    &[
        "rbac.create=false",
        "createNamespace=false",
        "serviceAccount.create=false",
        "serviceAccount.name=existing",
    ],
];

/// `helm template` of the rotator's chart with `sets`, as JSON objects.
fn render(helm: &PathBuf, sets: &[&str]) -> Vec<Value> {
    render_chart(helm, ROTATOR_CHART, sets)
}

/// `helm template` of chart `name` with `sets`, as JSON objects.
fn render_chart(helm: &PathBuf, name: &str, sets: &[&str]) -> Vec<Value> {
    let chart = chart_named(name);
    let mut args = vec!["template", "release", chart.to_str().unwrap()];
    for set in sets {
        args.push("--set");
        args.push(set);
    }
    let text = run(helm, &args);
    yaml_serde::Deserializer::from_str(&text)
        .map(|document| serde::Deserialize::deserialize(document).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str) -> Option<&'a Value> {
    objects.iter().find(|o| o["kind"] == kind)
}

fn container(objects: &[Value]) -> Value {
    find(objects, "Deployment").unwrap()["spec"]["template"]["spec"]["containers"][0].clone()
}

fn env(container: &Value, name: &str) -> Option<Value> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .map(|e| e["value"].clone())
}

/// A rendered rule list as (group, resource, verbs) triples, one per resource.
fn rules_of(role: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for rule in role["rules"].as_array().unwrap() {
        let texts = |key: &str| -> Vec<String> {
            rule[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        for group in texts("apiGroups") {
            for resource in texts("resources") {
                out.push((group.clone(), resource, texts("verbs")));
            }
        }
    }
    out.sort();
    out
}

fn rules_of_code(rules: &[Rule]) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<_> = rules
        .iter()
        .map(|r| {
            (
                r.group.to_string(),
                r.resource.to_string(),
                r.verbs.iter().map(|v| v.to_string()).collect(),
            )
        })
        .collect();
    out.sort();
    out
}

/// [PKG-07]: `helm lint` passes for every values set, for both charts.
#[test]
fn pkg07_helm_lint() {
    let Some(helm) = helm() else { return };
    for (chart, sets) in VALUES_SETS.iter().map(|s| (chart(), *s)).chain(
        BOOTSTRAPPER_VALUES_SETS
            .iter()
            .map(|s| (chart_named(BOOTSTRAPPER_CHART), *s)),
    ) {
        let mut args = vec!["lint", "--strict", chart.to_str().unwrap()];
        for set in sets {
            args.push("--set");
            args.push(set);
        }
        run(&helm, &args);
    }
}

/// [ROT-10]: the ClusterRole and the leader-election Role are exactly the rules the rotator
/// uses ([`rbac::CLUSTER_RULES`], [`rbac::NAMESPACE_RULES`]), bound to its ServiceAccount.
#[test]
fn rot10_chart_rbac_is_what_the_code_uses() {
    let Some(helm) = helm() else { return };
    let objects = render(&helm, &[]);
    let cluster_role = find(&objects, "ClusterRole").unwrap();
    assert_eq!(rules_of(cluster_role), rules_of_code(rbac::CLUSTER_RULES));
    let role = find(&objects, "Role").unwrap();
    assert_eq!(role["metadata"]["namespace"], "kany8s-eks-system");
    assert_eq!(rules_of(role), rules_of_code(rbac::NAMESPACE_RULES));
    for binding in ["ClusterRoleBinding", "RoleBinding"] {
        let binding = find(&objects, binding).unwrap();
        assert_eq!(
            binding["subjects"],
            json!([{"kind": "ServiceAccount", "name": "eks-kubeconfig-rotator", "namespace": "kany8s-eks-system"}])
        );
    }
    // No Secret list/watch: the rotator reads Secrets live ([ROT-10]).
    assert!(!rbac::allows(rbac::CLUSTER_RULES, "", "secrets", "list"));
    assert!(!rbac::allows(rbac::CLUSTER_RULES, "", "secrets", "watch"));
    let without = render(&helm, VALUES_SETS[5]);
    for kind in [
        "ClusterRole",
        "Role",
        "ClusterRoleBinding",
        "RoleBinding",
        "Namespace",
        "ServiceAccount",
    ] {
        assert!(
            find(&without, kind).is_none(),
            "{kind} rendered with rbac/namespace/SA off"
        );
    }
    assert_eq!(
        find(&without, "Deployment").unwrap()["spec"]["template"]["spec"]["serviceAccountName"],
        "existing"
    );
}

/// [PKG-07]: the image from registry/repository/tag, the digest winning over the tag, the
/// global registry over the chart's, and no registry at all.
#[test]
fn pkg07_image_reference() {
    let Some(helm) = helm() else { return };
    let image = |sets: &[&str]| container(&render(&helm, sets))["image"].clone();
    assert_eq!(
        image(VALUES_SETS[0]),
        "ghcr.io/kany8s/eks-kubeconfig-rotator:0.1.0"
    );
    assert_eq!(
        image(VALUES_SETS[1]),
        "mirror.example:5000/kany8s/eks-kubeconfig-rotator@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    );
    assert_eq!(
        image(VALUES_SETS[2]),
        "kany8s/eks-kubeconfig-rotator:v9.9.9"
    );
    assert_eq!(
        image(&["image.tag=v1", "image.digest=sha256:ff"]),
        "ghcr.io/kany8s/eks-kubeconfig-rotator@sha256:ff"
    );
    assert_eq!(
        container(&render(&helm, &[]))["imagePullPolicy"],
        "IfNotPresent"
    );
    let pulls = render(
        &helm,
        &[
            "global.imagePullSecrets[0]=mirror",
            "imagePullSecrets[0].name=local",
        ],
    );
    assert_eq!(
        find(&pulls, "Deployment").unwrap()["spec"]["template"]["spec"]["imagePullSecrets"],
        json!([{"name": "mirror"}, {"name": "local"}])
    );
}

/// [PKG-07], [ROT-04]: `aws.credentials.secretName` mounts the shared credentials file (ACK's
/// format) and points the SDK at it; empty leaves the default chain (IRSA through the
/// ServiceAccount annotation, Pod Identity, instance metadata).
#[test]
fn pkg07_credentials_mount() {
    let Some(helm) = helm() else { return };
    let objects = render(&helm, VALUES_SETS[3]);
    let manager = container(&objects);
    assert_eq!(
        env(&manager, "AWS_SHARED_CREDENTIALS_FILE"),
        Some(json!("/var/run/secrets/aws/creds"))
    );
    assert_eq!(env(&manager, "AWS_PROFILE"), Some(json!("ack")));
    assert_eq!(env(&manager, "AWS_REGION"), Some(json!("eu-west-1")));
    assert_eq!(
        manager["volumeMounts"],
        json!([{"name": "aws-credentials", "mountPath": "/var/run/secrets/aws", "readOnly": true}])
    );
    let pod = &find(&objects, "Deployment").unwrap()["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"],
        json!([{"name": "aws-credentials", "secret": {"secretName": "aws-creds",
            "items": [{"key": "creds", "path": "creds"}]}}])
    );
    let default_chain = render(&helm, VALUES_SETS[4]);
    let manager = container(&default_chain);
    assert_eq!(env(&manager, "AWS_SHARED_CREDENTIALS_FILE"), None);
    assert!(manager.get("volumeMounts").is_none());
    assert_eq!(
        find(&default_chain, "ServiceAccount").unwrap()["metadata"]["annotations"],
        json!({"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/rotator"})
    );
    for name in ["POD_NAMESPACE", "POD_NAME"] {
        assert!(
            manager["env"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == name),
            "{name}"
        );
    }
}

/// [PKG-04], [PKG-07]: restricted security contexts, resources, probes, one replica.
#[test]
fn pkg07_security_context_and_probes() {
    let Some(helm) = helm() else { return };
    let objects = render(&helm, &[]);
    let deployment = find(&objects, "Deployment").unwrap();
    assert_eq!(deployment["spec"]["replicas"], 1);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"],
        json!({"type": "RuntimeDefault"})
    );
    assert_eq!(pod["terminationGracePeriodSeconds"], 10);
    let manager = container(&objects);
    assert_eq!(manager["name"], "manager");
    assert_eq!(manager["command"], json!(["/eks-kubeconfig-rotator"]));
    assert_eq!(
        manager["securityContext"],
        json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]}})
    );
    assert_eq!(
        manager["resources"],
        json!({"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "10m", "memory": "64Mi"}})
    );
    assert_eq!(
        manager["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "health"})
    );
    assert_eq!(manager["livenessProbe"]["initialDelaySeconds"], 15);
    assert_eq!(manager["livenessProbe"]["periodSeconds"], 20);
    assert_eq!(
        manager["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "health"})
    );
    assert_eq!(manager["readinessProbe"]["initialDelaySeconds"], 5);
    assert_eq!(manager["readinessProbe"]["periodSeconds"], 10);
    assert_eq!(
        manager["ports"],
        json!([{"name": "health", "containerPort": 8081}])
    );
    assert!(
        find(&objects, "Service").is_none(),
        "no metrics Service while metrics are off"
    );
    assert_eq!(
        find(&objects, "Namespace").unwrap()["metadata"]["name"],
        "kany8s-eks-system"
    );
}

/// [ROT-01], [PKG-07]: the rendered arguments are flags the rotator accepts, with the chart's
/// values; metrics on → a port and a Service.
#[test]
fn rot01_chart_arguments_parse() {
    let Some(helm) = helm() else { return };
    for sets in VALUES_SETS {
        let manager = container(&render(&helm, sets));
        let mut argv = vec!["eks-kubeconfig-rotator".to_string()];
        argv.extend(
            manager["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string()),
        );
        let flags = Flags::parse_args(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        let settings = flags.settings().unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        assert!(settings.leader_elect, "{argv:?}");
    }
    let defaults = container(&render(&helm, &[]));
    assert_eq!(
        defaults["args"],
        json!([
            "--leader-elect=true",
            "--metrics-bind-address=0",
            "--metrics-secure=false",
            "--health-probe-bind-address=:8081",
            "--enable-http2=false",
            "--refresh-before=5m",
            "--max-refresh-interval=10m",
            "--failure-backoff=30s"
        ])
    );
    let objects = render(&helm, VALUES_SETS[4]);
    let manager = container(&objects);
    assert!(
        manager["args"]
            .as_array()
            .unwrap()
            .contains(&json!("--watch-namespace=tenant-a"))
    );
    assert!(
        manager["args"]
            .as_array()
            .unwrap()
            .contains(&json!("--refresh-before=90s"))
    );
    assert_eq!(
        manager["ports"],
        json!([{"name": "health", "containerPort": 8081}, {"name": "metrics", "containerPort": 8443}])
    );
    let service = find(&objects, "Service").unwrap();
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "metrics", "port": 8443, "targetPort": "metrics"}])
    );
}

/// The bootstrapper chart's values sets: the rotator's minus its refresh flags, plus the
/// bootstrapper's own.
const BOOTSTRAPPER_VALUES_SETS: &[&[&str]] = &[
    VALUES_SETS[0],
    VALUES_SETS[1],
    VALUES_SETS[2],
    VALUES_SETS[3],
    &[
        "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::111122223333:role/bootstrapper",
        "args.metricsBindAddress=:8443",
        "args.watchNamespace=tenant-a",
        "args.failureBackoff=1m",
        "args.steadyStateRequeue=1h",
        "args.karpenterChartVersion=1.1.0",
        "aws.endpointUrl=http://127.0.0.1:5000",
    ],
    VALUES_SETS[5],
];

/// [KB-07]: the bootstrapper chart's ClusterRole and leader-election Role are exactly the
/// rules of the code (no delete verb; Secrets get only), bound to its ServiceAccount; off
/// when `rbac.create=false`.
#[test]
fn kb07_bootstrapper_chart_rbac_is_what_the_code_uses() {
    let Some(helm) = helm() else { return };
    let objects = render_chart(&helm, BOOTSTRAPPER_CHART, &[]);
    let cluster_role = find(&objects, "ClusterRole").unwrap();
    assert_eq!(
        rules_of(cluster_role),
        rules_of_code(rbac::BOOTSTRAPPER_CLUSTER_RULES)
    );
    assert!(
        rules_of(cluster_role)
            .iter()
            .all(|(_, _, verbs)| !verbs.iter().any(|v| v.starts_with("delete")))
    );
    let role = find(&objects, "Role").unwrap();
    assert_eq!(rules_of(role), rules_of_code(rbac::NAMESPACE_RULES));
    for binding in ["ClusterRoleBinding", "RoleBinding"] {
        assert_eq!(
            find(&objects, binding).unwrap()["subjects"],
            json!([{"kind": "ServiceAccount", "name": "eks-karpenter-bootstrapper", "namespace": "kany8s-eks-system"}])
        );
    }
    let without = render_chart(&helm, BOOTSTRAPPER_CHART, BOOTSTRAPPER_VALUES_SETS[5]);
    assert!(find(&without, "ClusterRole").is_none());
    assert!(find(&without, "Role").is_none());
}

/// [KB-01], [PKG-07]: the rendered arguments are flags the bootstrapper accepts, with the
/// chart's values (the EC2 endpoint included); image, credentials mount and security context
/// follow the rotator chart's conventions.
#[test]
fn kb01_bootstrapper_chart_arguments_image_credentials() {
    use kany8s_eks::bootstrapper::flags::Flags as BootstrapperFlags;
    let Some(helm) = helm() else { return };
    for sets in BOOTSTRAPPER_VALUES_SETS {
        let manager = container(&render_chart(&helm, BOOTSTRAPPER_CHART, sets));
        let mut argv = vec![BOOTSTRAPPER_CHART.to_string()];
        argv.extend(
            manager["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string()),
        );
        let settings = BootstrapperFlags::parse_args(&argv)
            .map(|f| f.settings())
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        assert!(settings.process.leader_elect, "{argv:?}");
    }
    let defaults = container(&render_chart(&helm, BOOTSTRAPPER_CHART, &[]));
    assert_eq!(
        defaults["args"],
        json!([
            "--leader-elect=true",
            "--metrics-bind-address=0",
            "--metrics-secure=false",
            "--health-probe-bind-address=:8081",
            "--enable-http2=false",
            "--failure-backoff=30s",
            "--steady-state-requeue=10m"
        ])
    );
    assert_eq!(defaults["command"], json!(["/eks-karpenter-bootstrapper"]));
    assert_eq!(
        defaults["image"],
        "ghcr.io/kany8s/eks-karpenter-bootstrapper:0.1.0"
    );
    assert_eq!(
        defaults["securityContext"],
        json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]}})
    );
    let tuned = container(&render_chart(
        &helm,
        BOOTSTRAPPER_CHART,
        BOOTSTRAPPER_VALUES_SETS[4],
    ));
    let args: Vec<&str> = tuned["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for expected in [
        "--aws-endpoint-url=http://127.0.0.1:5000",
        "--karpenter-chart-version=1.1.0",
        "--steady-state-requeue=1h",
        "--watch-namespace=tenant-a",
    ] {
        assert!(args.contains(&expected), "{args:?}");
    }
    let digest = container(&render_chart(
        &helm,
        BOOTSTRAPPER_CHART,
        BOOTSTRAPPER_VALUES_SETS[1],
    ));
    assert_eq!(
        digest["image"],
        "mirror.example:5000/kany8s/eks-karpenter-bootstrapper@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    );
    let mounted = container(&render_chart(
        &helm,
        BOOTSTRAPPER_CHART,
        BOOTSTRAPPER_VALUES_SETS[3],
    ));
    assert_eq!(
        env(&mounted, "AWS_SHARED_CREDENTIALS_FILE"),
        Some(json!("/var/run/secrets/aws/creds"))
    );
    assert_eq!(
        mounted["volumeMounts"],
        json!([{"name": "aws-credentials", "mountPath": "/var/run/secrets/aws", "readOnly": true}])
    );
}
