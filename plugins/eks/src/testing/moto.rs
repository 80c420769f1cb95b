//! A real AWS API emulator for the bootstrapper's EC2 tests and the `eks-karpenter` acceptance
//! scenario: `moto_server` (moto from PyPI, installed by `make moto` into `.tools/moto`, or
//! `$MOTO_SERVER`) started on a free loopback port per test and stopped when dropped. A test that
//! needs it fails when `CI` is set and moto is missing, and skips with a message otherwise. Also
//! builds the VPC layouts the tests use, through the SDK, as an operator would. Test support:
//! a failed setup call panics, as a test's own would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::bootstrapper::ec2::Ec2;
use aws_credential_types::Credentials;
use aws_sdk_ec2::types::{Filter, InstanceType, ResourceType, Tag, TagSpecification};

pub const REGION: &str = "eu-west-1";

/// A running `moto_server`.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MOTO_SERVER").map(PathBuf::from) {
        return path.exists().then_some(path);
    }
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../.tools/moto/bin/moto_server"
    ));
    path.exists().then_some(path)
}

impl Moto {
    /// Starts moto on a free loopback port; `None` (after a message) when it is not installed
    /// and `CI` is not set.
    pub async fn start() -> Option<Self> {
        let Some(binary) = binary() else {
            let message = "moto_server not found (run `make moto`, or set MOTO_SERVER)";
            if std::env::var_os("CI").is_some() {
                panic!("{message}; CI is set, so the EC2 tests cannot be skipped");
            }
            eprintln!("skipped: {message}");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto_server");
        let moto = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some(moto);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("moto_server did not listen on {port} within 15 s");
    }

    /// The bootstrapper's EC2 side against this emulator, dummy credentials, short pauses.
    pub fn ec2(&self) -> Ec2 {
        let mut ec2 = Ec2::with_credentials(
            Credentials::new("AKIDMOTOTEST", "moto-secret", None, None, "static"),
            Some(self.endpoint.clone()),
        );
        ec2.attempt_pause = Duration::from_millis(100);
        ec2
    }
}

/// A VPC as the tests lay it out: two private subnets (default route via a NAT gateway) in
/// two zones, one public subnet (via an internet gateway), one subnet without default route.
#[derive(Clone, Debug)]
pub struct Network {
    pub vpc: String,
    pub private: Vec<String>,
    pub public: String,
    pub isolated: String,
    pub security_group: String,
}

fn tags(kind: ResourceType, tags: &[(&str, &str)]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                .collect(),
        ))
        .build()
}

pub async fn network(ec2: &Ec2, cidr: &str) -> Network {
    let client = ec2.client(REGION);
    let vpc = client
        .create_vpc()
        .cidr_block(cidr)
        .send()
        .await
        .unwrap()
        .vpc
        .unwrap()
        .vpc_id
        .unwrap();
    let prefix = cidr.rsplit_once(".0.0/").unwrap().0;
    let subnet = |third: u8, zone: &'static str| {
        let client = client.clone();
        let vpc = vpc.clone();
        async move {
            client
                .create_subnet()
                .vpc_id(vpc)
                .cidr_block(format!("{prefix}.{third}.0/24"))
                .availability_zone(zone)
                .send()
                .await
                .unwrap()
                .subnet
                .unwrap()
                .subnet_id
                .unwrap()
        }
    };
    let public = subnet(0, "eu-west-1a").await;
    let private_a = subnet(1, "eu-west-1a").await;
    let private_b = subnet(2, "eu-west-1b").await;
    let isolated = subnet(3, "eu-west-1c").await;
    let igw = client
        .create_internet_gateway()
        .send()
        .await
        .unwrap()
        .internet_gateway
        .unwrap()
        .internet_gateway_id
        .unwrap();
    client
        .attach_internet_gateway()
        .internet_gateway_id(&igw)
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap();
    let route_table = |client: aws_sdk_ec2::Client, vpc: String| async move {
        client
            .create_route_table()
            .vpc_id(vpc)
            .send()
            .await
            .unwrap()
            .route_table
            .unwrap()
            .route_table_id
            .unwrap()
    };
    let public_rt = route_table(client.clone(), vpc.clone()).await;
    client
        .create_route()
        .route_table_id(&public_rt)
        .destination_cidr_block("0.0.0.0/0")
        .gateway_id(&igw)
        .send()
        .await
        .unwrap();
    client
        .associate_route_table()
        .route_table_id(&public_rt)
        .subnet_id(&public)
        .send()
        .await
        .unwrap();
    let allocation = client
        .allocate_address()
        .send()
        .await
        .unwrap()
        .allocation_id
        .unwrap();
    let nat = client
        .create_nat_gateway()
        .subnet_id(&public)
        .allocation_id(allocation)
        .send()
        .await
        .unwrap()
        .nat_gateway
        .unwrap()
        .nat_gateway_id
        .unwrap();
    let private_rt = route_table(client.clone(), vpc.clone()).await;
    client
        .create_route()
        .route_table_id(&private_rt)
        .destination_cidr_block("0.0.0.0/0")
        .nat_gateway_id(&nat)
        .send()
        .await
        .unwrap();
    for subnet in [&private_a, &private_b] {
        client
            .associate_route_table()
            .route_table_id(&private_rt)
            .subnet_id(subnet)
            .send()
            .await
            .unwrap();
    }
    // The isolated subnet keeps the main route table (local routes only).
    let security_group = client
        .create_security_group()
        .group_name(format!("karpenter-node-{vpc}"))
        .description("node security group")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap()
        .group_id
        .unwrap();
    Network {
        vpc,
        private: vec![private_a, private_b],
        public,
        isolated,
        security_group,
    }
}

