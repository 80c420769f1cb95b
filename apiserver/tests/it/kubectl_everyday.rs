//! The everyday kubectl commands against the server (issue "everything the real kubectl does"):
//! discovery, server-side and client-side apply of built-ins and custom resources (with the
//! CSA → SSA migration), get in every output, a watch, explain, label, annotate, patch, edit,
//! waits, and the storage-only built-in kinds. Without kubectl: skipped, loudly, or failed when
//! `CI` is set.

use std::path::Path;
use std::time::Duration;

use kany8s_apiserver::Server;
use tokio::io::AsyncBufReadExt;

use crate::common;
use crate::common::{kubectl_env, text};

/// Runs kubectl and fails the test unless it succeeds; returns stdout.
async fn ok(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let output = kubectl_env(kubeconfig, args, stdin, &[]).await;
    assert!(
        output.status.success(),
        "kubectl {} failed: {}",
        args.join(" "),
        text(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("--validate=false"),
        "kubectl {} suggested --validate=false: {stderr}",
        args.join(" ")
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Gadget, plural: gadgets, singular: gadget, listKind: GadgetList, shortNames: [gd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Color, type: string, jsonPath: .spec.color, priority: 1}
    schema:
      openAPIV3Schema:
        type: object
        description: A gadget.
        properties:
          spec:
            type: object
            description: What the gadget should be.
            properties:
              size: {type: integer, description: How big.}
              color: {type: string}
              tags: {type: object, additionalProperties: {type: string}}
          status:
            type: object
            properties:
              phase: {type: string}
"#;

const STORAGE_ONLY: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: manager, namespace: ns1}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: leader-election, namespace: ns1}
rules:
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, list, watch, create, update, patch, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: leader-election, namespace: ns1}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: leader-election}
subjects:
- {kind: ServiceAccount, name: manager, namespace: ns1}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: manager-role
  labels: {kany8s.io/aggregate-to-manager: "true"}
rules:
- apiGroups: [kro.run]
  resources: ["*"]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: manager-rolebinding}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: manager-role}
subjects:
- {kind: ServiceAccount, name: manager, namespace: ns1}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: ns1}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers:
      - {name: agent, image: "busybox:1.36"}
