//! The provider under adversity: random fleets of control planes and infrastructure clusters
//! while the API server injects conflicts and errors, drops watches, Secrets rotate, objects
//! pause and the manager is restarted. Whatever the interleaving, everything converges to the
//! spec'd status and the invariants hold throughout (issue "Done when": never a second
//! instance, never initialized without endpoint and kubeconfig, never un-initialized, never
//! a foreign Secret overwritten).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kany8s::api::{Kany8sCluster, Kany8sControlPlane};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use proptest::prelude::*;
use serde_json::json;

use crate::common::*;

#[derive(Clone, Debug)]
enum Step {
    Restart,
    DropWatches,
    Rotate(usize),
    Pause(usize),
    Unpause(usize),
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Restart),
        Just(Step::DropWatches),
        (0usize..8).prop_map(Step::Rotate),
        (0usize..8).prop_map(Step::Pause),
        (0usize..8).prop_map(Step::Unpause),
        (50u64..400).prop_map(Step::Wait),
    ]
}

fn secret(name: &str, content: &str, labels: serde_json::Value) -> Secret {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "data": {"value": base64::engine::general_purpose::STANDARD.encode(content)}}))
    .unwrap()
}

fn manager(client: &Client) -> tokio::task::JoinHandle<()> {
    let client = client.clone();
    tokio::spawn(async move {
        let _ = kany8s::manager::run(
            client,
            kany8s::manager::Config {
                groups: Vec::new(),
                options: kany8s::manager::Options::default(),
                leader_election: None,
                health_address: None,
                metrics_address: None,
            },
            std::future::pending(),
            None,
        )
        .await;
    })
}

/// Violations seen by the observer while the scenario runs.
#[derive(Debug, Default)]
struct Observed {
    initialized: BTreeMap<String, bool>,
    violations: Vec<String>,
}

fn initialized(cp: &Kany8sControlPlane) -> bool {
    cp.status
        .as_ref()
        .and_then(|s| s.initialization.as_ref())
        .and_then(|i| i.control_plane_initialized)
        == Some(true)
}

