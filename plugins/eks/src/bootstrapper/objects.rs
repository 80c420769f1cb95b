//! The objects the bootstrapper writes, as server-side apply bodies ([KB-04], [KB-05]), and the
//! documents inside them: AWS names (`shorten`), tags, the Karpenter v1 controller policy, the
//! trust policies, the Helm values and the default EC2NodeClass/NodePool. Pure.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::apis::Api;
use crate::BOOTSTRAPPER;
use crate::keys;

/// Which cluster the objects belong to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub namespace: String,
    pub capi: String,
    pub eks: String,
    pub ack: String,
    pub cluster_uid: String,
}

/// One object as the bootstrapper wants it.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub api: Api,
    pub name: String,
    /// The whole server-side apply body.
    pub body: Value,
}

/// [KB-04]: `name` when it fits in `max` bytes, else `name[:max-13] + "-" + hex(sha256(name))[:12]`
/// (a stable, unique name of exactly `max` bytes).
pub fn shorten(name: &str, max: usize) -> String {
    let name = name.trim();
    if name.len() <= max {
        return name.to_string();
    }
    let digest = Sha256::digest(name.as_bytes());
    let suffix: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    if max < 14 {
        return suffix[..max.min(suffix.len())].to_string();
    }
    let mut keep = max - 13;
    while !name.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}-{}", &name[..keep], &suffix[..12])
}

/// The object names of one cluster ([KB-04], [KB-05]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectNames {
    pub node_security_group: String,
    pub oidc_provider: String,
    pub controller_policy: String,
    pub controller_role: String,
    pub node_role: String,
    pub instance_profile: String,
    pub access_entry: String,
    pub flux: String,
    pub nodepool: String,
    pub fargate_karpenter: String,
    pub fargate_coredns: String,
    /// The names in AWS.
    pub aws_node_security_group: String,
    pub aws_controller_policy: String,
    pub aws_controller_role: String,
    pub aws_node_role: String,
    pub aws_instance_profile: String,
}

/// The FargateProfile base name: AWS reserves the `eks-` prefix, so such Clusters use
/// `aioc-<capi>` ([KB-04]).
pub fn fargate_base(capi: &str) -> String {
    if capi.starts_with("eks-") {
        format!("aioc-{capi}")
    } else {
        capi.to_string()
    }
}

impl ObjectNames {
    pub fn of(capi: &str, eks: &str) -> Self {
        let base = fargate_base(capi);
        Self {
            node_security_group: shorten(&format!("{capi}-karpenter-node-sg"), 63),
            oidc_provider: format!("{capi}-oidc-provider"),
            controller_policy: format!("{capi}-karpenter-controller-policy"),
            controller_role: format!("{capi}-karpenter-controller"),
            node_role: format!("{capi}-karpenter-node"),
            instance_profile: format!("{capi}-karpenter-node-instance-profile"),
            access_entry: format!("{capi}-karpenter-node"),
            flux: format!("{capi}-karpenter"),
            nodepool: format!("{capi}-karpenter-nodepool"),
            fargate_karpenter: format!("{base}-karpenter"),
            fargate_coredns: format!("{base}-coredns"),
            aws_node_security_group: shorten(&format!("{eks}-karpenter-node"), 255),
            aws_controller_policy: shorten(&format!("{eks}-karpenter-controller"), 128),
            aws_controller_role: shorten(&format!("{eks}-karpenter-controller"), 64),
            aws_node_role: shorten(&format!("{eks}-node"), 64),
            aws_instance_profile: shorten(&format!("{eks}-node"), 128),
        }
    }
}

/// [KB-04]: the standard AWS tags, plus `extra`.
pub fn tags(identity: &Identity, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::from([
        ("kany8s.io/managed-by".to_string(), BOOTSTRAPPER.to_string()),
        ("kany8s.io/cluster-name".to_string(), identity.capi.clone()),
        (
            "kany8s.io/cluster-namespace".to_string(),
            identity.namespace.clone(),
        ),
        (
            "kany8s.io/eks-cluster-name".to_string(),
            identity.eks.clone(),
        ),
    ]);
    for (key, value) in extra {
        tags.insert((*key).to_string(), (*value).to_string());
    }
    tags.retain(|k, v| !k.trim().is_empty() && !v.trim().is_empty());
    tags
}

/// Tags as ACK's IAM and EC2 controllers take them: `[{key, value}]`, sorted by key.
pub fn tag_list(tags: &BTreeMap<String, String>) -> Value {
    Value::Array(
        tags.iter()
            .map(|(key, value)| json!({"key": key, "value": value}))
            .collect(),
    )
}