---
apiVersion: v1
kind: PodTemplate
metadata: {name: tpl, namespace: ns1}
template:
  metadata: {labels: {app: tpl}}
  spec:
    containers:
    - {name: c, image: "busybox:1.36"}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_everyday_commands() {
    if !common::kubectl_or_skip() {
        return;
    }
    let server = Server::builder().build();
    let (_handle, dir, kubeconfig) = common::serve_with_kubeconfig(&server).await;
    let kc = kubeconfig.as_path();

    // Discovery.
    let resources = ok(kc, &["api-resources"], None).await;
    for expected in [
        "deployments",
        "daemonsets",
        "clusterroles",
        "roles",
        "podtemplates",
        "serviceaccounts",
        "leases",
    ] {
        assert!(
            resources.lines().any(|l| l.starts_with(expected)),
            "api-resources lacks {expected}:\n{resources}"
        );
    }

    // Server-side apply of a CRD, wait for it, server-side apply of a custom resource.
    ok(kc, &["apply", "--server-side", "-f", "-"], Some(CRD)).await;
    ok(
        kc,
        &[
            "wait",
            "--for=condition=Established",
            "crd/gadgets.example.com",
            "--timeout=20s",
        ],
        None,
    )
    .await;
    let after_crd = ok(kc, &["api-resources", "--api-group=example.com"], None).await;
    assert!(after_crd.contains("gadgets"), "{after_crd}");
    ok(kc, &["create", "namespace", "ns1"], None).await;
    let gadget = "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g1, namespace: ns1}\nspec: {size: 2, color: red}\n";
    ok(kc, &["apply", "--server-side", "-f", "-"], Some(gadget)).await;

    // get: table, wide (priority columns), yaml, jsonpath.
    let table = ok(kc, &["get", "gadgets", "-n", "ns1"], None).await;
    assert!(
        table.starts_with("NAME")
            && table.contains("SIZE")
            && !table.contains("COLOR")
            && table.contains("g1"),
        "{table}"
    );
    let wide = ok(kc, &["get", "gd", "-n", "ns1", "-o", "wide"], None).await;
    assert!(wide.contains("COLOR") && wide.contains("red"), "{wide}");
    let yaml = ok(
        kc,
        &["get", "gadget", "g1", "-n", "ns1", "-o", "yaml"],
        None,
    )
    .await;
    assert!(
        yaml.contains("kind: Gadget") && yaml.contains("size: 2"),
        "{yaml}"
    );
    assert_eq!(
        ok(
            kc,
            &[
                "get",
                "gadget",
                "g1",
                "-n",
                "ns1",
                "-o",
                "jsonpath={.spec.color}"
            ],
            None
        )
        .await,
        "red"
    );

    // label, annotate, patch (merge and json), wait for a jsonpath value.
    ok(
        kc,
        &["label", "gadget", "g1", "-n", "ns1", "tier=gold"],
        None,
    )
    .await;
    ok(
        kc,
        &["annotate", "gadget", "g1", "-n", "ns1", "note=hello"],
        None,
    )
    .await;
    ok(
        kc,
        &[
            "patch",
            "gadget",
            "g1",
            "-n",
            "ns1",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"size":3}}"#,
        ],
        None,
    )
    .await;
    ok(
        kc,
        &[
            "patch",
            "gadget",
            "g1",
            "-n",
            "ns1",
            "--type",
            "json",
            "-p",
            r#"[{"op":"replace","path":"/spec/color","value":"blue"}]"#,
        ],
        None,
    )
    .await;
    ok(
        kc,
        &[
            "wait",
            "gadget/g1",
            "-n",
            "ns1",
            "--for=jsonpath={.spec.color}=blue",
            "--timeout=20s",
        ],
        None,
    )
    .await;
    let labelled = ok(
        kc,
        &[
            "get",
            "gadgets",
            "-n",
            "ns1",
            "-l",
            "tier=gold",
            "-o",
            "jsonpath={.items[*].metadata.annotations.note}",
        ],
        None,
    )
    .await;
    assert_eq!(labelled, "hello");

    // edit through KUBE_EDITOR.
    let editor = dir.path().join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\nsed -i 's/size: 3/size: 7/' \"$1\"\n").unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let edited = kubectl_env(
        kc,
        &["edit", "gadget", "g1", "-n", "ns1"],
        None,
        &[("KUBE_EDITOR", editor.to_str().unwrap())],
    )
    .await;
    assert!(edited.status.success(), "kubectl edit: {}", text(&edited));
    assert_eq!(
        ok(
            kc,
            &[
                "get",
                "gadget",
                "g1",
                "-n",
                "ns1",
                "-o",
                "jsonpath={.spec.size}"
            ],
            None
        )
        .await,
        "7"
    );

    // get -w: the initial row, then one event.
    let mut watch = tokio::process::Command::new("kubectl")
        .env("KUBECONFIG", kc)
        .env("HOME", dir.path())
        .args(["get", "gadgets", "-n", "ns1", "-w"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    let header = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(header.starts_with("NAME"), "{header}");
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(first.starts_with("g1"), "{first}");
    ok(
        kc,
        &[
            "patch",
            "gadget",
            "g1",
            "-n",
            "ns1",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"size":9}}"#,
        ],
        None,
    )
    .await;
    let event = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(event.starts_with("g1") && event.contains('9'), "{event}");
    watch.kill().await.unwrap();

    // explain: custom resources and built-ins.
    let explained = ok(kc, &["explain", "gadget.spec.size"], None).await;
    assert!(explained.contains("How big."), "{explained}");
    let explained = ok(kc, &["explain", "deployment.spec.replicas"], None).await;
    assert!(explained.contains("replicas"), "{explained}");

    // Client-side apply of a built-in (three-way merge), then the migration to server-side.
    let cm = |data: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings, namespace: ns1}}\ndata: {{{data}}}\n"
        )
    };
    ok(kc, &["apply", "-f", "-"], Some(&cm("a: '1', b: '2'"))).await;
    let last_applied = ok(
        kc,
        &[
            "get",
            "cm",
            "settings",
            "-n",
            "ns1",
            "-o",
            "jsonpath={.metadata.annotations.kubectl\\.kubernetes\\.io/last-applied-configuration}",
        ],
        None,
    )
    .await;
    assert!(last_applied.contains("\"b\":\"2\""), "{last_applied}");
    // Someone else adds a key; removing b from the manifest removes only b.
    ok(
        kc,
        &[
            "patch",
            "cm",
            "settings",
            "-n",
            "ns1",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"c":"3"}}"#,
        ],
        None,
    )
    .await;
    ok(kc, &["apply", "-f", "-"], Some(&cm("a: '1'"))).await;
    let data = ok(
        kc,
        &[
            "get",
            "cm",
            "settings",
            "-n",
            "ns1",
            "-o",
            "jsonpath={.data}",
        ],
        None,
    )
    .await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&data).unwrap(),
        serde_json::json!({"a": "1", "c": "3"})
    );
    // Client-side apply of a custom resource (JSON merge).
    ok(kc, &["apply", "-f", "-"], Some("apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g2, namespace: ns1}\nspec: {size: 1, color: green}\n")).await;
    ok(kc, &["apply", "-f", "-"], Some("apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g2, namespace: ns1}\nspec: {size: 1}\n")).await;
    assert_eq!(
        ok(
            kc,
            &["get", "gadget", "g2", "-n", "ns1", "-o", "jsonpath={.spec}"],
            None
        )
        .await,
        r#"{"size":1}"#
    );
    // CSA → SSA: the same manifest applied server-side takes over the fields, and a later
    // server-side apply without a field removes it.
    ok(
        kc,
        &["apply", "--server-side", "-f", "-"],
        Some(&cm("a: '1'")),
    )
    .await;
    let managers = ok(
        kc,
        &[
            "get",
            "cm",
            "settings",
            "-n",
            "ns1",
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ],
        None,
    )
    .await;
    assert!(managers.contains("kubectl"), "{managers}");
    ok(
        kc,
        &["apply", "--server-side", "-f", "-"],
        Some(&cm("z: '26'")),
    )
    .await;
    let data = ok(
        kc,
        &[
            "get",
            "cm",
            "settings",
            "-n",
            "ns1",
            "-o",
            "jsonpath={.data}",
        ],
        None,
    )
    .await;
    let data: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert!(data.get("a").is_none() && data["z"] == "26", "{data}");

    // Storage-only built-ins apply (validated, no --validate=false) and read back.
    ok(kc, &["apply", "-f", "-"], Some(STORAGE_ONLY)).await;
    let roles = ok(
        kc,
        &[
            "get",
            "clusterrole",
            "manager-role",
            "-o",
            "jsonpath={.rules[0].apiGroups[0]}",
        ],
        None,
    )
    .await;
    assert_eq!(roles, "kro.run");
    let ds = ok(
        kc,
        &[
            "get",
            "daemonset",
            "agent",
            "-n",
            "ns1",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ],
        None,
    )
    .await;
    assert_eq!(ds, "busybox:1.36");
    ok(
        kc,
        &[
            "get",
            "rolebinding,role,serviceaccount,podtemplate",
            "-n",
            "ns1",
        ],
        None,
    )
    .await;
    let unknown = kubectl_env(kc, &["apply", "-f", "-"], Some("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: bad, namespace: ns1}\nrulez: [{verbs: [get]}]\n"), &[]).await;
    assert!(
        !unknown.status.success() && text(&unknown).contains("rulez"),
        "unknown field accepted: {}",
        text(&unknown)
    );

    // delete (with its default wait) and wait --for=delete.
    ok(kc, &["delete", "gadget", "g2", "-n", "ns1"], None).await;
    ok(
        kc,
        &["delete", "gadget", "g1", "-n", "ns1", "--wait=false"],
        None,
    )
    .await;
    ok(
        kc,
        &[
            "wait",
            "--for=delete",
            "gadget/g1",
            "-n",
            "ns1",
            "--timeout=20s",
        ],
        None,
    )
    .await;
}
