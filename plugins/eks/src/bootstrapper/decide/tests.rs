//! Unit tests of the bootstrapper's pure decisions.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::cluster::{Topology, TopologyVariable};
use rstest::rstest;

fn timing() -> Timing {
    Timing::default()
}

fn cluster(labels: &[(&str, &str)], variables: Option<Value>) -> Cluster {
    let mut cluster = crate::cluster::sample("ns", "demo", &[]);
    cluster.metadata.uid = Some("uid-1".into());
    cluster.metadata.resource_version = Some("7".into());
    cluster.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    cluster.spec.topology = variables.map(|vars| Topology {
        variables: vars
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, value)| TopologyVariable {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
    });
    cluster
}

const ON: (&str, &str) = ("eks.kany8s.io/karpenter", "enabled");

/// [KB-01], [KB-06]: the opt-in label (trimmed, any case) selects the bootstrap; deletion
/// with the finalizer selects the cleanup, without it nothing.
#[rstest]
#[case(&[ON], false, false, Phase::Bootstrap)]
#[case(&[("eks.kany8s.io/karpenter", " Enabled ")], false, false, Phase::Bootstrap)]
#[case(&[("eks.kany8s.io/karpenter", "true")], false, false, Phase::Ignore)]
#[case(&[], false, false, Phase::Ignore)]
#[case(&[ON], true, true, Phase::Cleanup)]
#[case(&[], true, true, Phase::Cleanup)]
#[case(&[ON], true, false, Phase::Ignore)]
fn kb01_phase(
    #[case] labels: &[(&str, &str)],
    #[case] deleting: bool,
    #[case] finalizer: bool,
    #[case] expected: Phase,
) {
    let mut c = cluster(labels, None);
    if deleting {
        c.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        ));
    }
    if finalizer {
        c.metadata.finalizers = Some(vec![FINALIZER.into()]);
    }
    assert_eq!(phase(&c), expected);
}

/// [KB-02]: no topology, no or empty or invalid subnet variable → the events of the issue.
#[test]
fn kb02_topology_required() {
    let halt = topology(&cluster(&[ON], None), &timing()).unwrap_err();
    assert_eq!(halt.notice.as_ref().unwrap().reason, "TopologyMissing");
    assert_eq!(halt.requeue, Duration::from_secs(30));
    for variables in [
        json!({}),
        json!({"vpc-node-subnet-ids": []}),
        json!({"vpc-node-subnet-ids": [" ", ""]}),
        json!({"vpc-node-subnet-ids": "subnet-a"}),
    ] {
        let halt = topology(&cluster(&[ON], Some(variables.clone())), &timing()).unwrap_err();
        let notice = halt.notice.unwrap();
        assert_eq!(notice.reason, "TopologyVariableMissing", "{variables}");
        assert_eq!(notice.severity, crate::events::Severity::Warning);
        assert!(
            notice.message.contains("\"vpc-node-subnet-ids\""),
            "{}",
            notice.message
        );
    }
    let halt = topology(
        &cluster(
            &[ON],
            Some(json!({"vpc-node-subnet-ids": ["a"], "vpc-security-group-ids": [1]})),
        ),
        &timing(),
    )
    .unwrap_err();
    assert!(
        halt.notice
            .unwrap()
            .message
            .contains("\"vpc-security-group-ids\"")
    );
}

/// [KB-02]: arrays trimmed, de-duplicated, sorted; the node SGs fall back to the control
/// plane's.
#[test]
fn kb02_topology_values() {
    let inputs = topology(
        &cluster(
            &[ON],
            Some(json!({
                "vpc-node-subnet-ids": [" subnet-b", "subnet-a", "subnet-b", ""],
                "vpc-security-group-ids": ["sg-cp"],
                "karpenter-node-role-additional-policy-arns": ["arn:b", "arn:a", "arn:a"],
            })),
        ),
        &timing(),
    )
    .unwrap();
    assert_eq!(inputs.node_subnets, ["subnet-a", "subnet-b"]);
    assert_eq!(inputs.node_security_groups, ["sg-cp"]);
    assert_eq!(inputs.additional_node_policies, ["arn:a", "arn:b"]);
    let own = topology(
        &cluster(
            &[ON],
            Some(json!({"vpc-node-subnet-ids": ["s"], "vpc-security-group-ids": ["sg-cp"], "vpc-node-security-group-ids": ["sg-n"]})),
        ),
        &timing(),
    )
    .unwrap();
    assert_eq!(own.node_security_groups, ["sg-n"]);
    let none = topology(
        &cluster(&[ON], Some(json!({"vpc-node-subnet-ids": ["s"]}))),
        &timing(),
    )
    .unwrap();
    assert!(none.node_security_groups.is_empty());
}