/// Launches `count` instances in `subnet`, tagged `karpenter.sh/discovery=<discovery>` when
/// given.
pub async fn instances(
    ec2: &Ec2,
    subnet: &str,
    count: i32,
    discovery: Option<&str>,
) -> Vec<String> {
    let client = ec2.client(REGION);
    let mut request = client
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(InstanceType::T3Micro)
        .subnet_id(subnet)
        .min_count(count)
        .max_count(count);
    if let Some(eks) = discovery {
        request = request.tag_specifications(tags(
            ResourceType::Instance,
            &[("karpenter.sh/discovery", eks)],
        ));
    }
    request
        .send()
        .await
        .unwrap()
        .instances()
        .iter()
        .map(|i| i.instance_id().unwrap().to_string())
        .collect()
}

/// The state names of `ids`.
pub async fn states(ec2: &Ec2, ids: &[String]) -> Vec<String> {
    let out = ec2
        .client(REGION)
        .describe_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .send()
        .await
        .unwrap();
    let mut states: Vec<(String, String)> = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| {
            (
                i.instance_id().unwrap().to_string(),
                i.state().unwrap().name().unwrap().as_str().to_string(),
            )
        })
        .collect();
    states.sort_by_key(|(id, _)| ids.iter().position(|i| i == id));
    states.into_iter().map(|(_, s)| s).collect()
}

/// Creates an ENI in `subnet` and `security_group`, tagged as the VPC CNI's when `cni`.
pub async fn eni(ec2: &Ec2, subnet: &str, security_group: &str, cni: bool) -> String {
    let client = ec2.client(REGION);
    let mut request = client
        .create_network_interface()
        .subnet_id(subnet)
        .groups(security_group);
    if cni {
        request = request.tag_specifications(tags(
            ResourceType::NetworkInterface,
            &[("eks:eni:owner", "amazon-vpc-cni")],
        ));
    }
    request
        .send()
        .await
        .unwrap()
        .network_interface
        .unwrap()
        .network_interface_id
        .unwrap()
}

/// Attaches `eni` to `instance`.
pub async fn attach(ec2: &Ec2, eni: &str, instance: &str) {
    ec2.client(REGION)
        .attach_network_interface()
        .network_interface_id(eni)
        .instance_id(instance)
        .device_index(1)
        .send()
        .await
        .unwrap();
}

/// The ENI ids of `security_group` that still exist.
pub async fn enis(ec2: &Ec2, security_group: &str) -> Vec<String> {
    let mut ids: Vec<String> = ec2
        .client(REGION)
        .describe_network_interfaces()
        .filters(
            Filter::builder()
                .name("group-id")
                .values(security_group)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .network_interfaces()
        .iter()
        .map(|n| n.network_interface_id().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// Creates security group `name` in `vpc` with `tags`, as ACK's ec2-controller would for a
/// `SecurityGroup` object; returns its id (an error for the caller to retry: the simulated ACK
/// controller calls this).
pub async fn security_group(
    ec2: &Ec2,
    region: &str,
    vpc: &str,
    name: &str,
    description: &str,
    tags_: &[(&str, &str)],
) -> Result<String, String> {
    let mut request = ec2
        .client(region)
        .create_security_group()
        .group_name(name)
        .description(description)
        .vpc_id(vpc);
    if !tags_.is_empty() {
        request = request.tag_specifications(tags(ResourceType::SecurityGroup, tags_));
    }
    let created = request
        .send()
        .await
        .map_err(|e| aws_sdk_ec2::error::DisplayErrorContext(e).to_string())?;
    created
        .group_id
        .ok_or_else(|| "CreateSecurityGroup returned no GroupId".to_string())
}
