//! The real kubectl (1.32) against the server over loopback: the command set the sandbox needs
//! (T14 protobuf creates, T15 OpenAPI-validated apply, T16 tables, T23 namespace deletion, T24
//! wait/delete through field-selector watches). Without kubectl: skipped, loudly, or failed when
//! `CI` is set.

use std::path::Path;
use std::process::Output;

use kany8s_apiserver::Server;

use crate::common;

async fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    common::kubectl_env(kubeconfig, args, stdin, &[]).await
}

fn text(output: &Output) -> String {
    common::text(output)
}

async fn ok(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let output = kubectl(kubeconfig, args, stdin).await;
    assert!(
        output.status.success(),
        "kubectl {} failed: {}",
        args.join(" "),
        text(&output)
    );
    text(&output)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_command_set() {
    if !common::kubectl_or_skip() {
        return;
    }
    let server = Server::builder().build();
    let (_handle, _dir, kubeconfig) = common::serve_with_kubeconfig(&server).await;
    let kc = kubeconfig.as_path();

    assert!(
        ok(kc, &["version"], None)
            .await
            .contains("Server Version: v1.32.13")
    );
    // T14: kubectl sends these creates as protobuf.
    ok(kc, &["create", "namespace", "foo"], None).await;
    ok(
        kc,
        &[
            "create",
            "configmap",
            "c1",
            "--from-literal=a=b",
            "-n",
            "foo",
        ],
        None,
    )
    .await;
    ok(
        kc,
        &[
            "create",
            "secret",
            "generic",
            "s1",
            "--from-literal=a=b",
            "-n",
            "foo",
        ],
        None,
    )
    .await;
    let secret = ok(
        kc,
        &[
            "get",
            "secret",
            "s1",
            "-n",
            "foo",
            "-o",
            "jsonpath={.type} {.data.a}",
        ],
        None,
    )
    .await;
    assert_eq!(secret, "Opaque Yg==");
    let cms = ok(kc, &["get", "configmaps", "-n", "foo"], None).await;
    assert!(
        cms.starts_with("NAME") && cms.contains("DATA") && cms.contains("c1"),
        "{cms}"
    );

    // T15: apply with kubectl's default (strict) validation, for a CRD and its custom resources.
    let crd = serde_json::to_string(&common::widget_crd()).unwrap();
    ok(kc, &["apply", "-f", "-"], Some(&crd)).await;
    ok(
        kc,
        &[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
            "--timeout=20s",
        ],
        None,
    )
    .await;
    let widget =
        serde_json::to_string(&common::widget("w", serde_json::json!({"size": 3}))).unwrap();
    assert!(
        ok(kc, &["apply", "-f", "-"], Some(&widget))
            .await
            .contains("widget.example.com/w created")
    );
    assert!(
        ok(kc, &["apply", "-f", "-"], Some(&widget))
            .await
            .contains("unchanged")
    );
    let unknown =
        serde_json::to_string(&common::widget("v", serde_json::json!({"foo": 1}))).unwrap();
    let rejected = kubectl(kc, &["apply", "-f", "-"], Some(&unknown)).await;
    assert!(!rejected.status.success());
    assert!(
        text(&rejected).contains("unknown field \"spec.foo\""),
        "{}",
        text(&rejected)
    );
    assert!(
        ok(kc, &["explain", "widget.spec"], None)
            .await
            .contains("size")
    );
    assert!(ok(kc, &["api-resources"], None).await.contains("widgets"));

    // T16: the CRD's printer columns.
    let widgets = ok(kc, &["get", "widgets"], None).await;
    assert!(
        widgets.lines().next().unwrap().contains("SIZE"),
        "{widgets}"
    );
    assert!(widgets.contains('3'));

    // T24: wait and delete use metadata.name field-selector watches.
    ok(
        kc,
        &[
            "wait",
            "--for=jsonpath={.spec.size}=3",
            "widget/w",
            "--timeout=20s",
        ],
        None,
    )
    .await;
    ok(
        kc,
        &[
            "patch",
            "widget",
            "w",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
        ],
        None,
    )
    .await;
    let deleting = kubectl(kc, &["delete", "widget", "w", "--wait=false"], None).await;
    assert!(deleting.status.success(), "{}", text(&deleting));
    ok(
        kc,
        &[
            "patch",
            "widget",
            "w",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
        ],
        None,
    )
    .await;
    ok(
        kc,
        &["wait", "--for=delete", "widget/w", "--timeout=20s"],
        None,
    )
    .await;

    // T23: deleting a namespace waits until its contents are gone.
    ok(kc, &["delete", "namespace", "foo", "--timeout=30s"], None).await;
    let gone = kubectl(kc, &["get", "namespace", "foo"], None).await;
    assert!(text(&gone).contains("NotFound"), "{}", text(&gone));
}