/// [KB-03]: the required ACK APIs, the EC2 SecurityGroup only when the node SG is managed.
#[test]
fn kb03_missing_apis() {
    let all: BTreeSet<Api> = Api::OPTIONAL.into_iter().collect();
    let with_sg = TopologyInputs::default();
    let provided = TopologyInputs {
        node_security_groups: vec!["sg".into()],
        ..TopologyInputs::default()
    };
    assert_eq!(missing_apis(&all, &with_sg, &timing()), None);
    let mut no_ec2 = all.clone();
    no_ec2.remove(&Api::SecurityGroup);
    assert_eq!(missing_apis(&no_ec2, &provided, &timing()), None);
    let halt = missing_apis(&no_ec2, &with_sg, &timing()).unwrap();
    let notice = halt.notice.unwrap();
    assert_eq!(notice.reason, "PrerequisiteAPIMissing");
    assert!(
        notice
            .message
            .contains("SecurityGroup (ec2.services.k8s.aws/v1alpha1)"),
        "{}",
        notice.message
    );
    let none = missing_apis(&BTreeSet::new(), &provided, &timing())
        .unwrap()
        .notice
        .unwrap();
    assert!(
        none.message
            .contains("Cluster (eks.services.k8s.aws/v1alpha1), OpenIDConnectProvider"),
        "{}",
        none.message
    );
    // Flux and the ClusterResourceSet are not required.
    let mut no_flux = all;
    no_flux.remove(&Api::HelmRelease);
    no_flux.remove(&Api::ClusterResourceSet);
    assert_eq!(missing_apis(&no_flux, &provided, &timing()), None);
}

fn facts(status: &str, mode: Option<&str>) -> AckLookup {
    AckLookup::Found(Box::new(AckFacts {
        cluster: AckCluster {
            namespace: "ns".into(),
            name: "demo".into(),
            endpoint: "https://e.test".into(),
            certificate_authority: String::new(),
            status_region: "eu-west-1".into(),
            annotations: BTreeMap::new(),
        },
        status: status.into(),
        issuer: "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC".into(),
        account: "111122223333".into(),
        authentication_mode: mode.map(str::to_string),
        vpc_id: "vpc-1".into(),
    }))
}

/// [KB-03]: not found, not ACTIVE, fields missing, wrong authentication mode, no region.
#[test]
fn kb03_ack_readiness() {
    let c = cluster(&[ON], None);
    let reason = |lookup: &AckLookup| {
        ready(&c, lookup, &timing())
            .unwrap_err()
            .notice
            .unwrap()
            .reason
    };
    assert_eq!(reason(&AckLookup::NotFound), "ACKClusterNotFound");
    assert_eq!(
        reason(&facts("CREATING", Some("API_AND_CONFIG_MAP"))),
        "ACKClusterNotReady"
    );
    assert_eq!(reason(&facts("ACTIVE", None)), "AWSPrerequisitesNotReady");
    assert_eq!(
        reason(&facts("ACTIVE", Some("CONFIG_MAP"))),
        "AWSPrerequisitesNotReady"
    );
    let AckLookup::Found(mut blank) = facts("ACTIVE", Some("API_AND_CONFIG_MAP")) else {
        unreachable!()
    };
    blank.issuer.clear();
    assert_eq!(
        reason(&AckLookup::Found(blank.clone())),
        "ACKClusterNotReady"
    );
    blank.issuer = "https://i.test/id/x".into();
    blank.cluster.status_region.clear();
    assert_eq!(reason(&AckLookup::Found(blank)), "RegionNotResolved");
    let ok = ready(&c, &facts("active", Some("API_AND_CONFIG_MAP")), &timing()).unwrap();
    assert_eq!(ok.aws.region, "eu-west-1");
    assert_eq!(
        ok.issuer_host_path,
        "oidc.eks.eu-west-1.amazonaws.com/id/ABC"
    );
    assert_eq!(ok.cluster_vpc, "vpc-1");
}

