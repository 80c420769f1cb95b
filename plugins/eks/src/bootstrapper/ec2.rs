//! The bootstrapper's EC2 calls, with the AWS SDK for Rust ([KB-03], [KB-06], [KB-07]):
//! DescribeSubnets, DescribeRouteTables and DescribeVpcs for the subnet facts; DescribeInstances
//! and TerminateInstances (batches of 50, up to 3 attempts), DescribeNetworkInterfaces and
//! DeleteNetworkInterface for the cleanup. Credentials come from the SDK's default chain; the
//! endpoint is the SDK's unless `--aws-endpoint-url` names one (an emulator on loopback in the
//! tests). What the facts mean is decided by the pure [`verdict`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_ec2::types::{Filter, InstanceStateName, NetworkInterfaceStatus, RouteTable};

/// An EC2 call that failed.
#[derive(Debug, thiserror::Error)]
#[error("{operation}: {message}")]
pub struct Ec2Error {
    pub operation: &'static str,
    pub message: String,
}

fn failed<E>(operation: &'static str) -> impl FnOnce(aws_sdk_ec2::error::SdkError<E>) -> Ec2Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |error| Ec2Error {
        operation,
        message: DisplayErrorContext(&error).to_string(),
    }
}

/// The error code of a service error (`InvalidInstanceID.NotFound`, …).
fn code<E: ProvideErrorMetadata>(error: &aws_sdk_ec2::error::SdkError<E>) -> Option<String> {
    error
        .as_service_error()
        .and_then(|e| e.code())
        .map(str::to_string)
}

/// Where a subnet's default route (`0.0.0.0/0` or `::/0`) goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DefaultRoute {
    None,
    /// An internet gateway (`igw-*`): the subnet is public.
    InternetGateway(String),
    /// A NAT gateway or NAT instance.
    Nat(String),
    /// Anything else (transit gateway, peering, …).
    Other(String),
}

/// One subnet as EC2 describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    pub zone: String,
    pub default_route: DefaultRoute,
}

/// What EC2 says about the node subnets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubnetReport {
    pub subnets: Vec<Subnet>,
    /// Requested ids EC2 does not know.
    pub missing: Vec<String>,
    /// The IPv4 CIDR blocks of each VPC of the subnets.
    pub vpc_cidrs: BTreeMap<String, Vec<String>>,
}

/// [KB-03]: the subnet verdict: an error stops the bootstrap; warnings are reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub vpc_id: String,
    pub error: Option<String>,
    pub without_nat: Vec<String>,
    pub zones: usize,
}

/// [KB-03]: every subnet exists, all are in one VPC (the ACK Cluster's, when it publishes one),
/// none is public (default route via an `igw-*`); subnets without a NAT default route and fewer
/// than 2 zones are warnings.
pub fn verdict(report: &SubnetReport, cluster_vpc: Option<&str>) -> Verdict {
    let vpcs: BTreeSet<&str> = report.subnets.iter().map(|s| s.vpc_id.as_str()).collect();
    let zones: BTreeSet<&str> = report.subnets.iter().map(|s| s.zone.as_str()).collect();
    let vpc_id = vpcs.iter().next().copied().unwrap_or_default().to_string();
    let public: Vec<String> = report
        .subnets
        .iter()
        .filter_map(|s| match &s.default_route {
            DefaultRoute::InternetGateway(gateway) => Some(format!("{} (via {gateway})", s.id)),
            _ => None,
        })
        .collect();
    let error = if !report.missing.is_empty() {
        Some(format!(
            "subnets {} do not exist",
            report.missing.join(", ")
        ))
    } else if report.subnets.is_empty() {
        Some("no subnets".to_string())
    } else if vpcs.len() > 1 {
        Some(format!(
            "subnets span more than one VPC ({})",
            vpcs.iter().copied().collect::<Vec<_>>().join(", ")
        ))
    } else if let Some(expected) = cluster_vpc.filter(|v| !v.is_empty() && *v != vpc_id) {
        Some(format!(
            "subnets are in VPC {vpc_id}, the EKS cluster is in VPC {expected}"
        ))
    } else if !public.is_empty() {
        Some(format!(
            "subnets {} are public (default route to an internet gateway)",
            public.join(", ")
        ))
    } else {
        None
    };
    Verdict {
        vpc_id,
        error,
        without_nat: report
            .subnets
            .iter()
            .filter(|s| !matches!(s.default_route, DefaultRoute::Nat(_)))
            .map(|s| s.id.clone())
            .collect(),
        zones: zones.len(),
    }
}