/// `metadata` of a managed object: managed-by (+ ACK region), the cluster-name label and a
/// non-controller ownerReference to the Cluster ([KB-04], [PLG-06]).
fn metadata(identity: &Identity, name: &str, region: Option<&str>) -> Value {
    let mut annotations = Map::new();
    annotations.insert(keys::MANAGED_BY.into(), json!(BOOTSTRAPPER));
    if let Some(region) = region {
        annotations.insert(keys::ACK_REGION.into(), json!(region));
    }
    json!({
        "name": name,
        "namespace": identity.namespace,
        "labels": {keys::CAPI_CLUSTER_NAME: identity.capi},
        "annotations": annotations,
        "ownerReferences": [{
            "apiVersion": "cluster.x-k8s.io/v1beta2",
            "kind": "Cluster",
            "name": identity.capi,
            "uid": identity.cluster_uid,
        }],
    })
}

fn object(
    api: Api,
    identity: &Identity,
    name: &str,
    region: Option<&str>,
    fields: Value,
) -> Desired {
    let mut body = json!({
        "apiVersion": api.api_version(),
        "kind": api.kind(),
        "metadata": metadata(identity, name, region),
    });
    if let (Some(body), Value::Object(fields)) = (body.as_object_mut(), fields) {
        body.extend(fields);
    }
    Desired {
        api,
        name: name.to_string(),
        body,
    }
}

/// `https://oidc.eks.<region>.amazonaws.com/id/X` → `oidc.eks.<region>.amazonaws.com/id/X`
/// (what IAM names the provider by).
pub fn issuer_host_path(issuer: &str) -> Result<String, String> {
    let issuer = issuer.trim();
    let rest = issuer
        .strip_prefix("https://")
        .ok_or_else(|| format!("issuer URL \"{issuer}\" is not https"))?;
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("issuer URL \"{issuer}\" has no host"));
    }
    Ok(rest.trim_end_matches('/').to_string())
}

/// What the ACK Cluster and the topology tell about the AWS side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aws {
    pub region: String,
    pub account: String,
    pub issuer: String,
    pub endpoint: String,
}

impl Aws {
    fn partition(&self) -> &'static str {
        if self.region.starts_with("cn-") {
            "aws-cn"
        } else if self.region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        }
    }

    pub fn role_arn(&self, role: &str) -> String {
        format!("arn:{}:iam::{}:role/{role}", self.partition(), self.account)
    }

    pub fn oidc_provider_arn(&self, host_path: &str) -> String {
        format!(
            "arn:{}:iam::{}:oidc-provider/{host_path}",
            self.partition(),
            self.account
        )
    }
}