/// [KB-03]: a subnet error stops; warnings for no NAT and one zone go on.
#[test]
fn kb03_subnet_events() {
    let bad = Verdict {
        vpc_id: "vpc-1".into(),
        error: Some(
            "subnets subnet-a (via igw-1) are public (default route to an internet gateway)".into(),
        ),
        without_nat: vec![],
        zones: 2,
    };
    let halt = subnets(&bad, &timing()).unwrap_err().notice.unwrap();
    assert_eq!(halt.reason, "AWSPrerequisitesNotReady");
    assert!(halt.message.contains("are public"));
    let warned = subnets(
        &Verdict {
            error: None,
            without_nat: vec!["subnet-a".into()],
            zones: 1,
            ..bad
        },
        &timing(),
    )
    .unwrap();
    assert_eq!(warned.len(), 2);
}

fn inputs() -> Inputs {
    let identity = Identity {
        namespace: "ns".into(),
        capi: "demo".into(),
        eks: "demo".into(),
        ack: "demo".into(),
        cluster_uid: "uid-1".into(),
    };
    Inputs {
        names: ObjectNames::of("demo", "demo"),
        identity,
        annotations: BTreeMap::new(),
        topology: TopologyInputs {
            node_subnets: vec!["subnet-a".into(), "subnet-b".into()],
            ..TopologyInputs::default()
        },
        ready: Ready {
            aws: Aws {
                region: "eu-west-1".into(),
                account: "111122223333".into(),
                issuer: "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC".into(),
                endpoint: "https://e.test".into(),
            },
            issuer_host_path: "oidc.eks.eu-west-1.amazonaws.com/id/ABC".into(),
            cluster_vpc: "vpc-1".into(),
        },
        served: Api::OPTIONAL.into_iter().collect(),
        node_security_group: NodeSecurityGroup::Managed {
            vpc_id: "vpc-1".into(),
            vpc_cidrs: vec!["10.0.0.0/16".into()],
            id: Some("sg-123".into()),
        },
        template: Template::Default,
        fargate: Fargate {
            karpenter: true,
            coredns: true,
        },
        chart_version: "1.0.8".into(),
        thumbprint: Thumbprint::Off,
        timing: timing(),
    }
}

fn kinds(wanted: &Wanted) -> Vec<String> {
    wanted
        .objects
        .iter()
        .map(|o| format!("{}/{}", o.api.kind(), o.name))
        .collect()
}

/// [KB-04], [KB-05], [KB-07]: everything in place → every object, the variables, steady.
#[test]
fn kb04_full_plan() {
    let wanted = wanted(&inputs()).unwrap();
    assert_eq!(
        kinds(&wanted),
        [
            "SecurityGroup/demo-karpenter-node-sg",
            "OpenIDConnectProvider/demo-oidc-provider",
            "Policy/demo-karpenter-controller-policy",
            "Role/demo-karpenter-controller",
            "Role/demo-karpenter-node",
            "InstanceProfile/demo-karpenter-node-instance-profile",
            "AccessEntry/demo-karpenter-node",
            "OCIRepository/demo-karpenter",
            "HelmRelease/demo-karpenter",
            "ConfigMap/demo-karpenter-nodepool",
            "ClusterResourceSet/demo-karpenter-nodepool",
        ]
    );
    assert_eq!(wanted.requeue, Duration::from_secs(600));
    assert!(wanted.notices.is_empty(), "{:?}", wanted.notices);
    assert_eq!(
        wanted.variables,
        [
            ("vpc-node-security-group-ids", vec!["sg-123".to_string()]),
            ("vpc-security-group-ids", vec!["sg-123".to_string()]),
        ]
    );
    let plan = treat(&wanted.objects, &BTreeMap::new(), false, "ns");
    assert_eq!(plan.applies.len(), 11);
    assert_eq!(
        steady(&wanted, &plan, &timing()).unwrap().reason,
        "BootstrapperReconciled"
    );
}

