//! The bootstrapper's EC2 calls against moto, a real AWS API emulator on loopback ([KB-03],
//! [KB-06]): the subnet facts and verdicts of real VPC layouts, the termination of exactly the
//! instances tagged for the cluster, and the deletion of exactly the orphan CNI ENIs of the
//! node SecurityGroup.

use std::collections::BTreeSet;

use crate::moto::{self, Moto, REGION};
use kany8s_eks::bootstrapper::ec2::{DefaultRoute, TERMINATE_BATCH, verdict};

/// [KB-03]: private subnets (NAT) in two zones pass; a public subnet, two VPCs, a VPC other
/// than the cluster's and an unknown id are errors; a subnet without a NAT route and a single
/// zone are warnings.
#[tokio::test]
async fn kb03_subnet_validation_against_moto() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let ec2 = moto.ec2();
    let net = moto::network(&ec2, "10.1.0.0/16").await;
    let other = moto::network(&ec2, "10.2.0.0/16").await;

    let report = ec2.subnets(REGION, &net.private).await.unwrap();
    assert!(report.missing.is_empty());
    assert!(
        report
            .subnets
            .iter()
            .all(|s| matches!(s.default_route, DefaultRoute::Nat(ref n) if n.starts_with("nat-")))
    );
    assert!(report.vpc_cidrs[&net.vpc].contains(&"10.1.0.0/16".to_string()));
    let good = verdict(&report, Some(&net.vpc));
    assert_eq!(good.error, None);
    assert_eq!(good.vpc_id, net.vpc);
    assert_eq!(good.zones, 2);
    assert!(good.without_nat.is_empty());

    let public = ec2
        .subnets(REGION, &[net.private[0].clone(), net.public.clone()])
        .await
        .unwrap();
    let error = verdict(&public, None).error.unwrap();
    assert!(
        error.contains(&net.public) && error.contains("are public"),
        "{error}"
    );
    assert!(error.contains("via igw-"), "{error}");

    let spread = ec2
        .subnets(REGION, &[net.private[0].clone(), other.private[0].clone()])
        .await
        .unwrap();
    assert!(
        verdict(&spread, None)
            .error
            .unwrap()
            .contains("more than one VPC")
    );
    assert!(
        verdict(&report, Some(&other.vpc))
            .error
            .unwrap()
            .contains("the EKS cluster is in VPC")
    );

    let unknown = ec2
        .subnets(
            REGION,
            &[net.private[0].clone(), "subnet-0123456789abcdef0".into()],
        )
        .await
        .unwrap();
    assert_eq!(unknown.missing, ["subnet-0123456789abcdef0"]);
    assert!(
        verdict(&unknown, None)
            .error
            .unwrap()
            .contains("do not exist")
    );

    let isolated = ec2
        .subnets(REGION, std::slice::from_ref(&net.isolated))
        .await
        .unwrap();
    assert_eq!(isolated.subnets[0].default_route, DefaultRoute::None);
    let warned = verdict(&isolated, None);
    assert_eq!(warned.error, None);
    assert_eq!(warned.without_nat, std::slice::from_ref(&net.isolated));
    assert_eq!(warned.zones, 1);
}

/// [KB-06]: every instance tagged `karpenter.sh/discovery=<eks>` — more than one batch of
/// 50 — is terminated; instances of another cluster and untagged ones keep running.
#[tokio::test]
async fn kb06_terminates_exactly_the_tagged_instances() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let ec2 = moto.ec2();
    let net = moto::network(&ec2, "10.3.0.0/16").await;
    let count = i32::try_from(TERMINATE_BATCH).unwrap() + 2;
    let ours = moto::instances(&ec2, &net.private[0], count, Some("demo")).await;
    let theirs = moto::instances(&ec2, &net.private[1], 2, Some("other")).await;
    let untagged = moto::instances(&ec2, &net.private[1], 1, None).await;

    let started = std::time::Instant::now();
    let cleanup = ec2.terminate_discovered(REGION, "demo").await.unwrap();
    eprintln!(
        "terminated {} instances in {:?} ({} per call)",
        cleanup.terminated.len(),
        started.elapsed(),
        TERMINATE_BATCH
    );
    assert!(cleanup.done);
    let terminated: BTreeSet<&String> = cleanup.terminated.iter().collect();
    assert_eq!(terminated, ours.iter().collect());
    assert!(
        moto::states(&ec2, &ours)
            .await
            .iter()
            .all(|s| s == "terminated")
    );
    assert!(
        moto::states(&ec2, &theirs)
            .await
            .iter()
            .all(|s| s == "running")
    );
    assert_eq!(moto::states(&ec2, &untagged).await, ["running"]);
    // Nothing left: a second pass sends no TerminateInstances.
    let again = ec2.terminate_discovered(REGION, "demo").await.unwrap();
    assert!(again.done && again.terminated.is_empty());
}

/// [KB-06]: the unattached ENIs tagged `eks:eni:owner=amazon-vpc-cni` in the node
/// SecurityGroup are deleted; attached ones, untagged ones and other groups' are not.
#[tokio::test]
async fn kb06_deletes_exactly_the_orphan_cni_enis() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let ec2 = moto.ec2();
    let net = moto::network(&ec2, "10.4.0.0/16").await;
    let other = moto::network(&ec2, "10.5.0.0/16").await;
    let orphan_a = moto::eni(&ec2, &net.private[0], &net.security_group, true).await;
    let orphan_b = moto::eni(&ec2, &net.private[1], &net.security_group, true).await;
    let attached = moto::eni(&ec2, &net.private[0], &net.security_group, true).await;
    let instance = moto::instances(&ec2, &net.private[0], 1, None).await;
    moto::attach(&ec2, &attached, &instance[0]).await;
    let foreign = moto::eni(&ec2, &net.private[0], &net.security_group, false).await;
    let elsewhere = moto::eni(&ec2, &other.private[0], &other.security_group, true).await;

    let cleanup = ec2
        .delete_orphan_enis(REGION, &net.security_group)
        .await
        .unwrap();
    let mut deleted = cleanup.deleted.clone();
    deleted.sort();
    let mut expected = vec![orphan_a, orphan_b];
    expected.sort();
    assert_eq!(deleted, expected);
    let mut left = vec![attached, foreign];
    left.sort();
    assert_eq!(moto::enis(&ec2, &net.security_group).await, left);
    assert_eq!(moto::enis(&ec2, &other.security_group).await, [elsewhere]);
}
