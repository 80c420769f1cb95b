//! Events in both APIs: `events.k8s.io/v1` (kube-rs `Recorder`) and core `v1` (kubectl
//! describe) are one store in kube-apiserver.

use serde_json::json;

use crate::{Area, Ctx, FidelityError, Req, Sequence, sequence};

pub fn sequences() -> Vec<Sequence> {
    vec![
        sequence!(Area::Events, "events-both-apis", ["API-35"], both_apis),
        sequence!(
            Area::Events,
            "events-core",
            ["API-35", "API-16"],
            core_events
        ),
    ]
}

/// [API-35] an events.k8s.io/v1 Event, as kube-rs's Recorder writes it (create, then a merge
/// patch of `series`), read through both APIs.
async fn both_apis(c: &mut Ctx) -> Result<(), FidelityError> {
    let new = c.grouped("events.k8s.io/v1", "events");
    let core = c.core("events");
    let event = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "demo.1"},
        "eventTime": "2026-12-06T10:00:00.000000Z",
        "reportingController": "kany8s.io/controller", "reportingInstance": "kany8s-0",
        "action": "Reconcile", "reason": "Created", "type": "Normal", "note": "created the instance",
        "regarding": {"apiVersion": "v1", "kind": "ConfigMap", "name": "demo", "namespace": c.ns, "uid": "00000000-0000-4000-8000-0000000000de"}
    });
    c.check("create (events.k8s.io)", Req::post(&new, event))
        .await?;
    c.check(
        "series",
        Req::merge(
            format!("{new}/demo.1"),
            json!({"series": {"count": 2, "lastObservedTime": "2026-12-06T10:01:00.000000Z"}}),
        ),
    )
    .await?;
    c.check("get through v1", Req::get(format!("{core}/demo.1")))
        .await?;
    c.check("list through v1", Req::get(&core)).await?;
    c.check(
        "v1 by involved object",
        Req::get(format!("{core}?fieldSelector=involvedObject.name%3Ddemo")),
    )
    .await?;
    let old = json!({
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "old.1"},
        "involvedObject": {"apiVersion": "v1", "kind": "ConfigMap", "name": "demo", "namespace": c.ns},
        "reason": "Legacy", "message": "written through v1", "type": "Warning", "count": 3,
        "source": {"component": "kubectl"},
        "firstTimestamp": "2026-12-06T10:00:00Z", "lastTimestamp": "2026-12-06T10:02:00Z"
    });
    c.check("create (v1)", Req::post(&core, old)).await?;
    c.check(
        "get through events.k8s.io",
        Req::get(format!("{new}/old.1")),
    )
    .await?;
    c.check("list through events.k8s.io", Req::get(&new))
        .await?;
    c.check("delete through v1", Req::delete(format!("{core}/demo.1")))
        .await?;
    c.check(
        "gone through events.k8s.io",
        Req::get(format!("{new}/demo.1")),
    )
    .await?;
    c.check(
        "invalid events.k8s.io",
        Req::post(
            &new,
            json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "bad"}}),
        ),
    )
    .await?;
    Ok(())
}

/// [API-35] [API-16] core events: field selectors kubectl uses.
async fn core_events(c: &mut Ctx) -> Result<(), FidelityError> {
    let core = c.core("events");
    for (name, reason, type_) in [("a.1", "Started", "Normal"), ("b.1", "Failed", "Warning")] {
        c.send(&Req::post(&core, json!({
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": c.ns, "uid": "00000000-0000-4000-8000-0000000000ee"},
            "reason": reason, "message": "m", "type": type_, "source": {"component": "kubelet"},
            "firstTimestamp": "2026-12-06T10:00:00Z", "lastTimestamp": "2026-12-06T10:00:00Z", "count": 1
        }))).await?;
    }
    c.check(
        "by reason",
        Req::get(format!("{core}?fieldSelector=reason%3DFailed")),
    )
    .await?;
    c.check(
        "by type",
        Req::get(format!("{core}?fieldSelector=type%3DNormal")),
    )
    .await?;
    c.check("by involved uid", Req::get(format!("{core}?fieldSelector=involvedObject.uid%3D00000000-0000-4000-8000-0000000000ee,involvedObject.kind%3DPod"))).await?;
    c.check(
        "by source",
        Req::get(format!("{core}?fieldSelector=source%3Dkubelet")),
    )
    .await?;
    c.check(
        "unsupported field",
        Req::get(format!("{core}?fieldSelector=message%3Dm")),
    )
    .await?;
    Ok(())
}
