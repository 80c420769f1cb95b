//! kro's condition set (kro.md §5.2): a root condition computed from its dependents, stable
//! transition times, sorting and observedGeneration stamping — pure functions over JSON.

use serde_json::{Value, json};

/// The condition types of one object kind: the root and its dependents.
#[derive(Clone, Copy, Debug)]
pub struct ConditionSet {
    pub root: &'static str,
    pub dependents: &'static [&'static str],
}

/// Instances: root `Ready`.
pub const INSTANCE: ConditionSet = ConditionSet {
    root: "Ready",
    dependents: &["InstanceManaged", "GraphResolved", "ResourcesReady"],
};

/// RGDs: root `Ready`.
pub const RGD: ConditionSet = ConditionSet {
    root: "Ready",
    dependents: &[
        "GraphRevisionsResolved",
        "GraphAccepted",
        "KindReady",
        "ControllerReady",
    ],
};

/// One condition to set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition<'a> {
    pub type_: &'a str,
    pub status: &'a str,
    pub reason: &'a str,
    pub message: &'a str,
}

fn field<'a>(c: &'a Value, key: &str) -> &'a str {
    c.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The conditions of an object being reconciled, with its generation and timestamps.
#[derive(Clone, Debug)]
pub struct Conditions {
    pub set: ConditionSet,
    pub list: Vec<Value>,
    pub generation: i64,
    pub created: String,
    pub now: String,
    pub deleting: bool,
    /// The types whose lastTransitionTime this pass set to `now`, in the order it set them:
    /// kro's clock is finer than the second its times are stored at, so a transition of this
    /// pass sorts after an older time of the same second, and after the transitions set before
    /// it.
    transitions: Vec<String>,
}

impl Conditions {
    /// `for(obj)`: every missing condition of the set starts Unknown/AwaitingReconciliation.
    pub fn new(
        set: ConditionSet,
        existing: Vec<Value>,
        generation: i64,
        created: String,
        now: String,
        deleting: bool,
    ) -> Self {
        let mut conditions = Self {
            set,
            list: existing,
            generation,
            created,
            now,
            deleting,
            transitions: Vec::new(),
        };
        for type_ in std::iter::once(set.root).chain(set.dependents.iter().copied()) {
            if conditions.get(type_).is_none() {
                let message = format!("condition \"{type_}\" is awaiting reconciliation");
                conditions.put(&Condition {
                    type_,
                    status: "Unknown",
                    reason: "AwaitingReconciliation",
                    message: &message,
                });
            }
        }
        conditions
    }