/// The default route of a route table, if any.
fn default_route(table: &RouteTable) -> DefaultRoute {
    for route in table.routes() {
        let default = route.destination_cidr_block() == Some("0.0.0.0/0")
            || route.destination_ipv6_cidr_block() == Some("::/0");
        if !default {
            continue;
        }
        if let Some(gateway) = route.gateway_id().filter(|g| g.starts_with("igw-")) {
            return DefaultRoute::InternetGateway(gateway.to_string());
        }
        if let Some(nat) = route
            .nat_gateway_id()
            .or(route.instance_id())
            .filter(|n| !n.is_empty())
        {
            return DefaultRoute::Nat(nat.to_string());
        }
        let other = route
            .gateway_id()
            .or(route.transit_gateway_id())
            .or(route.vpc_peering_connection_id())
            .unwrap_or("unknown");
        return DefaultRoute::Other(other.to_string());
    }
    DefaultRoute::None
}

/// What the instance cleanup did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceCleanup {
    /// Instances a TerminateInstances call was sent for.
    pub terminated: Vec<String>,
    /// Instances still shutting down after the last attempt.
    pub shutting_down: usize,
    /// No tagged instance is left that is not terminated.
    pub done: bool,
}

/// What the ENI cleanup did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EniCleanup {
    pub deleted: Vec<String>,
}

/// [KB-06]: how many instances one TerminateInstances call names, and how often the cleanup
/// looks again before it requeues.
pub const TERMINATE_BATCH: usize = 50;
pub const TERMINATE_ATTEMPTS: usize = 3;

/// The EC2 side of the bootstrapper: the SDK configuration (credentials chain, HTTP client,
/// endpoint) from which a client per region is made.
#[derive(Clone, Debug)]
pub struct Ec2 {
    config: aws_config::SdkConfig,
    endpoint: Option<String>,
    /// The pause between two cleanup attempts.
    pub attempt_pause: Duration,
}