/// [KB-04]: the Karpenter v1 controller policy (the statements of the Karpenter v1 CloudFormation
/// / terraform-aws-eks karpenter module policy), scoped to the region, account, cluster and node
/// role.
pub fn controller_policy(aws: &Aws, eks: &str, node_role_arn: &str) -> Value {
    let p = aws.partition();
    let r = &aws.region;
    let account = &aws.account;
    let ec2 = |kind: &str| format!("arn:{p}:ec2:{r}:*:{kind}/*");
    let owned = format!("kubernetes.io/cluster/{eks}");
    let tagged_resources = [
        "fleet",
        "instance",
        "volume",
        "network-interface",
        "launch-template",
        "spot-instances-request",
    ]
    .map(ec2);
    let instance_profiles = format!("arn:{p}:iam::{account}:instance-profile/*");
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AllowScopedEC2InstanceAccessActions", "Effect": "Allow",
             "Resource": [format!("arn:{p}:ec2:{r}::image/*"), format!("arn:{p}:ec2:{r}::snapshot/*"),
                          ec2("security-group"), ec2("subnet")],
             "Action": ["ec2:RunInstances", "ec2:CreateFleet"]},
            {"Sid": "AllowScopedEC2LaunchTemplateAccessActions", "Effect": "Allow",
             "Resource": [ec2("launch-template")],
             "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
             "Condition": {"StringEquals": {format!("aws:ResourceTag/{owned}"): "owned"},
                           "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}}},
            {"Sid": "AllowScopedEC2InstanceActionsWithTags", "Effect": "Allow",
             "Resource": tagged_resources,
             "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
             "Condition": {"StringEquals": {format!("aws:RequestTag/{owned}"): "owned",
                                            "aws:RequestTag/eks:eks-cluster-name": eks},
                           "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}},
            {"Sid": "AllowScopedResourceCreationTagging", "Effect": "Allow",
             "Resource": tagged_resources,
             "Action": ["ec2:CreateTags"],
             "Condition": {"StringEquals": {format!("aws:RequestTag/{owned}"): "owned",
                                            "aws:RequestTag/eks:eks-cluster-name": eks,
                                            "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]},
                           "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}},
            {"Sid": "AllowScopedResourceTagging", "Effect": "Allow",
             "Resource": [ec2("instance")],
             "Action": ["ec2:CreateTags"],
             "Condition": {"StringEquals": {format!("aws:ResourceTag/{owned}"): "owned"},
                           "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                           "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": eks},
                           "ForAllValues:StringEquals": {"aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]}}},
            {"Sid": "AllowScopedDeletion", "Effect": "Allow",
             "Resource": [ec2("instance"), ec2("launch-template")],
             "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
             "Condition": {"StringEquals": {format!("aws:ResourceTag/{owned}"): "owned"},
                           "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}}},
            {"Sid": "AllowRegionalReadActions", "Effect": "Allow", "Resource": "*",
             "Action": ["ec2:DescribeAvailabilityZones", "ec2:DescribeImages", "ec2:DescribeInstances",
                        "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes",
                        "ec2:DescribeLaunchTemplates", "ec2:DescribeSecurityGroups",
                        "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets",
                        "ec2:DescribeLaunchTemplateVersions", "ec2:DescribeVpcs"],
             "Condition": {"StringEquals": {"aws:RequestedRegion": r}}},
            {"Sid": "AllowSSMReadActions", "Effect": "Allow",
             "Resource": [format!("arn:{p}:ssm:{r}::parameter/aws/service/*")],
             "Action": ["ssm:GetParameter"]},
            {"Sid": "AllowPricingReadActions", "Effect": "Allow", "Resource": "*",
             "Action": ["pricing:GetProducts"]},
            {"Sid": "AllowPassingInstanceRole", "Effect": "Allow",
             "Resource": [node_role_arn],
             "Action": ["iam:PassRole"],
             "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}},
            {"Sid": "AllowScopedInstanceProfileCreationActions", "Effect": "Allow",
             "Resource": [instance_profiles],
             "Action": ["iam:CreateInstanceProfile"],
             "Condition": {"StringEquals": {format!("aws:RequestTag/{owned}"): "owned",
                                            "aws:RequestTag/eks:eks-cluster-name": eks,
                                            "aws:RequestTag/topology.kubernetes.io/region": r},
                           "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
            {"Sid": "AllowScopedInstanceProfileTagActions", "Effect": "Allow",
             "Resource": [instance_profiles],
             "Action": ["iam:TagInstanceProfile"],
             "Condition": {"StringEquals": {format!("aws:ResourceTag/{owned}"): "owned",
                                            format!("aws:RequestTag/{owned}"): "owned",
                                            "aws:RequestTag/eks:eks-cluster-name": eks,
                                            "aws:ResourceTag/topology.kubernetes.io/region": r,
                                            "aws:RequestTag/topology.kubernetes.io/region": r},
                           "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                                          "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
            {"Sid": "AllowScopedInstanceProfileActions", "Effect": "Allow",
             "Resource": [instance_profiles],
             "Action": ["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
             "Condition": {"StringEquals": {format!("aws:ResourceTag/{owned}"): "owned",
                                            "aws:ResourceTag/topology.kubernetes.io/region": r},
                           "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
            {"Sid": "AllowInstanceProfileReadActions", "Effect": "Allow",
             "Resource": [instance_profiles],
             "Action": ["iam:GetInstanceProfile"]},
            {"Sid": "AllowAPIServerEndpointDiscovery", "Effect": "Allow",
             "Resource": [format!("arn:{p}:eks:{r}:{account}:cluster/{eks}")],
             "Action": ["eks:DescribeCluster"]},
        ],
    })
}

/// [KB-04]: IRSA trust of the controller role: the cluster's OIDC provider, audience
/// `sts.amazonaws.com`, subject `system:serviceaccount:karpenter:karpenter`.
pub fn controller_trust(provider_arn: &str, host_path: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            format!("{host_path}:aud"): "sts.amazonaws.com",
            format!("{host_path}:sub"): "system:serviceaccount:karpenter:karpenter",
        }},
    }]})
}

/// [KB-04]: EC2 trust of the node role.
pub fn node_trust() -> Value {
    json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }]})
}

/// [KB-04]: the managed policies of the node role, plus the additional ARNs, de-duplicated and
/// sorted.
pub fn node_policies(additional: &[String]) -> Vec<String> {
    let mut policies: Vec<String> = [
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    ]
    .into_iter()
    .map(str::to_string)
    .chain(additional.iter().cloned())
    .collect();
    policies.sort();
    policies.dedup();
    policies
}

fn document(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn reference(identity: &Identity, name: &str) -> Value {
    json!({"from": {"name": name, "namespace": identity.namespace}})
}

/// What the ACK objects are built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckInputs {
    pub aws: Aws,
    pub issuer_host_path: String,
    pub additional_node_policies: Vec<String>,
    /// `spec.thumbprints` of the OIDC provider (absent when `None`).
    pub thumbprints: Option<Vec<String>>,
}

/// [KB-04]: OIDC provider, controller policy, the two roles, the instance profile and the
/// access entry, in dependency order.
pub fn ack_objects(identity: &Identity, names: &ObjectNames, inputs: &AckInputs) -> Vec<Desired> {
    let aws = &inputs.aws;
    let region = Some(aws.region.as_str());
    let tag_array = tag_list(&tags(identity, &[]));
    let node_role_arn = aws.role_arn(&names.aws_node_role);
    let mut oidc = json!({"spec": {
        "url": aws.issuer,
        "clientIDs": ["sts.amazonaws.com"],
        "tags": tag_array,
    }});
    if let Some(thumbprints) = &inputs.thumbprints {
        oidc["spec"]["thumbprints"] = json!(thumbprints);
    }
    vec![
        object(
            Api::OidcProvider,
            identity,
            &names.oidc_provider,
            region,
            oidc,
        ),
        object(
            Api::Policy,
            identity,
            &names.controller_policy,
            region,
            json!({"spec": {
                "name": names.aws_controller_policy,
                "policyDocument": document(&controller_policy(aws, &identity.eks, &node_role_arn)),
                "tags": tag_array,
            }}),
        ),
        object(
            Api::Role,
            identity,
            &names.controller_role,
            region,
            json!({"spec": {
                "name": names.aws_controller_role,
                "assumeRolePolicyDocument": document(&controller_trust(
                    &aws.oidc_provider_arn(&inputs.issuer_host_path),
                    &inputs.issuer_host_path,
                )),
                "policyRefs": [reference(identity, &names.controller_policy)],
                "tags": tag_array,
            }}),
        ),
        object(
            Api::Role,
            identity,
            &names.node_role,
            region,
            json!({"spec": {
                "name": names.aws_node_role,
                "assumeRolePolicyDocument": document(&node_trust()),
                "policies": node_policies(&inputs.additional_node_policies),
                "tags": tag_array,
            }}),
        ),
        object(
            Api::InstanceProfile,
            identity,
            &names.instance_profile,
            region,
            json!({"spec": {
                "name": names.aws_instance_profile,
                "roleRef": reference(identity, &names.node_role),
                "tags": tag_array,
            }}),
        ),
        object(
            Api::AccessEntry,
            identity,
            &names.access_entry,
            region,
            json!({"spec": {
                "clusterRef": reference(identity, &identity.ack),
                "principalARN": node_role_arn,
                "type": "EC2_LINUX",
                "tags": tags(identity, &[]),
            }}),
        ),
    ]
}

/// [KB-04]: the optional node SecurityGroup: all traffic in from the VPC's CIDRs, all out.
pub fn node_security_group(
    identity: &Identity,
    names: &ObjectNames,
    region: &str,
    vpc_id: &str,
    vpc_cidrs: &[String],
) -> Desired {
    let eks = identity.eks.as_str();
    let cluster_tag = format!("kubernetes.io/cluster/{eks}");
    let tags = tags(
        identity,
        &[
            ("Name", names.aws_node_security_group.as_str()),
            ("karpenter.sh/discovery", eks),
            (cluster_tag.as_str(), "owned"),
        ],
    );
    let mut description = format!("Karpenter nodes for {eks}");
    if description.len() > 255 {
        let mut end = 255;
        while !description.is_char_boundary(end) {
            end -= 1;
        }
        description.truncate(end);
    }
    let ranges: Vec<Value> = vpc_cidrs
        .iter()
        .map(|cidr| json!({"cidrIP": cidr, "description": "VPC traffic"}))
        .collect();
    object(
        Api::SecurityGroup,
        identity,
        &names.node_security_group,
        Some(region),
        json!({"spec": {
            "name": names.aws_node_security_group,
            "description": description,
            "vpcID": vpc_id,
            "ingressRules": [{"ipProtocol": "-1", "ipRanges": ranges}],
            "egressRules": [{"ipProtocol": "-1", "ipRanges": [{"cidrIP": "0.0.0.0/0"}]}],
            "tags": tag_list(&tags),
        }}),
    )
}

/// [KB-05]: the Helm values: defaults, the interruption queue, the JSON override merged in, then
/// the cluster name, endpoint and role ARN forced back.
pub fn helm_values(
    eks: &str,
    endpoint: &str,
    controller_role_arn: &str,
    interruption_queue: &str,
    override_json: &str,
) -> Result<Value, String> {
    let mut values = json!({
        "dnsPolicy": "Default",
        "priorityClassName": "system-cluster-critical",
        "webhook": {"enabled": false},
        "settings": {"clusterName": eks, "clusterEndpoint": endpoint},
        "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": controller_role_arn}},
    });
    if !interruption_queue.is_empty() {
        values["settings"]["interruptionQueue"] = json!(interruption_queue);
    }
    if override_json.is_empty() {
        return Ok(values);
    }
    let overrides: Value =
        serde_json::from_str(override_json).map_err(|e| format!("not JSON: {e}"))?;
    if !overrides.is_object() {
        return Err("not a JSON object".into());
    }
    merge(&mut values, overrides);
    for (pointer, value) in [
        ("/settings", None),
        ("/settings/clusterName", Some(eks)),
        ("/settings/clusterEndpoint", Some(endpoint)),
        ("/serviceAccount", None),
        ("/serviceAccount/annotations", None),
        (
            "/serviceAccount/annotations/eks.amazonaws.com~1role-arn",
            Some(controller_role_arn),
        ),
    ] {
        force(&mut values, pointer, value);
    }
    Ok(values)
}

/// Deep merge: objects key by key, anything else replaced.
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// Sets `pointer` to the string `value`, or makes sure it is an object when `value` is `None`.
fn force(values: &mut Value, pointer: &str, value: Option<&str>) {
    let Some((parent, key)) = pointer.rsplit_once('/') else {
        return;
    };
    let key = key.replace("~1", "/").replace("~0", "~");
    let target = if parent.is_empty() {
        Some(values)
    } else {
        values.pointer_mut(parent)
    };
    if let Some(Value::Object(map)) = target {
        match value {
            Some(text) => {
                map.insert(key, json!(text));
            }
            None => {
                if !map.get(&key).is_some_and(Value::is_object) {
                    map.insert(key, json!({}));
                }
            }
        }
    }
}

/// [KB-05]: the OCIRepository and HelmRelease `<capi>-karpenter`.
pub fn flux_objects(
    identity: &Identity,
    names: &ObjectNames,
    tag: &str,
    values: &Value,
) -> [Desired; 2] {
    [
        object(
            Api::OciRepository,
            identity,
            &names.flux,
            None,
            json!({"spec": {
                "interval": "10m",
                "url": "oci://public.ecr.aws/karpenter/karpenter",
                "ref": {"tag": tag},
                "layerSelector": {
                    "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                    "operation": "copy",
                },
            }}),
        ),
        object(
            Api::HelmRelease,
            identity,
            &names.flux,
            None,
            json!({"spec": {
                "interval": "5m",
                "timeout": "15m",
                "releaseName": "karpenter",
                "targetNamespace": "karpenter",
                "kubeConfig": {"secretRef": {"name": format!("{}-kubeconfig", identity.capi)}},
                "chartRef": {"kind": "OCIRepository", "name": names.flux, "namespace": identity.namespace},
                "install": {"createNamespace": true, "crds": "CreateReplace", "disableWait": true,
                            "remediation": {"retries": -1}},
                "upgrade": {"crds": "CreateReplace", "disableWait": true, "remediation": {"retries": -1}},
                "values": values,
            }}),
        ),
    ]
}

/// [KB-06]: the patch body that suspends a Flux object.
pub fn suspended(api: Api, identity: &Identity, name: &str) -> Desired {
    object(
        api,
        identity,
        name,
        None,
        json!({"spec": {"suspend": true}}),
    )
}

/// [KB-05]: the default EC2NodeClass and NodePool (`default`), as a YAML stream.
pub fn default_nodepool_yaml(
    eks: &str,
    instance_profile: &str,
    subnets: &[String],
    security_groups: &[String],
) -> String {
    let mut security_group_terms: Vec<Value> =
        security_groups.iter().map(|id| json!({"id": id})).collect();
    // EKS's own cluster security group carries the rules nodes need to reach CoreDNS.
    security_group_terms.push(json!({"tags": {"aws:eks:cluster-name": eks}}));
    let node_class = json!({
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": "default"},
        "spec": {
            "amiSelectorTerms": [{"alias": "bottlerocket@latest"}],
            "instanceProfile": instance_profile,
            "subnetSelectorTerms": subnets.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
            "securityGroupSelectorTerms": security_group_terms,
            "tags": {"karpenter.sh/discovery": eks},
        },
    });
    let node_pool = json!({
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "default"},
        "spec": {
            "template": {"spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                "requirements": [
                    {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["c", "m", "r"]},
                    {"key": "karpenter.k8s.aws/instance-hypervisor", "operator": "In", "values": ["nitro"]},
                    {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["2"]},
                ],
            }},
            "limits": {"cpu": 1000},
            "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "1m"},
        },
    });
    let yaml = |v: &Value| yaml_serde::to_string(v).unwrap_or_default();
    format!("{}---\n{}", yaml(&node_class), yaml(&node_pool))
}

/// [KB-05]: ConfigMap `<capi>-karpenter-nodepool` with `resources.yaml`.
pub fn nodepool_configmap(identity: &Identity, names: &ObjectNames, resources: &str) -> Desired {
    object(
        Api::ConfigMap,
        identity,
        &names.nodepool,
        None,
        json!({
            "data": {"resources.yaml": resources},
        }),
    )
}

/// [KB-05]: ClusterResourceSet `<capi>-karpenter-nodepool` delivering that ConfigMap to this
/// Cluster (selected by its cluster-name label and the opt-in label).
pub fn cluster_resource_set(identity: &Identity, names: &ObjectNames) -> Desired {
    object(
        Api::ClusterResourceSet,
        identity,
        &names.nodepool,
        None,
        json!({"spec": {
            "clusterSelector": {"matchLabels": {
                keys::CAPI_CLUSTER_NAME: identity.capi,
                keys::KARPENTER_OPT_IN: "enabled",
            }},
            "resources": [{"kind": "ConfigMap", "name": names.nodepool}],
            "strategy": "Reconcile",
        }}),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rstest::rstest;

    fn identity() -> Identity {
        Identity {
            namespace: "ns".into(),
            capi: "demo".into(),
            eks: "demo-eks".into(),
            ack: "demo-ack".into(),
            cluster_uid: "uid-1".into(),
        }
    }

    /// [KB-04]: names that fit are kept; longer ones become `name[:max-13]-<12 hex>` of
    /// exactly `max` bytes, stable and distinct.
    #[rstest]
    #[case("short", 64, "short")]
    #[case(" padded ", 64, "padded")]
    fn kb04_shorten_keeps_fitting_names(#[case] name: &str, #[case] max: usize, #[case] out: &str) {
        assert_eq!(shorten(name, max), out);
    }

    #[test]
    fn kb04_shorten_long_names() {
        let long = format!("{}-karpenter-controller", "x".repeat(60));
        let short = shorten(&long, 64);
        assert_eq!(short.len(), 64);
        assert_eq!(&short[..51], &long[..51]);
        assert_eq!(&short[51..52], "-");
        let digest: String = Sha256::digest(long.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(&short[52..], &digest[..12]);
        assert_eq!(shorten(&long, 64), short);
        assert_ne!(shorten(&format!("{long}2"), 64), short);
    }

    proptest::proptest! {
        /// [KB-04]: the result never exceeds `max` and is unchanged when it fits.
        #[test]
        fn kb04_shorten_bounds(name in "[a-z0-9-]{1,300}", max in 14usize..300) {
            let short = shorten(&name, max);
            proptest::prop_assert!(short.len() <= max);
            if name.len() <= max {
                proptest::prop_assert_eq!(short, name);
            }
        }
    }

    /// [KB-04]: the names of one cluster, `eks-` FargateProfile bases prefixed with `aioc-`.
    #[test]
    fn kb04_object_names() {
        let names = ObjectNames::of("demo", "demo-eks");
        assert_eq!(names.node_security_group, "demo-karpenter-node-sg");
        assert_eq!(names.oidc_provider, "demo-oidc-provider");
        assert_eq!(names.controller_policy, "demo-karpenter-controller-policy");
        assert_eq!(names.controller_role, "demo-karpenter-controller");
        assert_eq!(names.node_role, "demo-karpenter-node");
        assert_eq!(
            names.instance_profile,
            "demo-karpenter-node-instance-profile"
        );
        assert_eq!(names.access_entry, "demo-karpenter-node");
        assert_eq!(names.flux, "demo-karpenter");
        assert_eq!(names.nodepool, "demo-karpenter-nodepool");
        assert_eq!(names.aws_controller_role, "demo-eks-karpenter-controller");
        assert_eq!(names.aws_node_role, "demo-eks-node");
        assert_eq!(names.aws_instance_profile, "demo-eks-node");
        assert_eq!(
            (
                names.fargate_karpenter.as_str(),
                names.fargate_coredns.as_str()
            ),
            ("demo-karpenter", "demo-coredns")
        );
        let eks = ObjectNames::of("eks-prod", "eks-prod");
        assert_eq!(eks.fargate_karpenter, "aioc-eks-prod-karpenter");
        assert_eq!(eks.fargate_coredns, "aioc-eks-prod-coredns");
    }

    /// [KB-04]: the four standard tags, blank values dropped.
    #[test]
    fn kb04_tags() {
        let tags = tags(&identity(), &[("Name", "n"), ("empty", " ")]);
        assert_eq!(
            tag_list(&tags),
            json!([
                {"key": "Name", "value": "n"},
                {"key": "kany8s.io/cluster-name", "value": "demo"},
                {"key": "kany8s.io/cluster-namespace", "value": "ns"},
                {"key": "kany8s.io/eks-cluster-name", "value": "demo-eks"},
                {"key": "kany8s.io/managed-by", "value": "eks-karpenter-bootstrapper"},
            ])
        );
    }

    #[rstest]
    #[case(
        "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC",
        Ok("oidc.eks.eu-west-1.amazonaws.com/id/ABC")
    )]
    #[case(" https://issuer.test/ ", Ok("issuer.test"))]
    #[case("http://issuer.test/id/x", Err(()))]
    #[case("https:///id/x", Err(()))]
    fn kb04_issuer_host_path(#[case] url: &str, #[case] expected: Result<&str, ()>) {
        assert_eq!(
            issuer_host_path(url).map_err(|_| ()),
            expected.map(str::to_string)
        );
    }

    fn inputs() -> AckInputs {
        AckInputs {
            aws: Aws {
                region: "eu-west-1".into(),
                account: "111122223333".into(),
                issuer: "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC".into(),
                endpoint: "https://ABC.eks.test".into(),
            },
            issuer_host_path: "oidc.eks.eu-west-1.amazonaws.com/id/ABC".into(),
            additional_node_policies: vec![
                "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore".into(),
            ],
            thumbprints: None,
        }
    }

    /// [KB-04]: the ACK objects: kinds, names, AWS names, trust policies, references, tags.
    #[test]
    fn kb04_ack_objects() {
        let names = ObjectNames::of("demo", "demo-eks");
        let objects = ack_objects(&identity(), &names, &inputs());
        let kinds: Vec<(&str, &str)> = objects
            .iter()
            .map(|o| (o.api.kind(), o.name.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("OpenIDConnectProvider", "demo-oidc-provider"),
                ("Policy", "demo-karpenter-controller-policy"),
                ("Role", "demo-karpenter-controller"),
                ("Role", "demo-karpenter-node"),
                ("InstanceProfile", "demo-karpenter-node-instance-profile"),
                ("AccessEntry", "demo-karpenter-node"),
            ]
        );
        for object in &objects {
            let metadata = &object.body["metadata"];
            assert_eq!(
                metadata["annotations"]["eks.kany8s.io/managed-by"],
                BOOTSTRAPPER
            );
            assert_eq!(
                metadata["annotations"]["services.k8s.aws/region"],
                "eu-west-1"
            );
            assert_eq!(metadata["labels"]["cluster.x-k8s.io/cluster-name"], "demo");
            assert_eq!(metadata["ownerReferences"][0]["uid"], "uid-1");
            assert!(metadata["ownerReferences"][0].get("controller").is_none());
        }
        assert_eq!(
            objects[0].body["spec"]["clientIDs"],
            json!(["sts.amazonaws.com"])
        );
        // No thumbprint asked for: the field is absent (IAM obtains it for EKS issuers).
        assert!(objects[0].body["spec"].get("thumbprints").is_none());
        let with_thumbprint = AckInputs {
            thumbprints: Some(vec!["0123abcd".into()]),
            ..inputs()
        };
        assert_eq!(
            ack_objects(&identity(), &names, &with_thumbprint)[0].body["spec"]["thumbprints"],
            json!(["0123abcd"])
        );
        let trust: Value = serde_json::from_str(
            objects[2].body["spec"]["assumeRolePolicyDocument"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        let statement = &trust["Statement"][0];
        assert_eq!(
            statement["Principal"]["Federated"],
            "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC"
        );
        assert_eq!(
            statement["Condition"]["StringEquals"]["oidc.eks.eu-west-1.amazonaws.com/id/ABC:sub"],
            "system:serviceaccount:karpenter:karpenter"
        );
        assert_eq!(
            objects[2].body["spec"]["policyRefs"],
            json!([{"from": {"name": "demo-karpenter-controller-policy", "namespace": "ns"}}])
        );
        assert_eq!(
            objects[3].body["spec"]["policies"],
            json!([
                "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
                "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
                "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
                "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
            ])
        );
        assert_eq!(
            objects[5].body["spec"]["principalARN"],
            "arn:aws:iam::111122223333:role/demo-eks-node"
        );
        assert_eq!(objects[5].body["spec"]["type"], "EC2_LINUX");
        assert_eq!(
            objects[5].body["spec"]["clusterRef"]["from"]["name"],
            "demo-ack"
        );
        assert_eq!(
            objects[5].body["spec"]["tags"]["kany8s.io/managed-by"],
            BOOTSTRAPPER
        );
        let policy: Value =
            serde_json::from_str(objects[1].body["spec"]["policyDocument"].as_str().unwrap())
                .unwrap();
        let sids: Vec<&str> = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap())
            .collect();
        assert_eq!(sids.len(), 15);
        assert!(sids.contains(&"AllowPassingInstanceRole"));
        let pass = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == "AllowPassingInstanceRole")
            .unwrap();
        assert_eq!(
            pass["Resource"],
            json!(["arn:aws:iam::111122223333:role/demo-eks-node"])
        );
    }

    /// [KB-05]: the override is merged, then name, endpoint and role ARN are forced back; a
    /// non-object override is an error.
    #[test]
    fn kb05_helm_values() {
        let values = helm_values(
            "demo-eks",
            "https://e",
            "arn:role",
            "queue",
            r#"{"replicas": 1, "settings": {"clusterName": "evil", "featureGates": {"x": true}}, "serviceAccount": "flat"}"#,
        )
        .unwrap();
        assert_eq!(values["replicas"], 1);
        assert_eq!(values["settings"]["clusterName"], "demo-eks");
        assert_eq!(values["settings"]["clusterEndpoint"], "https://e");
        assert_eq!(values["settings"]["interruptionQueue"], "queue");
        assert_eq!(values["settings"]["featureGates"]["x"], true);
        assert_eq!(
            values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"],
            "arn:role"
        );
        assert_eq!(values["webhook"]["enabled"], false);
        assert!(helm_values("a", "b", "c", "", "[1]").is_err());
        assert!(helm_values("a", "b", "c", "", "{").is_err());
    }

    /// [KB-05]: the default NodePool YAML names the subnets, SGs, instance profile and
    /// discovery tag; the ClusterResourceSet selects this Cluster and reconciles.
    #[test]
    fn kb05_nodepool_and_crs() {
        let yaml = default_nodepool_yaml(
            "demo-eks",
            "demo-eks-node",
            &["subnet-a".into(), "subnet-b".into()],
            &["sg-1".into()],
        );
        let docs: Vec<Value> = yaml
            .split("---\n")
            .map(|d| yaml_serde::from_str(d).unwrap())
            .collect();
        assert_eq!(docs[0]["kind"], "EC2NodeClass");
        assert_eq!(docs[0]["spec"]["instanceProfile"], "demo-eks-node");
        assert_eq!(
            docs[0]["spec"]["subnetSelectorTerms"],
            json!([{"id": "subnet-a"}, {"id": "subnet-b"}])
        );
        assert_eq!(
            docs[0]["spec"]["securityGroupSelectorTerms"],
            json!([{"id": "sg-1"}, {"tags": {"aws:eks:cluster-name": "demo-eks"}}])
        );
        assert_eq!(
            docs[0]["spec"]["tags"]["karpenter.sh/discovery"],
            "demo-eks"
        );
        assert_eq!(docs[1]["kind"], "NodePool");
        assert_eq!(
            docs[1]["spec"]["template"]["spec"]["nodeClassRef"]["name"],
            "default"
        );
        let names = ObjectNames::of("demo", "demo-eks");
        let crs = cluster_resource_set(&identity(), &names);
        assert_eq!(crs.body["apiVersion"], "addons.cluster.x-k8s.io/v1beta2");
        assert_eq!(crs.body["spec"]["strategy"], "Reconcile");
        assert_eq!(
            crs.body["spec"]["clusterSelector"]["matchLabels"],
            json!({"cluster.x-k8s.io/cluster-name": "demo", "eks.kany8s.io/karpenter": "enabled"})
        );
        let [oci, release] = flux_objects(&identity(), &names, "1.0.8", &json!({}));
        assert_eq!(oci.body["spec"]["ref"]["tag"], "1.0.8");
        assert_eq!(
            oci.body["spec"]["url"],
            "oci://public.ecr.aws/karpenter/karpenter"
        );
        assert_eq!(
            release.body["spec"]["kubeConfig"]["secretRef"]["name"],
            "demo-kubeconfig"
        );
        assert_eq!(release.body["spec"]["targetNamespace"], "karpenter");
        assert_eq!(release.body["spec"]["install"]["crds"], "CreateReplace");
        assert_eq!(
            release.body["spec"]["install"]["remediation"]["retries"],
            -1
        );
        assert!(
            oci.body["metadata"]["annotations"]
                .get("services.k8s.aws/region")
                .is_none()
        );
    }
}