    /// The conditions of `object` (its generation, creation time and stored conditions).
    pub fn of(set: ConditionSet, object: &Value, now: String) -> Self {
        let generation = object
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let created = object
            .pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let existing = object
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let deleting = object
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|d| !d.is_null());
        Self::new(set, existing, generation, created, now, deleting)
    }

    pub fn get(&self, type_: &str) -> Option<&Value> {
        self.list.iter().find(|c| field(c, "type") == type_)
    }

    /// `set(c)` followed by the root recomputation.
    pub fn set(&mut self, condition: &Condition<'_>) {
        self.put(condition);
        if condition.type_ != self.set.root {
            self.recompute_root();
        }
    }

    fn put(&mut self, condition: &Condition<'_>) {
        let is_builtin =
            condition.type_ == self.set.root || self.set.dependents.contains(&condition.type_);
        let mut new = json!({
            "type": condition.type_, "status": condition.status,
            "reason": condition.reason, "message": condition.message,
        });
        if self.generation > 0 {
            new["observedGeneration"] = json!(self.generation);
        }
        match self
            .list
            .iter_mut()
            .find(|c| field(c, "type") == condition.type_)
        {
            Some(existing) => {
                let time = if field(existing, "status") == condition.status {
                    existing
                        .get("lastTransitionTime")
                        .cloned()
                        .unwrap_or_else(|| json!(self.now))
                } else {
                    self.transitions.retain(|t| t != condition.type_);
                    self.transitions.push(condition.type_.to_string());
                    json!(self.now)
                };
                new["lastTransitionTime"] = time;
                *existing = new;
            }
            None => {
                new["lastTransitionTime"] = json!(if is_builtin {
                    self.created.clone()
                } else {
                    self.transitions.retain(|t| t != condition.type_);
                    self.transitions.push(condition.type_.to_string());
                    self.now.clone()
                });
                self.list.push(new);
            }
        }
        if self.deleting && self.generation > 0 {
            for c in &mut self.list {
                c["observedGeneration"] = json!(self.generation);
            }
        }
        let root = self.set.root;
        // Stable sort: the root last, the others by lastTransitionTime ascending (this pass's
        // transitions after older times of the same second, in the order they were set).
        let transitions = &self.transitions;
        self.list.sort_by(|a, b| {
            let key = |c: &Value| {
                let type_ = field(c, "type");
                let this_pass = field(c, "lastTransitionTime") == self.now;
                (
                    type_ == root,
                    field(c, "lastTransitionTime").to_string(),
                    transitions
                        .iter()
                        .position(|t| t == type_)
                        .filter(|_| this_pass),
                )
            };
            key(a).cmp(&key(b))
        });
    }

    fn recompute_root(&mut self) {
        let generation = self.generation;
        let stale = |c: &Value| {
            c.get("observedGeneration")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                != generation
        };
        let mut unhealthy: Vec<Value> = self
            .list
            .iter()
            .filter(|c| self.set.dependents.contains(&field(c, "type")))
            .filter(|c| field(c, "status") != "True" || stale(c))
            .cloned()
            .collect();
        if unhealthy.is_empty() {
            let root = self.set.root;
            self.put(&Condition {
                type_: root,
                status: "True",
                reason: "Ready",
                message: "",
            });
            return;
        }
        unhealthy
            .sort_by(|a, b| field(b, "lastTransitionTime").cmp(field(a, "lastTransitionTime")));
        let pick = unhealthy
            .iter()
            .find(|c| field(c, "status") == "False")
            .or_else(|| unhealthy.iter().find(|c| field(c, "status") == "Unknown"))
            .cloned();
        if let Some(c) = pick {
            let root = self.set.root;
            self.put(&Condition {
                type_: root,
                status: field(&c, "status"),
                reason: field(&c, "reason"),
                message: field(&c, "message"),
            });
        }
    }

    /// Root True and observed at the current generation.
    pub fn is_root_ready(&self) -> bool {
        self.get(self.set.root).is_some_and(|c| {
            field(c, "status") == "True"
                && c.get("observedGeneration")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    == self.generation
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> Conditions {
        Conditions::new(
            INSTANCE,
            Vec::new(),
            1,
            "2026-01-01T00:00:00Z".into(),
            "2026-01-01T00:00:05Z".into(),
            false,
        )
    }

    /// [KRO-SIM-COND] missing conditions start Unknown; the root copies the newest unhealthy one.
    #[test]
    fn mechanics() {
        let mut c = fresh();
        assert_eq!(c.list.len(), 4);
        assert_eq!(
            field(c.get("Ready").unwrap(), "reason"),
            "AwaitingReconciliation"
        );
        c.set(&Condition {
            type_: "InstanceManaged",
            status: "True",
            reason: "Managed",
            message: "instance is properly managed with finalizers and labels",
        });
        c.set(&Condition {
            type_: "GraphResolved",
            status: "True",
            reason: "Resolved",
            message: "runtime graph created and all resources resolved",
        });
        c.set(&Condition {
            type_: "ResourcesReady",
            status: "False",
            reason: "NotReady",
            message: "resource reconciliation failed: cluster mutated",
        });
        let ready = c.get("Ready").unwrap();
        assert_eq!(
            (
                field(ready, "status"),
                field(ready, "reason"),
                field(ready, "message")
            ),
            (
                "False",
                "NotReady",
                "resource reconciliation failed: cluster mutated"
            )
        );
        assert!(!c.is_root_ready());
        c.set(&Condition {
            type_: "ResourcesReady",
            status: "True",
            reason: "AllResourcesReady",
            message: "all resources are created and ready",
        });
        let ready = c.get("Ready").unwrap();
        assert_eq!(
            (
                field(ready, "status"),
                field(ready, "reason"),
                field(ready, "message")
            ),
            ("True", "Ready", "")
        );
        assert!(c.is_root_ready());
        assert_eq!(
            field(c.list.last().unwrap(), "type"),
            "Ready",
            "root sorts last"
        );
    }

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let mut c = fresh();
        c.set(&Condition {
            type_: "GraphResolved",
            status: "True",
            reason: "Resolved",
            message: "x",
        });
        let first = c.get("GraphResolved").unwrap()["lastTransitionTime"].clone();
        c.now = "2026-01-01T00:01:00Z".into();
        c.set(&Condition {
            type_: "GraphResolved",
            status: "True",
            reason: "Resolved",
            message: "y",
        });
        assert_eq!(c.get("GraphResolved").unwrap()["lastTransitionTime"], first);
    }

    /// [KRO-SIM-COND] transitions of one pass sort in the order they were set, after the
    /// conditions still at the creation time, even within the same second (kro's clock is finer
    /// than the stored second): an accepted RGD lists GraphAccepted first, a rejected one last.
    #[test]
    fn transitions_of_one_pass_sort_in_the_order_set() {
        let same_second = "2026-01-01T00:00:00Z".to_string();
        let rgd = |statuses: &[(&str, &str)]| {
            let mut c = Conditions::new(
                RGD,
                Vec::new(),
                1,
                same_second.clone(),
                same_second.clone(),
                false,
            );
            for (type_, status) in statuses {
                c.set(&Condition {
                    type_,
                    status,
                    reason: "R",
                    message: "m",
                });
            }
            c.list
                .iter()
                .map(|c| field(c, "type").to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            rgd(&[
                ("GraphAccepted", "True"),
                ("GraphRevisionsResolved", "True"),
                ("KindReady", "True"),
                ("ControllerReady", "True"),
            ]),
            [
                "GraphAccepted",
                "GraphRevisionsResolved",
                "KindReady",
                "ControllerReady",
                "Ready"
            ]
        );
        assert_eq!(
            rgd(&[("GraphAccepted", "False")]),
            [
                "GraphRevisionsResolved",
                "KindReady",
                "ControllerReady",
                "GraphAccepted",
                "Ready"
            ]
        );
    }
}