/// [KB-04], [KB-05], [KB-07]: no SG id yet, no Flux, no CRS API, Fargate not active: what
/// can be written is, the rest is reported, the requeue is the failure backoff.
#[test]
fn kb05_partial_plans() {
    let mut waiting = inputs();
    waiting.node_security_group = NodeSecurityGroup::Managed {
        vpc_id: "vpc-1".into(),
        vpc_cidrs: vec!["10.0.0.0/16".into()],
        id: None,
    };
    waiting.served.remove(&Api::HelmRelease);
    waiting.fargate.coredns = false;
    let wanted = wanted(&waiting).unwrap();
    assert_eq!(wanted.requeue, Duration::from_secs(30));
    let reasons: Vec<&str> = wanted.notices.iter().map(|n| n.reason).collect();
    assert_eq!(
        reasons,
        [
            "NodeSecurityGroupNotReady",
            "AWSPrerequisitesNotReady",
            "FluxNotInstalled"
        ]
    );
    assert!(!wanted.flux);
    assert!(wanted.variables.is_empty());
    // No SG id: no NodePool ConfigMap yet (it would name no security group).
    assert!(!kinds(&wanted).iter().any(|k| k.starts_with("ConfigMap/")));
    let mut provided = inputs();
    provided.node_security_group = NodeSecurityGroup::Provided(vec!["sg-9".into()]);
    provided.served.remove(&Api::ClusterResourceSet);
    let wanted = super::wanted(&provided).unwrap();
    assert!(
        !kinds(&wanted)
            .iter()
            .any(|k| k.starts_with("SecurityGroup/"))
    );
    assert!(kinds(&wanted).contains(&"ConfigMap/demo-karpenter-nodepool".to_string()));
    assert_eq!(wanted.notices[0].reason, "PrerequisiteAPIMissing");
}

/// [KB-05]: chart tag annotation > flag; bad values override and bad template stop.
#[test]
fn kb05_annotations() {
    let mut tagged = inputs();
    tagged
        .annotations
        .insert(kb::CHART_VERSION.into(), " 1.1.1 ".into());
    let wanted = wanted(&tagged).unwrap();
    let oci = wanted
        .objects
        .iter()
        .find(|o| o.api == Api::OciRepository)
        .unwrap();
    assert_eq!(oci.body["spec"]["ref"]["tag"], "1.1.1");
    let mut bad = inputs();
    bad.annotations
        .insert(kb::HELM_VALUES_OVERRIDE.into(), "[]".into());
    assert_eq!(
        super::wanted(&bad).unwrap_err().notice.unwrap().reason,
        "KarpenterValuesInvalid"
    );
    let mut template = inputs();
    template.template = Template::Override(Err("ConfigMap ns/x does not exist".into()));
    assert_eq!(
        super::wanted(&template).unwrap_err().notice.unwrap().reason,
        "NodePoolTemplateInvalid"
    );
    template.template = Template::Override(Ok("kind: NodePool\n".into()));
    let wanted = super::wanted(&template).unwrap();
    let config_map = wanted
        .objects
        .iter()
        .find(|o| o.api == Api::ConfigMap)
        .unwrap();
    assert_eq!(
        config_map.body["data"]["resources.yaml"],
        "kind: NodePool\n"
    );
}