impl Ec2 {
    /// The SDK's HTTP client: hyper with rustls (ring); plain `http://` endpoints work too.
    fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
        use aws_smithy_http_client::tls;
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https()
    }

    /// The SDK's default chain (environment, profile, web identity, container, IMDSv2);
    /// `endpoint` overrides where calls go.
    pub async fn default_chain(endpoint: Option<String>) -> Self {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(Self::http_client())
            .load()
            .await;
        Self {
            config,
            endpoint,
            attempt_pause: Duration::from_secs(5),
        }
    }

    /// Fixed credentials (no provider chain, so nothing but `endpoint` is ever dialled).
    pub fn with_credentials(
        credentials: impl aws_credential_types::provider::ProvideCredentials + 'static,
        endpoint: Option<String>,
    ) -> Self {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
            )
            .http_client(Self::http_client())
            .build();
        Self {
            config,
            endpoint,
            attempt_pause: Duration::from_secs(5),
        }
    }

    /// A client of `region`.
    pub fn client(&self, region: &str) -> aws_sdk_ec2::Client {
        let mut builder = aws_sdk_ec2::config::Builder::from(&self.config)
            .region(aws_sdk_ec2::config::Region::new(region.to_string()));
        if let Some(endpoint) = &self.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        aws_sdk_ec2::Client::from_conf(builder.build())
    }

    /// [KB-03]: the subnets, their default routes (explicit association, else the VPC's main
    /// route table) and the CIDRs of their VPCs.
    pub async fn subnets(&self, region: &str, ids: &[String]) -> Result<SubnetReport, Ec2Error> {
        let client = self.client(region);
        // A filter, not SubnetIds: unknown ids are simply not returned (then reported missing).
        let described = client
            .describe_subnets()
            .filters(filter("subnet-id", ids))
            .send()
            .await
            .map_err(failed("DescribeSubnets"))?;
        let mut found: Vec<(String, String, String)> = described
            .subnets()
            .iter()
            .map(|s| {
                (
                    s.subnet_id().unwrap_or_default().to_string(),
                    s.vpc_id().unwrap_or_default().to_string(),
                    s.availability_zone().unwrap_or_default().to_string(),
                )
            })
            .collect();
        found.sort();
        let known: BTreeSet<&str> = found.iter().map(|(id, _, _)| id.as_str()).collect();
        let missing = ids
            .iter()
            .filter(|id| !known.contains(id.as_str()))
            .cloned()
            .collect();
        let vpc_ids: Vec<String> = found
            .iter()
            .map(|(_, vpc, _)| vpc.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut vpc_cidrs = BTreeMap::new();
        let mut subnets = Vec::new();
        if !vpc_ids.is_empty() {
            let tables = client
                .describe_route_tables()
                .filters(filter("vpc-id", &vpc_ids))
                .send()
                .await
                .map_err(failed("DescribeRouteTables"))?;
            let tables = tables.route_tables();
            for (id, vpc, zone) in &found {
                let explicit = tables.iter().find(|t| {
                    t.associations()
                        .iter()
                        .any(|a| a.subnet_id() == Some(id.as_str()))
                });
                let main = || {
                    tables.iter().find(|t| {
                        t.vpc_id() == Some(vpc.as_str())
                            && t.associations().iter().any(|a| a.main() == Some(true))
                    })
                };
                subnets.push(Subnet {
                    id: id.clone(),
                    vpc_id: vpc.clone(),
                    zone: zone.clone(),
                    default_route: explicit
                        .or_else(main)
                        .map_or(DefaultRoute::None, default_route),
                });
            }
            let vpcs = client
                .describe_vpcs()
                .set_vpc_ids(Some(vpc_ids))
                .send()
                .await
                .map_err(failed("DescribeVpcs"))?;
            for vpc in vpcs.vpcs() {
                let mut cidrs: Vec<String> = vpc
                    .cidr_block_association_set()
                    .iter()
                    .filter(|a| {
                        a.cidr_block_state()
                            .and_then(|s| s.state())
                            .is_none_or(|s| s.as_str() == "associated")
                    })
                    .filter_map(|a| a.cidr_block().map(str::to_string))
                    .collect();
                if let Some(primary) = vpc.cidr_block() {
                    cidrs.push(primary.to_string());
                }
                cidrs.sort();
                cidrs.dedup();
                vpc_cidrs.insert(vpc.vpc_id().unwrap_or_default().to_string(), cidrs);
            }
        }
        Ok(SubnetReport {
            subnets,
            missing,
            vpc_cidrs,
        })
    }

    /// The ids and states of the instances tagged `karpenter.sh/discovery=<eks>` that are not
    /// terminated.
    async fn discovered_instances(
        &self,
        client: &aws_sdk_ec2::Client,
        eks: &str,
    ) -> Result<Vec<(String, InstanceStateName)>, Ec2Error> {
        let mut pages = client
            .describe_instances()
            .filters(filter("tag:karpenter.sh/discovery", &[eks.to_string()]))
            .filters(filter(
                "instance-state-name",
                &["pending", "running", "stopping", "stopped", "shutting-down"].map(String::from),
            ))
            .into_paginator()
            .send();
        let mut instances = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(failed("DescribeInstances"))?;
            for instance in page.reservations().iter().flat_map(|r| r.instances()) {
                let (Some(id), Some(state)) = (
                    instance.instance_id(),
                    instance.state().and_then(|s| s.name()),
                ) else {
                    continue;
                };
                instances.push((id.to_string(), state.clone()));
            }
        }
        Ok(instances)
    }

    /// [KB-06]: terminates the instances tagged `karpenter.sh/discovery=<eks>` in batches of
    /// 50, looking again up to 3 times (Karpenter may still launch replacements).
    pub async fn terminate_discovered(
        &self,
        region: &str,
        eks: &str,
    ) -> Result<InstanceCleanup, Ec2Error> {
        let client = self.client(region);
        let mut cleanup = InstanceCleanup::default();
        for attempt in 0..TERMINATE_ATTEMPTS {
            let instances = self.discovered_instances(&client, eks).await?;
            let to_terminate: Vec<String> = instances
                .iter()
                .filter(|(_, state)| *state != InstanceStateName::ShuttingDown)
                .map(|(id, _)| id.clone())
                .collect();
            cleanup.shutting_down = instances.len() - to_terminate.len();
            if to_terminate.is_empty() {
                cleanup.done = cleanup.shutting_down == 0;
                return Ok(cleanup);
            }
            for batch in to_terminate.chunks(TERMINATE_BATCH) {
                match client
                    .terminate_instances()
                    .set_instance_ids(Some(batch.to_vec()))
                    .send()
                    .await
                {
                    Ok(_) => {}
                    Err(error) if code(&error).as_deref() == Some("InvalidInstanceID.NotFound") => {
                    }
                    Err(error) => return Err(failed("TerminateInstances")(error)),
                }
                tracing::info!(
                    region,
                    eks,
                    count = batch.len(),
                    attempt,
                    "terminated Karpenter instances"
                );
                cleanup.terminated.extend(batch.iter().cloned());
            }
            if attempt + 1 < TERMINATE_ATTEMPTS {
                tokio::time::sleep(self.attempt_pause).await;
            }
        }
        let left = self.discovered_instances(&client, eks).await?;
        cleanup.shutting_down = left.len();
        cleanup.done = left.is_empty();
        Ok(cleanup)
    }

    /// [KB-06]: deletes the unattached, available ENIs that the VPC CNI created
    /// (`eks:eni:owner=amazon-vpc-cni`) in `security_group`.
    pub async fn delete_orphan_enis(
        &self,
        region: &str,
        security_group: &str,
    ) -> Result<EniCleanup, Ec2Error> {
        let client = self.client(region);
        let mut pages = client
            .describe_network_interfaces()
            .filters(filter("group-id", &[security_group.to_string()]))
            .into_paginator()
            .send();
        let mut orphans = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(failed("DescribeNetworkInterfaces"))?;
            for eni in page.network_interfaces() {
                let cni = eni.tag_set().iter().any(|t| {
                    t.key() == Some("eks:eni:owner")
                        && t.value()
                            .is_some_and(|v| v.trim().eq_ignore_ascii_case("amazon-vpc-cni"))
                });
                if eni.attachment().is_none()
                    && eni.status() == Some(&NetworkInterfaceStatus::Available)
                    && cni
                    && let Some(id) = eni.network_interface_id()
                {
                    orphans.push(id.to_string());
                }
            }
        }
        let mut cleanup = EniCleanup::default();
        for id in orphans {
            match client
                .delete_network_interface()
                .network_interface_id(&id)
                .send()
                .await
            {
                Ok(_) => cleanup.deleted.push(id),
                Err(error)
                    if code(&error).as_deref() == Some("InvalidNetworkInterfaceID.NotFound") => {}
                Err(error) => return Err(failed("DeleteNetworkInterface")(error)),
            }
        }
        Ok(cleanup)
    }
}