async fn scenario(clusters: usize, conflicts: f64, errors: f64, seed: u64, steps: Vec<Step>) {
    let (server, client) = start_without_manager().await;
    apply_rgd(
        &client,
        fixture("control-plane/demo-control-plane-kubeconfig.yaml"),
    )
    .await;
    apply_rgd(&client, fixture("infrastructure/demo-infra.yaml")).await;

    // Every control-plane status the API ever reports is checked.
    let observed = Arc::new(Mutex::new(Observed::default()));
    let cps: Api<Kany8sControlPlane> = Api::namespaced(client.clone(), "default");
    let watch = {
        let observed = observed.clone();
        let stream = watcher::watcher(cps.clone(), watcher::Config::default())
            .default_backoff()
            .applied_objects();
        tokio::spawn(async move {
            futures::pin_mut!(stream);
            while let Some(Ok(cp)) = stream.next().await {
                let mut o = observed.lock().unwrap();
                let name = cp.name_any();
                let now = initialized(&cp);
                if o.initialized.get(&name) == Some(&true) && !now {
                    o.violations
                        .push(format!("{name}: initialized flipped back"));
                }
                if now
                    && !cp
                        .spec
                        .control_plane_endpoint
                        .as_ref()
                        .is_some_and(|e| e.is_valid())
                {
                    o.violations
                        .push(format!("{name}: initialized without an endpoint"));
                }
                let kubeconfig = condition(&cp, "KubeconfigSecretReconciled");
                if now
                    && o.initialized.get(&name) != Some(&true)
                    && kubeconfig.as_ref().is_none_or(|c| c.0 != "True")
                {
                    o.violations.push(format!(
                        "{name}: initialized without a kubeconfig: {kubeconfig:?}"
                    ));
                }
                o.initialized.insert(name, now);
            }
        })
    };

    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    // Cluster 0's target Secret belongs to someone else: it must never be touched.
    let foreign = secrets
        .create(
            &PostParams::default(),
            &secret(
                "c0-kubeconfig",
                "not ours",
                json!({"app.kubernetes.io/managed-by": "someone-else"}),
            ),
        )
        .await
        .unwrap();
    let ics: Api<Kany8sCluster> = Api::namespaced(client.clone(), "default");
    for i in 0..clusters {
        let cluster = create_cluster(&client, &format!("c{i}")).await;
        let owner = json!([{"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
            "name": cluster.name_any(), "uid": cluster.uid().unwrap()}]);
        secrets
            .create(
                &PostParams::default(),
                &secret(&format!("c{i}-admin-kubeconfig"), KUBECONFIG, json!({})),
            )
            .await
            .unwrap();
        let cp = json!({"apiVersion": "controlplane.cluster.x-k8s.io/v1alpha1", "kind": "Kany8sControlPlane",
            "metadata": {"name": format!("c{i}"), "namespace": "default", "ownerReferences": owner},
            "spec": {"version": "v1.31.2", "resourceGraphDefinitionRef": {"name": "demo-control-plane-kubeconfig.kro.run"},
                "kroSpec": {"name": format!("c{i}")}}});
        cps.create(&PostParams::default(), &serde_json::from_value(cp).unwrap())
            .await
            .unwrap();
        let mut spec = json!({});
        if i % 2 == 1 {
            spec = json!({"resourceGraphDefinitionRef": {"name": "demo-infra.kro.run"}});
        }
        let ic = json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1alpha1", "kind": "Kany8sCluster",
            "metadata": {"name": format!("c{i}"), "namespace": "default", "ownerReferences": owner}, "spec": spec});
        ics.create(&PostParams::default(), &serde_json::from_value(ic).unwrap())
            .await
            .unwrap();
    }

    server.faults().seed(seed);
    server.faults().fail_writes(conflicts, errors);
    let mut running = manager(&client);
    let mut paused = vec![false; clusters];
    let mut rotation = 0;
    for step in steps {
        match step {
            Step::Restart => {
                running.abort();
                let _ = running.await;
                running = manager(&client);
            }
            Step::DropWatches => server.faults().drop_watches(),
            Step::Rotate(i) => {
                let i = i % clusters;
                rotation += 1;
                let content = KUBECONFIG.replace("token: t", &format!("token: r{rotation}"));
                // Injected failures may hit the test's own writes too; it retries like a client.
                for _ in 0..20 {
                    if secrets
                        .replace(
                            &format!("c{i}-admin-kubeconfig"),
                            &PostParams::default(),
                            &secret(&format!("c{i}-admin-kubeconfig"), &content, json!({})),
                        )
                        .await
                        .is_ok()
                    {
                        break;
                    }
                }
            }
            Step::Pause(i) | Step::Unpause(i) => {
                let i = i % clusters;
                let pause = matches!(step, Step::Pause(_));
                let value = if pause { json!("") } else { json!(null) };
                for _ in 0..20 {
                    if cps
                        .patch(&format!("c{i}"), &PatchParams::default(),
                            &Patch::Merge(json!({"metadata": {"annotations": {"cluster.x-k8s.io/paused": value}}})))
                        .await
                        .is_ok()
                    {
                        paused[i] = pause;
                        break;
                    }
                }
            }
            Step::Wait(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        }
    }
    // Calm: no more faults, everything unpaused; it must converge.
    server.faults().fail_writes(0.0, 0.0);
    for (i, was_paused) in paused.iter().enumerate() {
        if *was_paused {
            cps.patch(
                &format!("c{i}"),
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"metadata": {"annotations": {"cluster.x-k8s.io/paused": null}}}),
                ),
            )
            .await
            .unwrap();
        }
    }
    for i in 0..clusters {
        let name = format!("c{i}");
        if i == 0 {
            wait_for(&cps, &name, "the ownership conflict", |cp| {
                condition(cp, "KubeconfigSecretReconciled")
                    .is_some_and(|c| c.1 == "KubeconfigSecretOwnershipConflict")
                    && condition(cp, "Paused").is_some_and(|c| c.0 == "False")
            })
            .await;
        } else {
            wait_for(&cps, &name, "Available", |cp| {
                condition(cp, "Available").is_some_and(|c| c.0 == "True")
                    && condition(cp, "Paused").is_some_and(|c| c.0 == "False")
            })
            .await;
            let expected = secrets
                .get(&format!("c{i}-admin-kubeconfig"))
                .await
                .unwrap()
                .data
                .unwrap();
            for _ in 0..100 {
                if secrets.get(&format!("c{i}-kubeconfig")).await.unwrap().data
                    == Some(expected.clone())
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(
                secrets.get(&format!("c{i}-kubeconfig")).await.unwrap().data,
                Some(expected),
                "{name}: latest rotation not propagated"
            );
        }
        wait_for(&ics, &name, "provisioned", |ic| {
            condition(ic, "Ready").is_some_and(|c| c.0 == "True")
        })
        .await;
    }
    // Exactly one instance per object, named after it.
    let cp_instances = instances(
        &client,
        "DemoControlPlaneKubeconfig",
        "democontrolplanekubeconfigs",
    );
    let mut names: Vec<String> = cp_instances
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|o| o.name_any())
        .collect();
    names.sort();
    let mut expected: Vec<String> = (0..clusters).map(|i| format!("c{i}")).collect();
    expected.sort();
    assert_eq!(
        names, expected,
        "one control-plane instance per control plane"
    );
    let infra = instances(&client, "DemoInfrastructure", "demoinfrastructures");
    assert_eq!(
        infra
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        clusters / 2,
        "one instance per kro-mode Kany8sCluster"
    );
    let untouched = secrets.get("c0-kubeconfig").await.unwrap();
    assert_eq!(
        untouched.resource_version(),
        foreign.resource_version(),
        "a foreign Secret was written"
    );
    let violations = std::mem::take(&mut observed.lock().unwrap().violations);
    assert!(violations.is_empty(), "{violations:#?}");
    running.abort();
    watch.abort();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn converges_under_faults_and_restarts(
        clusters in 2usize..6,
        conflicts in 0.0f64..0.15,
        errors in 0.0f64..0.08,
        seed in 1u64..u64::MAX,
        steps in proptest::collection::vec(step(), 4..14),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(scenario(clusters, conflicts, errors, seed, steps));
    }
}