fn existing(
    desired: &Desired,
    managed_by: Option<&str>,
    tweak: impl FnOnce(&mut Value),
) -> DynamicObject {
    let mut body = desired.body.clone();
    match managed_by {
        Some(by) => body["metadata"]["annotations"][keys::MANAGED_BY] = json!(by),
        None => {
            body["metadata"]["annotations"]
                .as_object_mut()
                .unwrap()
                .remove(keys::MANAGED_BY);
        }
    }
    body["metadata"]["resourceVersion"] = json!("3");
    tweak(&mut body);
    serde_json::from_value(body).unwrap()
}

/// [PLG-06]: managed and equal → nothing; managed and different → apply; unmanaged →
/// untouched with a conflict unless takeover; requeue 10 min on conflicts.
#[test]
fn plg06_treatment() {
    let wanted = wanted(&inputs()).unwrap();
    let role = wanted.objects.iter().find(|o| o.api == Api::Role).unwrap();
    let policy = wanted
        .objects
        .iter()
        .find(|o| o.api == Api::Policy)
        .unwrap();
    let oidc = wanted
        .objects
        .iter()
        .find(|o| o.api == Api::OidcProvider)
        .unwrap();
    let mut map = BTreeMap::new();
    map.insert(
        (role.api, role.name.clone()),
        existing(role, Some(BOOTSTRAPPER), |b| {
            b["status"] = json!({"ackResourceMetadata": {}})
        }),
    );
    map.insert(
        (policy.api, policy.name.clone()),
        existing(policy, Some(BOOTSTRAPPER), |b| {
            b["spec"]["name"] = json!("old")
        }),
    );
    map.insert(
        (oidc.api, oidc.name.clone()),
        existing(oidc, None, |b| {
            b["spec"]["url"] = json!("https://someone.else")
        }),
    );
    let plan = treat(&wanted.objects, &map, false, "ns");
    let applied: Vec<&str> = plan.applies.iter().map(|d| d.name.as_str()).collect();
    assert!(!applied.contains(&"demo-oidc-provider"));
    assert!(applied.contains(&"demo-karpenter-controller-policy"));
    assert!(
        !applied.contains(&"demo-karpenter-controller"),
        "{applied:?}"
    );
    assert_eq!(plan.conflicts, ["OpenIDConnectProvider"]);
    assert_eq!(
        plan.notices[0].message,
        "OpenIDConnectProvider ns/demo-oidc-provider exists and is not managed by eks-karpenter-bootstrapper"
    );
    assert_eq!(requeue(&wanted, &plan, &timing()), Duration::from_secs(600));
    assert_eq!(steady(&wanted, &plan, &timing()), None);
    let taken = treat(&wanted.objects, &map, true, "ns");
    assert!(taken.conflicts.is_empty());
    assert_eq!(taken.notices[0].reason, "ResourceTakeoverApplied");
    assert!(taken.applies.iter().any(|d| d.name == "demo-oidc-provider"));
}

/// [KB-05]: restarts once per record; Karpenter only with Flux.
#[test]
fn kb05_restarts() {
    let both = Fargate {
        karpenter: true,
        coredns: true,
    };
    let names = |r: Vec<Restart>| r.into_iter().map(|r| r.name).collect::<Vec<_>>();
    assert_eq!(
        names(restarts(&BTreeMap::new(), both, true)),
        ["coredns", "karpenter"]
    );
    assert_eq!(names(restarts(&BTreeMap::new(), both, false)), ["coredns"]);
    let recorded: BTreeMap<String, String> = [(
        kb::COREDNS_RESTARTED_AT.to_string(),
        "2026-01-01T00:00:00Z".to_string(),
    )]
    .into();
    assert_eq!(names(restarts(&recorded, both, true)), ["karpenter"]);
    assert!(restarts(&BTreeMap::new(), Fargate::default(), true).is_empty());
}