fn filter(name: &str, values: &[String]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.to_vec()))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(id: &str, vpc: &str, zone: &str, route: DefaultRoute) -> Subnet {
        Subnet {
            id: id.into(),
            vpc_id: vpc.into(),
            zone: zone.into(),
            default_route: route,
        }
    }

    fn nat() -> DefaultRoute {
        DefaultRoute::Nat("nat-1".into())
    }

    /// [KB-03]: private subnets in one VPC and two zones pass without warnings.
    #[test]
    fn kb03_private_subnets_pass() {
        let report = SubnetReport {
            subnets: vec![
                subnet("subnet-a", "vpc-1", "eu-west-1a", nat()),
                subnet("subnet-b", "vpc-1", "eu-west-1b", nat()),
            ],
            ..SubnetReport::default()
        };
        let verdict = verdict(&report, Some("vpc-1"));
        assert_eq!(verdict.error, None);
        assert_eq!(verdict.vpc_id, "vpc-1");
        assert!(verdict.without_nat.is_empty());
        assert_eq!(verdict.zones, 2);
    }

    /// [KB-03]: missing, multi-VPC, VPC mismatch and public subnets are errors (in that
    /// order); no NAT and one zone are warnings.
    #[test]
    fn kb03_bad_subnets() {
        let public = DefaultRoute::InternetGateway("igw-1".into());
        let missing = SubnetReport {
            subnets: vec![subnet("subnet-a", "vpc-1", "a", nat())],
            missing: vec!["subnet-x".into()],
            ..SubnetReport::default()
        };
        assert_eq!(
            verdict(&missing, None).error.as_deref(),
            Some("subnets subnet-x do not exist")
        );
        let spread = SubnetReport {
            subnets: vec![
                subnet("subnet-a", "vpc-1", "a", nat()),
                subnet("subnet-b", "vpc-2", "b", nat()),
            ],
            ..SubnetReport::default()
        };
        assert_eq!(
            verdict(&spread, None).error.as_deref(),
            Some("subnets span more than one VPC (vpc-1, vpc-2)")
        );
        let one = SubnetReport {
            subnets: vec![subnet("subnet-a", "vpc-1", "a", DefaultRoute::None)],
            ..SubnetReport::default()
        };
        assert_eq!(
            verdict(&one, Some("vpc-9")).error.as_deref(),
            Some("subnets are in VPC vpc-1, the EKS cluster is in VPC vpc-9")
        );
        let ok = verdict(&one, None);
        assert_eq!(ok.error, None);
        assert_eq!(ok.without_nat, ["subnet-a"]);
        assert_eq!(ok.zones, 1);
        let exposed = SubnetReport {
            subnets: vec![
                subnet("subnet-a", "vpc-1", "a", nat()),
                subnet("subnet-b", "vpc-1", "b", public),
            ],
            ..SubnetReport::default()
        };
        assert_eq!(
            verdict(&exposed, None).error.as_deref(),
            Some("subnets subnet-b (via igw-1) are public (default route to an internet gateway)")
        );
        assert!(verdict(&SubnetReport::default(), None).error.is_some());
    }
}
