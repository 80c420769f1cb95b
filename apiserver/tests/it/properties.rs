//! Property tests of the storage invariants ([API-15], [API-17]): random sequences of writes
//! keep resourceVersions strictly increasing, the watch history replays exactly the committed
//! changes in order, and no-op writes are silent.

use kany8s_apiserver::clock::Clock;
use kany8s_apiserver::engine::{DeleteOptions, Engine, PatchType, Target, WriteOptions};
use kany8s_apiserver::store::EventType;
use proptest::prelude::*;
use serde_json::{Value, json};

#[derive(Clone, Debug)]
enum Op {
    Create(u8, u8),
    Replace(u8, u8),
    ReplaceSame(u8),
    MergePatch(u8, u8),
    Apply(u8, u8),
    AddFinalizer(u8),
    RemoveFinalizers(u8),
    Delete(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let name = 0u8..4;
    let value = 0u8..3;
    prop_oneof![
        (name.clone(), value.clone()).prop_map(|(n, v)| Op::Create(n, v)),
        (name.clone(), value.clone()).prop_map(|(n, v)| Op::Replace(n, v)),
        name.clone().prop_map(Op::ReplaceSame),
        (name.clone(), value.clone()).prop_map(|(n, v)| Op::MergePatch(n, v)),
        (name.clone(), value).prop_map(|(n, v)| Op::Apply(n, v)),
        name.clone().prop_map(Op::AddFinalizer),
        name.clone().prop_map(Op::RemoveFinalizers),
        name.prop_map(Op::Delete),
    ]
}

fn target(engine: &Engine, name: Option<String>) -> Target {
    let resource = engine
        .with_registry(|registry| registry.lookup("", "v1", "configmaps"))
        .unwrap();
    Target {
        resource,
        version: "v1".into(),
        namespace: Some("default".into()),
        name,
        subresource: None,
    }
}

fn rv(object: &Value) -> u64 {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("0")
        .parse()
        .unwrap()
}

/// What the store recorded for one write: (type, name, resourceVersion).
type Change = (EventType, String, u64);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn writes_keep_the_storage_invariants(ops in proptest::collection::vec(op(), 1..40)) {
        let engine = Engine::new(Clock::default(), 100_000);
        let start = engine.resource_version();
        let mut expected: Vec<Change> = Vec::new();
        let mut last_rv = start;
        for op in ops {
            let before = engine.resource_version();
            let name = |n: u8| format!("c{n}");
            let result = match &op {
                Op::Create(n, v) => engine.create(&target(&engine, None), json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name(*n)}, "data": {"v": v.to_string()}}), &WriteOptions::default()),
                Op::Replace(n, _) | Op::ReplaceSame(n) => {
                    let t = target(&engine, Some(name(*n)));
                    match engine.get(&t) {
                        Ok(mut current) => {
                            if let Op::Replace(_, v) = &op {
                                current["data"] = json!({"v": v.to_string()});
                            }
                            engine.replace(&t, current, &WriteOptions::default())
                        }
                        Err(e) => Err(e),
                    }
                }
                Op::MergePatch(n, v) => engine.patch(&target(&engine, Some(name(*n))), PatchType::Merge, json!({"data": {"w": v.to_string()}}).to_string().as_bytes(), &WriteOptions::default()),
                Op::Apply(n, v) => {
                    let options = WriteOptions { field_manager: Some("prop".into()), ..WriteOptions::default() };
                    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name(*n)}, "data": {"a": v.to_string()}});
                    engine.patch(&target(&engine, Some(name(*n))), PatchType::Apply, body.to_string().as_bytes(), &options)
                }
                Op::AddFinalizer(n) => engine.patch(&target(&engine, Some(name(*n))), PatchType::Merge, br#"{"metadata":{"finalizers":["example.com/f"]}}"#, &WriteOptions::default()),
                Op::RemoveFinalizers(n) => engine.patch(&target(&engine, Some(name(*n))), PatchType::Merge, br#"{"metadata":{"finalizers":null}}"#, &WriteOptions::default()),
                Op::Delete(n) => engine.delete(&target(&engine, Some(name(*n))), &DeleteOptions::default()),
            };
            let after = engine.resource_version();
            prop_assert!(after >= before);
            prop_assert!(after - before <= 1, "one write commits at most one change");
            match result {
                Ok(outcome) => {
                    if after == before {
                        // A no-op (or a dry run): the stored object is returned unchanged.
                        if outcome.body.get("kind") != Some(&json!("Status")) {
                            prop_assert!(rv(&outcome.body) <= before);
                        }
                    } else {
                        prop_assert!(after > last_rv);
                        last_rv = after;
                        let stored = engine.with_store(|store| store.watch_from(after - 1)).unwrap().0;
                        prop_assert_eq!(stored.len(), 1);
                        let event = &stored[0];
                        prop_assert_eq!(event.resource_version, after);
                        if event.type_ != EventType::Deleted {
                            prop_assert_eq!(rv(&event.object), after);
                        }
                        expected.push((event.type_, event.key.name.clone(), after));
                    }
                    if matches!(op, Op::ReplaceSame(_)) {
                        prop_assert_eq!(after, before, "an identical PUT is a no-op");
                    }
                }
                Err(error) => prop_assert_eq!(after, before, "a failed request ({}) changed nothing", error),
            }
        }
        // The history replays exactly the committed changes, in order.
        let (history, _) = engine.with_store(|store| store.watch_from(start)).unwrap();
        let replayed: Vec<Change> = history.iter().map(|e| (e.type_, e.key.name.clone(), e.resource_version)).collect();
        prop_assert_eq!(replayed, expected);
    }
}