/// [KB-02]: the Cluster metadata body carries the finalizer, the label and the owned
/// annotations; nothing when all are present.
#[test]
fn kb02_cluster_metadata() {
    let mut c = cluster(&[ON], None);
    let annotations = owned_annotations(&c, &[(keys::REGION, "eu-west-1")]);
    let body = cluster_metadata(&c, &annotations).unwrap();
    assert_eq!(body["metadata"]["finalizers"], json!([FINALIZER]));
    assert_eq!(
        body["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"],
        "demo"
    );
    assert_eq!(
        body["metadata"]["annotations"]["eks.kany8s.io/region"],
        "eu-west-1"
    );
    c.metadata.finalizers = Some(vec!["other".into(), FINALIZER.into()]);
    c.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert(keys::CAPI_CLUSTER_NAME.into(), "demo".into());
    c.metadata.annotations = Some(annotations.clone());
    assert_eq!(cluster_metadata(&c, &annotations), None);
    // The owned annotations are carried forward.
    assert_eq!(owned_annotations(&c, &[]), annotations);
    assert_eq!(
        release(&c),
        json!({"metadata": {"resourceVersion": "7", "finalizers": ["other"]}})
    );
}

/// [KB-04]: the variables patch keeps the other variables and is guarded.
#[test]
fn kb04_variables_patch() {
    let c = cluster(
        &[ON],
        Some(json!({"vpc-node-subnet-ids": ["s"], "vpc-node-security-group-ids": []})),
    );
    let (patch, changed) =
        variables_patch(&c, &[("vpc-node-security-group-ids", vec!["sg-1".into()])]).unwrap();
    assert_eq!(changed, ["vpc-node-security-group-ids"]);
    assert_eq!(patch["metadata"]["resourceVersion"], "7");
    let variables = patch["spec"]["topology"]["variables"].as_array().unwrap();
    assert_eq!(variables.len(), 2);
    assert!(variables.contains(&json!({"name": "vpc-node-security-group-ids", "value": ["sg-1"]})));
    assert!(variables.contains(&json!({"name": "vpc-node-subnet-ids", "value": ["s"]})));
    let same = cluster(
        &[ON],
        Some(json!({"vpc-node-security-group-ids": ["sg-1"]})),
    );
    assert_eq!(
        variables_patch(
            &same,
            &[("vpc-node-security-group-ids", vec!["sg-1".into()])]
        ),
        None
    );
}

/// [KB-06]: only managed Flux objects are suspended (once), only a managed SG's id is used,
/// and the AWS cleanup needs a region.
#[test]
fn kb06_cleanup_plan() {
    let base = inputs();
    let wanted = wanted(&base).unwrap();
    let find = |api: Api| wanted.objects.iter().find(|o| o.api == api).unwrap();
    let mut map = BTreeMap::new();
    map.insert(
        (Api::HelmRelease, "demo-karpenter".to_string()),
        existing(find(Api::HelmRelease), Some(BOOTSTRAPPER), |_| {}),
    );
    map.insert(
        (Api::OciRepository, "demo-karpenter".to_string()),
        existing(find(Api::OciRepository), None, |_| {}),
    );
    map.insert(
        (Api::SecurityGroup, "demo-karpenter-node-sg".to_string()),
        existing(find(Api::SecurityGroup), Some(BOOTSTRAPPER), |b| {
            b["status"] = json!({"id": "sg-123"})
        }),
    );
    let plan = cleanup(&base.identity, &base.names, Some("eu-west-1".into()), &map);
    assert_eq!(plan.suspend.len(), 1);
    assert_eq!(plan.suspend[0].api, Api::HelmRelease);
    assert_eq!(plan.suspend[0].body["spec"], json!({"suspend": true}));
    assert_eq!(
        plan.aws,
        Some(("eu-west-1".to_string(), "demo".to_string()))
    );
    assert_eq!(plan.security_group.as_deref(), Some("sg-123"));
    assert_eq!(cleanup(&base.identity, &base.names, None, &map).aws, None);
    map.insert(
        (Api::HelmRelease, "demo-karpenter".to_string()),
        existing(find(Api::HelmRelease), Some(BOOTSTRAPPER), |b| {
            b["spec"]["suspend"] = json!(true)
        }),
    );
    map.insert(
        (Api::SecurityGroup, "demo-karpenter-node-sg".to_string()),
        existing(find(Api::SecurityGroup), None, |b| {
            b["status"] = json!({"id": "sg-999"})
        }),
    );
    let again = cleanup(&base.identity, &base.names, Some("eu-west-1".into()), &map);
    assert!(again.suspend.is_empty());
    assert_eq!(again.security_group, None);
}

#[test]
fn containment() {
    assert!(contained(
        &json!({"a": [1, {"b": 2}]}),
        &json!({"a": [1.0, {"b": 2, "c": 3}], "d": 4})
    ));
    assert!(!contained(&json!({"a": [1]}), &json!({"a": [1, 2]})));
    assert!(!contained(&json!({"a": 1}), &json!({})));
    assert!(contained(
        &json!({"ownerReferences": [{"uid": "u"}]}),
        &json!({"ownerReferences": [{"uid": "x"}, {"uid": "u", "kind": "Cluster"}]})
    ));
}

/// [KB-04]: `eks.kany8s.io/oidc-thumbprint-auto` is `enabled` or `true` (trimmed, any case).
#[rstest]
#[case(Some(" Enabled "), true)]
#[case(Some("TRUE"), true)]
#[case(Some("yes"), false)]
#[case(Some(""), false)]
#[case(None, false)]
fn kb04_thumbprint_annotation(#[case] value: Option<&str>, #[case] expected: bool) {
    let annotations: BTreeMap<String, String> = value
        .map(|v| (kb::OIDC_THUMBPRINT_AUTO.to_string(), v.to_string()))
        .into_iter()
        .collect();
    assert_eq!(thumbprint_auto(&annotations), expected);
}

/// [KB-04]: a resolved thumbprint goes into the provider; an unverifiable chain warns
/// (`OIDCThumbprintSkipped`), keeps what the provider has and retries after the backoff; an
/// issuer that cannot be asked stops the pass (`AWSPrerequisitesNotReady`), nothing written.
#[test]
fn kb04_thumbprint_outcomes() {
    let provider = |wanted: &Wanted| {
        wanted
            .objects
            .iter()
            .find(|o| o.api == Api::OidcProvider)
            .unwrap()
            .body["spec"]
            .clone()
    };
    let mut resolved = inputs();
    resolved.thumbprint = Thumbprint::Resolved("9e99a48a9960b14926bb7f3b02e22da2b0ab7280".into());
    let wanted = wanted(&resolved).unwrap();
    assert_eq!(
        provider(&wanted)["thumbprints"],
        json!(["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"])
    );
    assert!(wanted.notices.is_empty(), "{:?}", wanted.notices);
    assert_eq!(wanted.requeue, Duration::from_secs(600));

    let mut skipped = inputs();
    skipped.thumbprint = Thumbprint::Skipped {
        error: "no intermediate".into(),
        kept: vec!["aaaa".into()],
    };
    let wanted = super::wanted(&skipped).unwrap();
    assert_eq!(provider(&wanted)["thumbprints"], json!(["aaaa"]));
    assert_eq!(wanted.notices.len(), 1);
    assert_eq!(wanted.notices[0].reason, "OIDCThumbprintSkipped");
    assert!(
        wanted.notices[0].message.contains("no intermediate")
            && wanted.notices[0]
                .message
                .contains("ns/demo-oidc-provider (aaaa)"),
        "{}",
        wanted.notices[0].message
    );
    assert_eq!(wanted.requeue, Duration::from_secs(30));
    skipped.thumbprint = Thumbprint::Skipped {
        error: "untrusted".into(),
        kept: Vec::new(),
    };
    let wanted = super::wanted(&skipped).unwrap();
    assert!(provider(&wanted).get("thumbprints").is_none());

    let mut failed = inputs();
    failed.thumbprint = Thumbprint::Failed("connection refused".into());
    let halt = super::wanted(&failed).unwrap_err();
    let notice = halt.notice.unwrap();
    assert_eq!(notice.reason, "AWSPrerequisitesNotReady");
    assert!(
        notice.message.contains("connection refused"),
        "{}",
        notice.message
    );
    assert_eq!(halt.requeue, Duration::from_secs(30));
}
